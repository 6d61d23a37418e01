"""From per-timestep values to the values a score reads: the centred mean over a window, the most anomalous
window containing each timestep, or each timestep alone."""

from __future__ import annotations

import numpy as np

#: From per-window errors to per-timestep scores: the centred mean over ``timesteps`` ("window"); the score of the
#: most anomalous of those T-long windows that contain the timestep ("peak"); or none ("timestep").
AGGREGATIONS: tuple[str, ...] = ("window", "peak", "timestep")
#: The aggregations whose parts take the centred mean (`spread`); "peak" then takes the maximum of the score (`peak`).
CENTRED: tuple[str, ...] = ("window", "peak")


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
    return centred_mean(flat, timesteps) if not is_panel and aggregation in CENTRED else flat


def containing_max(values: np.ndarray, width: int) -> np.ndarray:
    """Maximum, at each position, over the centred stretches of ``width`` (as `centred_mean` places them) that
    contain it, clipped to the series.

    The stretch of `centred_mean` at ``s`` is ``[s - width // 2, s - width // 2 + width)``; it contains ``t``
    for ``s`` in ``[t - (width - 1 - width // 2), t + width // 2]``, so position ``t`` takes the maximum of
    ``values`` there. Applied to a centred mean, it gives each timestep the mean of its most anomalous
    window.

    Parameters
    ----------
    values : ndarray of shape (n,)
    width : int >= 1

    Returns
    -------
    ndarray of shape (n,), float64
    """
    x = np.asarray(values, dtype=np.float64)
    if width <= 1 or x.shape[0] == 0:
        return x.copy()
    from scipy.ndimage import maximum_filter1d

    # maximum_filter1d's stretch at t is [t - width // 2 - origin, ... + width); "nearest" repeats the end
    # values, which for a maximum is the same as clipping the stretch to the series.
    origin = (width - 1 - width // 2) - width // 2
    return maximum_filter1d(x, width, mode="nearest", origin=origin)


def peak(scores: np.ndarray, is_panel: bool, aggregation: str, timesteps: int) -> np.ndarray:
    """The scores (n,) a series reads for ``aggregation="peak"``: each timestep's most anomalous window
    (`containing_max` over ``timesteps``); other aggregations and panels' scores (S,) as they are."""
    return containing_max(scores, timesteps) if not is_panel and aggregation == "peak" else scores
