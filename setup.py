"""Builds lstmae's C kernels (src/lstmae/backends/kernels.c) as an optional compiled extension.

Everything else about the package is in pyproject.toml. The kernels are a plain C
library loaded with ctypes (lstmae/backends/kernels.py), so they need no Python headers
beyond what setuptools' Extension brings, and a build without a C compiler still
installs: one ``lstmae: warning:`` line, and lstmae then runs torch's nn.LSTM.

No machine-specific flags (no -march=native): the AVX2 loops are chosen inside the
library from the running CPU, so a wheel built here runs on any x86-64 CPU.
OpenMP is tried first (the loops then split rows between torch's threads, in the
libgomp torch has loaded); a compiler without it gets a single-threaded build.
"""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# -O2 after Python's own CFLAGS (which may say -O3): the flags the kernels are measured with.
FLAGS = ["-O2", "-std=gnu99"]
OPENMP = ["-fopenmp"]


class OptionalKernels(build_ext):
    """Build the kernels with OpenMP, else without; a failure warns once and installs without them."""

    def build_extension(self, ext: Extension) -> None:
        failure = None
        for extra in (OPENMP, []):
            ext.extra_compile_args = [*FLAGS, *extra]
            ext.extra_link_args = [*extra]
            try:
                super().build_extension(ext)
                return
            except Exception as error:  # a missing or failing compiler, whatever distutils calls it
                failure = error
        last = str(failure).strip().splitlines()[-1:] or [type(failure).__name__]
        print(
            f"lstmae: warning: could not compile the C kernels ({last[0]}); lstmae installs without them "
            "and runs torch's nn.LSTM on the CPU (1.5-2x slower to train). Install a C compiler and reinstall.",
            file=sys.stderr,
        )


setup(
    ext_modules=[Extension("lstmae.backends._kernels", ["src/lstmae/backends/kernels.c"], libraries=["m"], optional=True)],
    cmdclass={"build_ext": OptionalKernels},
)
