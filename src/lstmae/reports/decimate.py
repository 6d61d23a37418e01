"""Fewer points that keep a long line's shape: the minimum and maximum of each bucket.

Shared by the PNG plot (`lstmae.reports.plots`) and the HTML report
(`lstmae.reports.html`); numpy only, so that the report does not load matplotlib.
"""

from __future__ import annotations

import numpy as np

from lstmae.errors import ParameterError

__all__ = ["DECIMATE_ABOVE", "DECIMATE_BUCKETS", "minmax_decimate_indices"]

#: Series longer than this are decimated before drawing.
DECIMATE_ABOVE = 20_000
#: Number of buckets when decimating: at most ``2 * DECIMATE_BUCKETS + 2`` points
#: per line, a few per horizontal pixel of the default 12-inch figure.
DECIMATE_BUCKETS = 5_000


def minmax_decimate_indices(y: np.ndarray, n_buckets: int) -> np.ndarray:
    """Row positions that keep the shape of ``y`` when drawn with few points.

    ``y`` is cut into ``n_buckets`` contiguous buckets of equal size (the last
    one may be shorter); from each bucket the positions of its minimum and its
    maximum are kept, plus the first and last point. Drawing ``y[idx]`` against
    ``x[idx]`` then shows every spike and dip of the full series.

    Parameters
    ----------
    y : ndarray, shape (n,)
        Values of one line. NaNs are ignored (a bucket of only NaNs keeps its
        first position, which draws as a gap).
    n_buckets : int
        Number of buckets, >= 1. If ``n <= 2 * n_buckets`` all positions are kept.

    Returns
    -------
    ndarray of int64, shape (m,)
        Sorted, unique positions into ``y``, ``m <= 2 * n_buckets + 2``.
    """
    y = np.asarray(y, dtype=float).ravel()
    n = y.size
    if n_buckets < 1:
        raise ParameterError(
            f"n_buckets must be >= 1, got {n_buckets!r}; pass a positive bucket count"
        )
    if n <= 2 * n_buckets:
        return np.arange(n, dtype=np.int64)
    size = -(-n // n_buckets)  # ceil division: every point lands in some bucket
    rows = -(-n // size)
    # Pad to a full rectangle so one argmin/argmax call handles all buckets. The
    # padding is +inf for the minimum search and -inf for the maximum search so
    # it is never chosen (each row holds at least one real point).
    padded = np.full(rows * size, np.nan)
    padded[:n] = y
    grid = padded.reshape(rows, size)
    nan = np.isnan(grid)
    lows = np.argmin(np.where(nan, np.inf, grid), axis=1)
    highs = np.argmax(np.where(nan, -np.inf, grid), axis=1)
    offsets = np.arange(rows) * size
    idx = np.concatenate([offsets + lows, offsets + highs, [0, n - 1]])
    return np.unique(np.clip(idx, 0, n - 1)).astype(np.int64)
