"""From per-timestep values to the values a score reads: the centred mean over a window, or each timestep alone."""

from __future__ import annotations

import numpy as np

#: From per-window errors to per-timestep scores: the centred mean over ``timesteps`` ("window") or none ("timestep").
AGGREGATIONS: tuple[str, ...] = ("window", "timestep")


def centred_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Mean over a centred stretch of ``width`` timesteps, shrunk at the ends.

    Position ``t`` averages ``values[t - width // 2 : t - width // 2 + width]``
    (clipped to the series), so the result has the input's length and no value
    is padded in.

    Parameters
    ----------
    values : ndarray of shape (n,) or (n, n_features)
    width : int >= 1

    Returns
    -------
    ndarray of the same shape, float64
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[0]
    if width <= 1 or n == 0:
        return x.copy()
    sums = np.empty((n + 1, *x.shape[1:]))  # (n + 1, ...): sums[t] = x[:t].sum(axis=0)
    sums[0] = 0.0
    np.cumsum(x, axis=0, out=sums[1:])
    half = width // 2
    out = np.empty_like(x)
    # Interior (the whole stretch inside the series): slices only, no index arrays, so a
    # 10-million-step series costs one extra copy, not several.
    interior = slice(half, n + half - width + 1)
    if n >= width:
        np.subtract(sums[width:], sums[: n - width + 1], out=out[interior])
        out[interior] /= width
    # Ends (fewer than `width` positions each): the stretch is clipped to the series.
    edge = np.concatenate((np.arange(min(half, n)), np.arange(max(n + half - width + 1, min(half, n)), n)))
    first = np.maximum(edge - half, 0)  # edge - half < n and edge - half + width > 0 always: one side each
    last = np.minimum(edge - half + width, n)
    counts = (last - first).reshape(-1, *([1] * (x.ndim - 1)))
    out[edge] = (sums[last] - sums[first]) / counts
    return out


def spread(values: np.ndarray, n: int, is_panel: bool, aggregation: str, timesteps: int) -> np.ndarray:
    """A one-channel part's merged values (n, 1) or (S, 1, 1) as one value per timestep (series: the centred mean
    over ``timesteps`` for ``aggregation="window"``) or per sample: (n,) or (S,) float64."""
    flat = values.reshape(n)
    return centred_mean(flat, timesteps) if not is_panel and aggregation == "window" else flat
