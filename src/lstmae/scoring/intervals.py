"""From scores to detections: a long series' anomalous intervals (runs above the threshold, merged over
short gaps) or a panel's anomalous samples, as a table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstmae.errors import ParameterError
from lstmae.params import check_integer


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


def sample_table(
    scores: np.ndarray,
    threshold: float,
    ids: pd.Index | None = None,
    feature_scores: np.ndarray | None = None,
    feature_names: list[str] | None = None,
) -> pd.DataFrame:
    """The anomalous samples of a panel (score > threshold), one row each, most anomalous first.

    Parameters
    ----------
    scores : ndarray of shape (S,)
    threshold : float
    ids : pandas.Index of length S, optional
        The samples' ids; adds a column named ``ids.name`` (``id`` when it has none).
    feature_scores : ndarray of shape (S, n_features), optional
        Per-feature reconstruction scores; adds ``top_features``.
    feature_names : list of str, optional
        Names for ``top_features``; default ``"0"``, ``"1"``, ...

    Returns
    -------
    DataFrame with columns ``sample`` (position in the panel), ``id`` (with
    ``ids``), ``score``, ``severity`` (score / threshold) and ``top_features``
    (the features with the largest share of the sample's reconstruction error,
    ``"name (share%)"``, as `lstmae.scoring.intervals.top_features`); ties keep sample order.
    """
    scores = np.asarray(scores, dtype=np.float64)
    chosen = np.flatnonzero(scores > threshold)
    chosen = chosen[np.argsort(-scores[chosen], kind="stable")]
    table = pd.DataFrame({"sample": chosen.astype(np.int64)})
    if ids is not None:  # named as the input names its ids (a DataFrame indexed by (user, day): "user")
        table[ids.name or "id"] = ids[chosen] if len(chosen) else pd.Index([], dtype=ids.dtype)
    table["score"] = scores[chosen]
    table["severity"] = scores[chosen] / threshold if threshold > 0 else np.inf
    if feature_scores is not None:
        per = np.asarray(feature_scores, dtype=np.float64)
        names = [str(i) for i in range(per.shape[1])] if feature_names is None else feature_names
        table["top_features"] = pd.Series([top_features(per[i], names) for i in chosen], dtype=object)
    return table


def detection_gap(kind: str, min_gap: int | None, timesteps: int) -> int | None:
    """The gap `detections` merges a long series' runs over: ``min_gap``, by default ``timesteps``.

    A panel's samples are independent (``kind`` "panel"): none, and a ``min_gap`` is refused.
    """
    if kind == "panel":
        if min_gap is not None:
            raise ParameterError(
                f"min_gap={min_gap!r} merges nearby timesteps of a long series; the samples of a panel are independent "
                "and each anomalous sample is its own row: leave min_gap out."
            )
        return None
    return check_integer("min_gap", timesteps if min_gap is None else min_gap, 1)


def detections(
    kind: str,
    scores: np.ndarray,
    threshold: float,
    min_gap: int | None,
    index: pd.Index | None = None,
    feature_scores: np.ndarray | None = None,
    feature_names: list[str] | None = None,
) -> pd.DataFrame:
    """What `LSTMAutoencoder.detect` gives for input of ``kind``: a series' `interval_table`, a panel's `sample_table`.

    ``index``: the series' row labels, or the panel's sample ids; ``min_gap`` from `detection_gap`.
    """
    if kind == "panel":
        return sample_table(scores, threshold, ids=index, feature_scores=feature_scores, feature_names=feature_names)
    return interval_table(scores, threshold, min_gap, index=index, feature_scores=feature_scores, feature_names=feature_names)
