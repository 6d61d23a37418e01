"""The LSTM's C kernels (kernels.c): compiled when the package is built, loaded with ctypes.

`library()` returns the loaded kernels when lstmae's CPU path can use them, else
None; the network then runs torch's own ``nn.LSTM`` (`lstmae.nn`), which computes
the same function (tests/test_nn.py and test_fused.py compare the two).

setup.py builds kernels.c into ``lstmae/_kernels<EXT_SUFFIX>`` next to this file,
as an optional extension: a wheel carries it, an editable install or
``python setup.py build_ext --inplace`` puts it in src/lstmae/. It is a plain C
library (no Python module init), loaded by path from the package itself, never
from a cache or the home folder, and nothing is compiled at run time. Its ABI
number is checked on load. No machine-specific flags are used at build time: the
library reports whether the running CPU has AVX2 + FMA (the vector width its loops
use); without them, or without the library, lstmae runs nn.LSTM. Built with OpenMP
(setup.py tries it first), the loops split rows between torch's threads, in the
libgomp torch has loaded.

``LSTMAE_KERNELS=0`` turns the kernels off (nn.LSTM everywhere, e.g. to compare).
A missing library is not an error: lstmae logs one ``lstmae: warning:`` line at
first use and runs nn.LSTM.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import logging
import os
import threading
from pathlib import Path

import torch

logger = logging.getLogger("lstmae")

#: The ABI the Python side expects (LSTMAE_KERNELS_ABI in kernels.c).
ABI = 4

_lock = threading.Lock()
_loaded: dict[str, object] = {}  # "library": the CDLL or None; "state", "detail": what `status` reports


def enabled() -> bool:
    """False when ``LSTMAE_KERNELS`` is set to 0, off, false or no."""
    return os.environ.get("LSTMAE_KERNELS", "1").strip().lower() not in {"0", "off", "false", "no"}


def library_file() -> Path | None:
    """The compiled library inside the package (``_kernels`` + this Python's extension suffix), if built."""
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"_kernels{suffix}"
        if candidate.is_file():
            return candidate
    return None


def library() -> ctypes.CDLL | None:
    """The loaded kernels when the CPU path can use them; None when turned off, not built or not usable here."""
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


def threads(lib: ctypes.CDLL) -> int:
    """Threads for a C pass: torch's intra-op count (1 inside `parallel.ordered_map`'s workers) with OpenMP, else 1."""
    return torch.get_num_threads() if lib.lstmae_kernels_threaded() else 1


def status() -> dict[str, object]:
    """What `lstmae info` reports: state ("built at install", "unavailable" or "off"), the
    vector width in use ("avx2", "plain" or None), OpenMP threads, the library file and why."""
    if not enabled():
        return {"state": "off", "vector_width": None, "openmp_threads": None, "file": None,
                "detail": "LSTMAE_KERNELS=0: torch's nn.LSTM everywhere"}
    lib = library()
    state = {key: _loaded[key] for key in ("state", "detail", "file", "vector_width", "openmp")}
    state["openmp_threads"] = threads(lib) if lib is not None else (torch.get_num_threads() if state["openmp"] else None)
    del state["openmp"]
    return state


def _load() -> ctypes.CDLL | None:
    """Load the package's library and check it; record what `status` reports; warn once when it is missing."""
    _loaded.update(state="unavailable", file=None, vector_width=None, openmp=False)
    path = library_file()
    if path is None:
        _loaded["detail"] = "not built: the package was installed without a C compiler"
        logger.warning(
            "lstmae: warning: its C kernels were not built when lstmae was installed (no C compiler?); training "
            "and scoring on the CPU run torch's nn.LSTM, 1.5-2x slower. Reinstall with a C compiler, or from a "
            "wheel; LSTMAE_KERNELS=0 silences this."
        )
        return None
    _loaded["file"] = str(path)
    try:
        lib = ctypes.CDLL(str(path))
        abi = lib.lstmae_kernels_abi()
    except (OSError, AttributeError) as error:
        _loaded["detail"] = f"cannot load {path}: {error}"
        logger.warning("lstmae: warning: cannot load its C kernels (%s); the CPU runs torch's nn.LSTM.", error)
        return None
    if abi != ABI:
        _loaded["detail"] = f"{path} has ABI {abi}, this lstmae expects {ABI}: a stale build"
        logger.warning("lstmae: warning: %s; rebuild lstmae (pip install .). The CPU runs torch's nn.LSTM.", _loaded["detail"])
        return None
    vectorised = bool(lib.lstmae_kernels_vectorised())
    _loaded.update(vector_width="avx2" if vectorised else "plain", openmp=bool(lib.lstmae_kernels_threaded()))
    if not vectorised:  # an expected case (an older or non-x86 CPU), not worth a warning
        _loaded["detail"] = "built, but this CPU lacks AVX2 + FMA, which the C path needs: torch's nn.LSTM runs"
        return None
    _loaded.update(state="built at install", detail=f"loaded from {path}")
    size, pointer = ctypes.c_int64, ctypes.c_void_p
    lib.lstmae_forward.argtypes = [size] * 4 + [pointer, size, size, pointer, pointer, size, pointer, size, pointer, size, pointer]
    lib.lstmae_forward.restype = ctypes.c_int
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
