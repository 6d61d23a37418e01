"""The LSTM's C kernels (kernels.c): compiled when the package is built, loaded with ctypes.

`library()` returns the loaded kernels when lstmae's CPU path can use them, else
None; the network then runs torch's own ``nn.LSTM`` (`lstmae.backends.network`), which computes
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
from dataclasses import dataclass
from pathlib import Path

import torch

logger = logging.getLogger("lstmae")

#: The ABI the Python side expects (LSTMAE_KERNELS_ABI in kernels.c).
ABI = 5

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
    lib.lstmae_ae_forward.argtypes = [pointer, size]  # (const ae_model *, threads): see lstmae.backends.fused
    lib.lstmae_ae_forward.restype = ctypes.c_int
    lib.lstmae_ae_backward.argtypes = [pointer, size]
    lib.lstmae_ae_backward.restype = ctypes.c_int
    lib.lstmae_ae_scratch.argtypes = [size, size]
    lib.lstmae_ae_scratch.restype = size
    lib.lstmae_nearest.argtypes = [size] * 4 + [pointer] * 2 + [size] + [pointer] * 6 + [size, pointer]
    lib.lstmae_nearest.restype = ctypes.c_int
    lib.lstmae_activations.argtypes = [size, pointer, pointer, pointer, ctypes.c_int]
    lib.lstmae_activations.restype = None
    lib.lstmae_kernels_vectorised.restype = ctypes.c_int
    lib.lstmae_kernels_threaded.restype = ctypes.c_int
    return lib


#: Rounds of k-means that form the groups of the C nearest-row search.
GROUPING_ROUNDS = 4


def searchable(*tensors: torch.Tensor) -> bool:
    """Whether `nearest_squared` runs for these tensors here: the kernels are loaded and they are float32 on the CPU."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors) and library() is not None


@dataclass(frozen=True)
class RowGroups:
    """Reference rows for the C nearest-row search (`nearest_squared`), sorted into groups of alike rows.

    About sqrt(M) groups by a few rounds of k-means (the first centres spread
    evenly over the rows: deterministic); each group has a centre and a radius
    no row of it is farther from, so that a group whose distance bound is above
    the best distance found is skipped whole (kernels.c, "nearest rows"). The
    grouping decides only what is skipped, never a distance: any grouping gives
    the same result, to the bit. The rows are not copied.
    """

    rows: torch.Tensor  # (M, L) float32, contiguous: the reference
    order: torch.Tensor  # (M,) int64: the rows by group
    offsets: torch.Tensor  # (G + 1,) int64: group g is rows[order[offsets[g] : offsets[g + 1]]]
    centres: torch.Tensor  # (G, L) float32
    radii: torch.Tensor  # (G,) float32, rounded up

    @classmethod
    def of(cls, reference: torch.Tensor) -> "RowGroups":
        """Group (M, L) float32 CPU rows, M >= 1."""
        rows = reference.detach().contiguous()
        m = rows.shape[0]
        count = max(1, min(m, round(m**0.5)))
        centres = rows[torch.linspace(0, m - 1, count).round().long()]
        for _ in range(GROUPING_ROUNDS + 1):  # the last round only assigns
            ranking = torch.addmm(centres.pow(2).sum(dim=1), rows, centres.t(), alpha=-2)  # (M, G): |r - c|^2 - |r|^2
            assigned = ranking.argmin(dim=1)
            sizes = torch.bincount(assigned, minlength=count)
            sums = torch.zeros_like(centres).index_add_(0, assigned, rows)
            centres = torch.where(sizes[:, None] > 0, sums / sizes.clamp_min(1)[:, None], centres)  # an empty group keeps its centre
        order = torch.argsort(assigned, stable=True)
        offsets = torch.zeros(count + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(sizes, 0)
        spread = (rows.double() - centres.double()[assigned]).pow(2).sum(dim=1).sqrt()  # (M,) each row from its centre
        radii = torch.zeros(count, dtype=torch.float64).scatter_reduce_(0, assigned, spread, "amax")
        radii = torch.nextafter((radii * (1 + 1e-6)).float(), torch.tensor(float("inf")))  # float32 must not round down
        return cls(rows, order, offsets, centres.contiguous(), radii)


def nearest_squared(
    queries: torch.Tensor, groups: RowGroups, positions: tuple[torch.Tensor, torch.Tensor, int] | None = None
) -> torch.Tensor:
    """Smallest squared Euclidean distance from each query row to the reference rows, by the C search.

    Only where `searchable` (else torch searches: `lstmae.scoring.latent`, `lstmae.scoring.neighbours`).

    Parameters
    ----------
    queries : Tensor of shape (N, L), float32, CPU
    groups : `RowGroups` of the reference (M, L), prepared once for many calls
    positions : (query positions (N,), reference positions (M,), exclusion), optional
        Skip the reference rows with ``|p_q - p_r| < exclusion``; a query with none left gets its plain nearest.

    Returns
    -------
    Tensor of shape (N,), float32: the minimum over the reference rows of each pair's sum of squared
    differences, summed directly (exact to float32 rounding, the same bits in every call); NaN for a
    query holding NaN.
    """
    lib = library()
    queries = queries.contiguous()
    out = torch.empty(queries.shape[0], dtype=torch.float32)
    at = (None, None, 0)
    if positions is not None:
        query_at, reference_at, exclusion = positions
        at = (query_at.to(torch.int64).contiguous(), reference_at.to(torch.int64).contiguous(), int(exclusion))
    pointers = [None if t is None else t.data_ptr() for t in at[:2]]
    if queries.shape[0] and lib.lstmae_nearest(
        queries.shape[0], groups.rows.shape[0], queries.shape[1], threads(lib), queries.data_ptr(), groups.rows.data_ptr(),
        groups.centres.shape[0], groups.order.data_ptr(), groups.offsets.data_ptr(), groups.centres.data_ptr(),
        groups.radii.data_ptr(), *pointers, at[2], out.data_ptr(),
    ):
        raise RuntimeError("lstmae_nearest needs AVX2 + FMA")
    return out
