"""The LSTM recurrence's C kernels (kernels.c): compiled at first use, loaded with ctypes.

`library()` returns the loaded kernels, or None when they cannot be had; the
recurrence then runs its pure-torch loops, which compute the same function
(tests/test_recurrence.py checks every path against nn.LSTM). Nothing else changes.

The C source ships with the package and is compiled once per machine with the
system C compiler (``$CC``, else the first found of Python's configured
compiler, cc, gcc and clang; about a second) into a cache folder:
``$LSTMAE_CACHE_DIR``, else ``$XDG_CACHE_HOME/lstmae``, else ``~/.cache/lstmae``.
The file name carries a hash of the source, the compiler command and the flags,
so an upgraded lstmae never loads a stale build; it is written to a temporary
name and renamed, so concurrent processes never load a half-written file. No
machine-specific flags are used (a cache shared between machines stays valid):
the AVX2 loops are chosen inside the library at run time. With OpenMP (tried
first) the whole loops split rows between torch's threads, in the OpenMP runtime
torch has loaded.

``LSTMAE_KERNELS=0`` turns the kernels off (the pure-torch path, e.g. to compare).
A missing compiler is not an error: lstmae logs one warning and runs the
pure-torch path.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

logger = logging.getLogger("lstmae")

SOURCE = Path(__file__).with_name("kernels.c")
#: The ABI the Python side expects (LSTMAE_KERNELS_ABI in kernels.c).
ABI = 3
FLAGS = ("-O2", "-fPIC", "-shared", "-std=gnu99")
#: Tried first: OpenMP lets the whole loops split rows between torch's threads (the
#: library then uses the libgomp torch has loaded); without it they run on one thread.
OPENMP = ("-fopenmp",)
COMPILE_TIMEOUT_S = 120

_lock = threading.Lock()
_loaded: dict[str, object] = {}  # "library": the CDLL or None once decided


def enabled() -> bool:
    """False when ``LSTMAE_KERNELS`` is set to 0, off, false or no."""
    return os.environ.get("LSTMAE_KERNELS", "1").strip().lower() not in {"0", "off", "false", "no"}


def library() -> ctypes.CDLL | None:
    """The loaded kernels, compiling them on first use; None when turned off or unavailable."""
    if not enabled():
        return None
    if "library" not in _loaded:
        with _lock:
            if "library" not in _loaded:
                _loaded["library"] = _load()
    return _loaded["library"]  # type: ignore[return-value]


def reset() -> None:
    """Forget the loaded library (tests: to load again with other settings)."""
    with _lock:
        _loaded.clear()


def compiler() -> list[str]:
    """The C compiler command: ``$CC`` if set, else the first found of the one Python was built with, cc, gcc, clang."""
    if os.environ.get("CC"):
        return shlex.split(os.environ["CC"])
    for candidate in (sysconfig.get_config_var("CC"), "cc", "gcc", "clang"):
        command = shlex.split(candidate or "")
        if command and shutil.which(command[0]):
            return command
    return ["cc"]


def cache_dir() -> Path:
    if os.environ.get("LSTMAE_CACHE_DIR"):
        return Path(os.environ["LSTMAE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstmae"


def _library_path(command: list[str], flags: tuple[str, ...]) -> Path:
    key = hashlib.sha256()
    key.update(SOURCE.read_bytes())
    key.update(repr((command, flags, sys.platform)).encode())
    suffix = ".dll" if sys.platform == "win32" else ".so"
    return cache_dir() / f"kernels-{key.hexdigest()[:20]}{suffix}"


def _compile(command: list[str], flags: tuple[str, ...], target: Path) -> None:
    """Compile kernels.c into ``target``, atomically; raises OSError or SubprocessError."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".kernels-", suffix=target.suffix)
    os.close(handle)
    try:
        subprocess.run(
            [*command, *flags, str(SOURCE), "-o", temporary, "-lm"],
            check=True, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S,
        )
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _load() -> ctypes.CDLL | None:
    """The first build that compiles and loads: with OpenMP, else without (a compiler
    without OpenMP, or an OpenMP runtime that cannot be loaded: single-threaded loops)."""
    command = compiler()
    failure: BaseException | None = None
    for flags in ((*FLAGS, *OPENMP), FLAGS):
        try:
            path = _library_path(command, flags)
            if not path.exists():
                _compile(command, flags, path)
            lib = ctypes.CDLL(str(path))
            if lib.lstmae_kernels_abi() != ABI:
                raise OSError(f"{path} has ABI {lib.lstmae_kernels_abi()}, expected {ABI}")
            break
        except (OSError, subprocess.SubprocessError) as error:
            failure = error
    else:
        detail = str(getattr(failure, "stderr", None) or failure).strip()
        logger.warning(
            "lstmae: could not build its C kernels with %r (%s); training and scoring use the "
            "slower pure-torch recurrence. Install a C compiler or set CC; LSTMAE_KERNELS=0 silences this.",
            " ".join(command), detail.splitlines()[-1] if detail else type(failure).__name__,
        )
        return None
    size, pointer = ctypes.c_int64, ctypes.c_void_p
    lib.lstmae_forward_step.argtypes = [size, size, pointer, pointer, pointer, pointer, pointer]
    lib.lstmae_forward_step.restype = None
    lib.lstmae_backward_step.argtypes = [size, size, pointer, pointer, pointer, pointer, pointer, pointer]
    lib.lstmae_backward_step.restype = None
    lib.lstmae_forward.argtypes = [size] * 4 + [pointer, size, size, pointer, pointer, size, pointer, size, pointer, size, pointer]
    lib.lstmae_forward.restype = ctypes.c_int
    lib.lstmae_backward.argtypes = [size] * 4 + [pointer] * 8
    lib.lstmae_backward.restype = ctypes.c_int
    lib.lstmae_ae_forward.argtypes = [pointer, size]  # (const ae_model *, threads): see lstmae.fused
    lib.lstmae_ae_forward.restype = ctypes.c_int
    lib.lstmae_ae_backward.argtypes = [pointer, size]
    lib.lstmae_ae_backward.restype = ctypes.c_int
    lib.lstmae_ae_scratch.argtypes = [size, size]
    lib.lstmae_ae_scratch.restype = size
    lib.lstmae_activations.argtypes = [size, pointer, pointer, pointer, ctypes.c_int]
    lib.lstmae_activations.restype = None
    lib.lstmae_kernels_vectorised.restype = ctypes.c_int
    lib.lstmae_kernels_threaded.restype = ctypes.c_int
    return lib
