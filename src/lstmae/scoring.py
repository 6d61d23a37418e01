"""Errors -> per-timestep scores -> a threshold -> anomalous intervals.

Scores are always "higher = more anomalous". For a long series a timestep's
reconstruction score is the mean, over the windows that cover it, of that
window's squared reconstruction error at that step, averaged over features (in
the scaled units the model was trained in). For a panel, a sample's score is
the mean squared error over its timesteps and features. The "combined" scorer
adds the latent distance (`lstmae.latent`) and, for a series, the input-space
nearest-neighbour distance (`lstmae.neighbours`), each over its held-out level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lstmae.errors import ParameterError
from lstmae.params import n_train

#: The default threshold rule ("auto"): the largest per-timestep score seen on
#: the training data, times this margin. The training data is taken as normal,
#: so what the model reconstructs clearly worse than everything it was trained
#: on is flagged. The margin is there because the maximum of noisy scores grows
#: with the number of timesteps: scoring as much new normal data as was trained
#: on exceeds the training maximum about half the time by chance, usually by a
#: few percent (measured on noisy sines: 1.01x and 1.2x). Simple and
#: documented; threshold="pot" fits the tail of held-out scores instead.
AUTO_THRESHOLD_MARGIN = 1.25


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


def auto_threshold(train_scores: np.ndarray) -> float:
    """Threshold of the ``"auto"`` rule from the training data's scores.

    Parameters
    ----------
    train_scores : ndarray of shape (n,)
        Per-timestep (or per-sample) scores of the training data.
    """
    return float(np.max(train_scores) * AUTO_THRESHOLD_MARGIN)


#: threshold="pot": the probability that a normal timestep's score exceeds the
#: threshold (the risk q of Siffer et al., KDD 2017), and the quantile of the
#: held-out scores where the tail fit starts.
POT_RISK = 1e-4
POT_INITIAL_QUANTILE = 0.98


def pot_threshold(normal_scores: np.ndarray, risk: float = POT_RISK, initial_quantile: float = POT_INITIAL_QUANTILE) -> float:
    """Peaks-Over-Threshold: an extreme-value threshold from scores of normal data.

    The excesses of the scores over their ``initial_quantile`` are fitted with
    a generalized Pareto distribution (shape xi, scale sigma, by maximum
    likelihood); the threshold is the score exceeded with probability ``risk``
    under that tail (Siffer et al., "Anomaly Detection in Streams with Extreme
    Value Theory", KDD 2017)::

        z = t + sigma / xi * ((risk * n / n_t) ** -xi - 1)     (xi != 0)
        z = t - sigma * log(risk * n / n_t)                      (xi == 0)

    with t the initial threshold, n the number of scores and n_t the number
    above t. Never below t. When the tail fit is degenerate (fewer than 10
    excesses, all excesses equal, or a non-finite level) the largest normal
    score is returned instead.

    Parameters
    ----------
    normal_scores : ndarray of shape (n,)
        Scores of data believed normal, ideally not trained on (held out).
    risk : float in (0, 1)
    initial_quantile : float in (0, 1)
    """
    from scipy.stats import genpareto

    if not 0 < risk < 1:
        raise ParameterError(f"risk must be in (0, 1), got {risk!r}.")
    if not 0 < initial_quantile < 1:
        raise ParameterError(f"initial_quantile must be in (0, 1), got {initial_quantile!r}.")
    scores = np.asarray(normal_scores, dtype=np.float64).ravel()
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        raise ParameterError("threshold='pot' needs at least one finite normal score; got none.")
    start = float(np.quantile(scores, initial_quantile))
    excesses = scores[scores > start] - start
    if excesses.size < 10 or np.ptp(excesses) == 0:
        return float(scores.max())
    xi, _, sigma = genpareto.fit(excesses, floc=0.0)
    ratio = risk * scores.size / excesses.size
    if abs(xi) < 1e-9:
        level = start - sigma * np.log(ratio)
    else:
        level = start + sigma / xi * (ratio ** (-xi) - 1.0)
    if not np.isfinite(level):
        return float(scores.max())
    return float(max(level, start))


def contamination_threshold(train_scores: np.ndarray, contamination: float) -> float:
    """The score exceeded by a ``contamination`` fraction of the training scores (a quantile).

    Parameters
    ----------
    train_scores : ndarray of shape (n,)
    contamination : float in (0, 0.5]
        Expected share of anomalous timesteps (pyod's ``contamination``).
    """
    if not (isinstance(contamination, (int, float, np.number)) and 0 < contamination <= 0.5):
        raise ParameterError(f"contamination must be in (0, 0.5], got {contamination!r}.")
    # "higher": a training score itself, with at most a contamination share strictly above it.
    return float(np.quantile(np.asarray(train_scores, dtype=np.float64), 1.0 - contamination, method="higher"))


def find_intervals(scores: np.ndarray, threshold: float, min_gap: int = 1) -> np.ndarray:
    """Runs of scores above ``threshold``, merging runs separated by short gaps.

    Parameters
    ----------
    scores : ndarray of shape (n,)
    threshold : float
        A timestep is anomalous when its score is strictly greater.
    min_gap : int
        Two runs separated by fewer than ``min_gap`` normal timesteps become one
        interval. ``1`` merges nothing (only touching runs are one run anyway).

    Returns
    -------
    intervals : ndarray of shape (n_intervals, 2), int64
        ``[start, end]`` positions, both inclusive, in order.
    """
    above = np.asarray(scores) > threshold
    if not above.any():
        return np.zeros((0, 2), dtype=np.int64)
    padded = np.concatenate([[False], above, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, stops = edges[0::2], edges[1::2] - 1  # inclusive ends
    if min_gap > 1 and len(starts) > 1:
        gaps = starts[1:] - stops[:-1] - 1
        keep = np.concatenate([[True], gaps >= min_gap])  # does this run start a new interval?
        first = np.flatnonzero(keep)
        starts = starts[first]
        stops = np.maximum.reduceat(stops, first)  # the last run of each group ends it
    return np.stack([starts, stops], axis=1).astype(np.int64)


#: How many contributing features an interval names.
TOP_FEATURES = 3


def top_features(totals: np.ndarray, names: list[str], k: int = TOP_FEATURES) -> str:
    """The k features with the largest share of ``totals``, as "name (share%)", largest first.

    Parameters
    ----------
    totals : ndarray of shape (n_features,)
        Each feature's summed score over an interval (>= 0).
    names : list of str, one per feature
    """
    totals = np.clip(np.asarray(totals, dtype=np.float64), 0, None)
    whole = totals.sum()
    order = np.argsort(-totals, kind="stable")[:k]
    if whole <= 0:
        return ", ".join(names[i] for i in order)
    return ", ".join(f"{names[i]} ({totals[i] / whole:.0%})" for i in order)


INTERVAL_COLUMNS = ["start", "end", "length", "peak_score", "mean_score", "severity"]


def interval_table(
    scores: np.ndarray,
    threshold: float,
    min_gap: int = 1,
    index: pd.Index | None = None,
    feature_scores: np.ndarray | None = None,
    feature_names: list[str] | None = None,
) -> pd.DataFrame:
    """Detected intervals as a table.

    Parameters
    ----------
    scores : ndarray of shape (n,)
    threshold : float
    min_gap : int
        See `find_intervals`.
    index : pandas.Index of length n, optional
        Labels of the positions (timestamps); adds ``start_time`` / ``end_time``.
    feature_scores : ndarray of shape (n, n_features), optional
        Per-feature scores (``scores`` is their mean); adds ``top_features``.
    feature_names : list of str, optional
        Names for ``top_features``; default ``"0"``, ``"1"``, ...

    Returns
    -------
    DataFrame with one row per interval, sorted by start:
        ``start``, ``end`` (inclusive positions), ``length``, ``peak_score``,
        ``mean_score``, ``severity`` (peak_score / threshold, > 1), and
        ``start_time``, ``end_time`` when ``index`` is given, and
        ``top_features`` when ``feature_scores`` is given: the (up to
        TOP_FEATURES) features with the largest share of the interval's summed
        per-feature score, as ``"name (share%)"`` joined by ``", "``.
    """
    if not isinstance(threshold, (int, float, np.number)) or not np.isfinite(threshold) or threshold < 0:
        raise ParameterError(f"threshold must be a finite number >= 0, got {threshold!r}.")
    if not isinstance(min_gap, (int, np.integer)) or min_gap < 1:
        raise ParameterError(f"min_gap must be an integer >= 1, got {min_gap!r}.")
    scores = np.asarray(scores, dtype=np.float64)
    if index is not None and len(index) != len(scores):
        raise ParameterError(f"index has {len(index)} labels but there are {len(scores)} scores; pass the index of the scored data.")
    spans = find_intervals(scores, threshold, min_gap)
    rows = []
    for start, end in spans:
        part = scores[start : end + 1]
        peak = float(part.max())
        rows.append(
            {
                "start": int(start),
                "end": int(end),
                "length": int(end - start + 1),
                "peak_score": peak,
                "mean_score": float(part.mean()),
                "severity": peak / threshold if threshold > 0 else np.inf,
            }
        )
    if feature_scores is not None:
        per = np.asarray(feature_scores, dtype=np.float64)
        if per.ndim != 2 or per.shape[0] != len(scores):
            raise ParameterError(f"feature_scores must have shape ({len(scores)}, n_features), got {per.shape}.")
        names = [str(i) for i in range(per.shape[1])] if feature_names is None else [str(n) for n in feature_names]
        for row, (start, end) in zip(rows, spans):
            row["top_features"] = top_features(per[start : end + 1].sum(axis=0), names)
    table = pd.DataFrame(rows, columns=INTERVAL_COLUMNS + (["top_features"] if feature_scores is not None else []))
    table = table.astype(
        {"start": "int64", "end": "int64", "length": "int64", "peak_score": "float64", "mean_score": "float64", "severity": "float64"}
    )  # an empty table would otherwise have object columns
    if index is not None and not isinstance(index, pd.RangeIndex):
        table.insert(2, "start_time", index[table["start"].to_numpy()])
        table.insert(3, "end_time", index[table["end"].to_numpy()])
    return table


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


#: threshold="pot" fits the held-out part when it has at least this many scores, else all training scores.
POT_MIN_HELD_OUT = 200


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


def fit_threshold(train_scores: np.ndarray, rule: float | str, contamination: float | None, validation_split: float) -> float:
    """The threshold from the training scores by a rule: a contamination rate, "auto", "pot" or a number.

    "pot" fits the held-out part (the last ``validation_split`` of the scores,
    which the weights were not fitted on) when it has at least POT_MIN_HELD_OUT
    scores, else all of them.
    """
    if contamination is not None:
        return contamination_threshold(train_scores, contamination)
    if rule == "auto":
        return auto_threshold(train_scores)
    if rule == "pot":
        first = n_train(len(train_scores), validation_split)
        held_out = train_scores[first:] if len(train_scores) - first >= POT_MIN_HELD_OUT else train_scores
        return pot_threshold(held_out)
    return float(rule)
