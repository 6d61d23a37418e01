"""Errors -> per-timestep scores -> a threshold -> anomalous intervals.

Scores are always "higher = more anomalous". For a long series a timestep's
reconstruction score is the mean, over the windows that cover it, of that
window's squared reconstruction error at that step, averaged over features (in
the scaled units the model was trained in). For a panel, a sample's score is
the mean squared error over its timesteps and features. The "combined" scorer
adds the latent distance (`lstmae.scoring.latent`) and, for a series, the input-space
nearest-neighbour distance (`lstmae.scoring.neighbours`), each over its held-out level.
"""


from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


#: scorer="combined" on a panel: weight of the latent distance (sample to nearest
#: training sample embedding) beside the reconstruction error, each over its held-out level.
LATENT_WEIGHT = 0.25
#: scorer="combined" on a series: (latent weight, nearest-neighbour weight) beside
#: the reconstruction error, each part over its held-out level, for a series of
#: one feature and of several. Selected by cross-validation over source families
#: (leave one family out, 3 seeds; bench/quality.py --cv, bench/RESULTS-quality.md):
#: on one feature the nearest z-normalised training window finds the odd cycles
#: the network rebuilds well; on several (SMAP/MSL: one telemetry channel beside
#: mostly-flat command flags) the embedding distance did better and the
#: nearest-window part did not help, so it is off there.
SERIES_WEIGHTS = {"univariate": (0.5, 4.0), "multivariate": (2.0, 0.0)}


def combined_weights(n_features: int) -> tuple[float, float]:
    """(latent weight, nearest-neighbour weight) of scorer="combined" on a series of ``n_features`` features."""
    return SERIES_WEIGHTS["univariate" if n_features == 1 else "multivariate"]


@dataclass(frozen=True)
class Parts:
    """The parts of a score, one value per timestep (series) or sample (panel).

    reconstruction : (n,) or (S,), the mean of ``per`` over features
    latent : (n,) or (S,) latent distances, or None
    neighbours : (n,) input-space nearest-neighbour distances (series only), or None
    per : (n, F) or (S, F), per-feature reconstruction scores
    """

    reconstruction: np.ndarray
    latent: np.ndarray | None
    neighbours: np.ndarray | None
    per: np.ndarray


def aggregate(
    errors: np.ndarray,
    distances: np.ndarray | None,
    is_panel: bool,
    aggregation: str,
    timesteps: int,
    neighbours: np.ndarray | None = None,
) -> Parts:
    """Merged errors (and distances) -> the parts of a score per timestep (series) or sample (panel).

    Parameters
    ----------
    errors : ndarray of shape (n, F) (series, per timestep) or (S, T, F) (panel)
    distances : ndarray of shape (n, 1) or (S, 1, 1), or None
        Latent distances, merged onto timesteps (or samples).
    aggregation : "window" (the centred mean over ``timesteps``) or "timestep"
    neighbours : ndarray of shape (n, 1), or None
        Nearest-neighbour window distances merged onto timesteps (series only).
    """
    if is_panel:
        per = errors.mean(axis=1)  # (S, F)
    elif aggregation == "window":
        per = centred_mean(errors, timesteps)  # (n, F)
    else:
        per = errors  # (n, F)
    reconstruction = per.mean(axis=1)

    def spread(values: np.ndarray | None) -> np.ndarray | None:
        if values is None:
            return None
        flat = values.reshape(len(reconstruction))
        return centred_mean(flat, timesteps) if not is_panel and aggregation == "window" else flat

    return Parts(reconstruction, spread(distances), None if is_panel else spread(neighbours), per)


def combine(
    scorer: str,
    parts: Parts,
    levels: tuple[float, float] | None,
    neighbour_level: float | None = None,
    weights: tuple[float, float] | None = None,
) -> np.ndarray:
    """The score a scorer gives from the parts.

    "reconstruction", "latent", "neighbours": that part alone. "combined":
    reconstruction / level + w_latent x latent / level (+ w_neighbours x
    neighbours / level when there is a neighbour part), with ``weights`` =
    (w_latent, w_neighbours) as fitted (`combined_weights` for a series);
    None (a panel, or a model saved before the weights were fitted) is
    (LATENT_WEIGHT, 0).
    """
    if scorer == "reconstruction" or (parts.latent is None and parts.neighbours is None):
        return parts.reconstruction
    if scorer == "latent":
        return parts.latent
    if scorer == "neighbours":
        return parts.neighbours
    latent_weight, neighbour_weight = (LATENT_WEIGHT, 0.0) if weights is None else weights
    score = parts.reconstruction / levels[0] + latent_weight * parts.latent / levels[1]
    if neighbour_weight and parts.neighbours is not None and neighbour_level is not None:
        score = score + neighbour_weight * parts.neighbours / neighbour_level
    return score
