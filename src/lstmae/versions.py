"""What lstmae runs on: versions, the C kernels' state, threads and CUDA devices.

`versions()` collects it as a dict (``lstmae info --json`` prints it),
`show_versions()` prints it as aligned lines (``lstmae info``); paste either into
a bug report.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata

import numpy

from lstmae._version import __version__


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, object]:
    """lstmae, Python, torch, Lightning, numpy; the kernels; torch threads; CUDA devices.

    ``kernels`` is `lstmae.backends.kernels.status`: ``state`` "built at install" (the C path
    runs on the CPU), "unavailable" (not built, not loadable or no AVX2 + FMA:
    torch's nn.LSTM runs, ``detail`` says why) or "off" (``LSTMAE_KERNELS=0``);
    ``vector_width`` "avx2", "plain" or None; ``openmp_threads``; ``file``.
    """
    # torch (and the kernels' loader, which imports it) only when asked: the command line imports this module at start.
    import torch

    from lstmae.backends import kernels

    cuda = torch.cuda.is_available()
    return {
        "lstmae": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "lightning": _version("lightning"),
        "numpy": numpy.__version__,
        "kernels": kernels.status(),
        "torch_threads": torch.get_num_threads(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
    }


def format_versions(info: dict[str, object]) -> list[str]:
    """`versions()` as ``name: value`` lines."""
    kernels = dict(info["kernels"])  # type: ignore[call-overload]
    lines = [f"{name}: {info[name] if info[name] is not None else 'not installed'}"
             for name in ("lstmae", "python", "platform", "torch", "lightning", "numpy")]
    lines += [
        f"kernels: {kernels['state']} ({kernels['detail']})",
        f"kernels vector width: {kernels['vector_width'] or 'none'}",
        f"kernels OpenMP threads: {kernels['openmp_threads'] if kernels['openmp_threads'] is not None else 'none'}",
        f"torch threads: {info['torch_threads']}",
        f"CUDA devices: {', '.join(info['cuda_devices']) or 'none'}",  # type: ignore[arg-type]
    ]
    return lines


def show_versions() -> None:
    """Print lstmae's environment (versions, kernels, threads, CUDA devices), one ``name: value`` per line."""
    print("\n".join(format_versions(versions())), file=sys.stdout)
