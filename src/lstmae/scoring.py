"""Errors -> per-timestep scores -> a threshold -> anomalous intervals.

Scores are always "higher = more anomalous". For a long series a timestep's
score is the mean, over the windows that cover it, of that window's squared
reconstruction error at that step, averaged over features (in the scaled units
the model was trained in). For a panel, a sample's score is the mean squared
error over its timesteps and features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstmae.errors import ParameterError

#: The default threshold rule ("auto"): the largest per-timestep score seen on
#: the training data, times this margin. The training data is taken as normal,
#: so what the model reconstructs clearly worse than everything it was trained
#: on is flagged. The margin is there because the maximum of noisy scores grows
#: with the number of timesteps: scoring as much new normal data as was trained
#: on exceeds the training maximum about half the time by chance, usually by a
#: few percent (measured on noisy sines: 1.01x and 1.2x). Simple and
#: documented; later releases add EVT-based rules.
AUTO_THRESHOLD_MARGIN = 1.25


def auto_threshold(train_scores: np.ndarray) -> float:
    """Threshold of the ``"auto"`` rule from the training data's scores.

    Parameters
    ----------
    train_scores : ndarray of shape (n,)
        Per-timestep (or per-sample) scores of the training data.
    """
    return float(np.max(train_scores) * AUTO_THRESHOLD_MARGIN)


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


INTERVAL_COLUMNS = ["start", "end", "length", "peak_score", "mean_score", "severity"]


def interval_table(
    scores: np.ndarray,
    threshold: float,
    min_gap: int = 1,
    index: pd.Index | None = None,
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

    Returns
    -------
    DataFrame with one row per interval, sorted by start:
        ``start``, ``end`` (inclusive positions), ``length``, ``peak_score``,
        ``mean_score``, ``severity`` (peak_score / threshold, > 1), and
        ``start_time``, ``end_time`` when ``index`` is given.
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
    table = pd.DataFrame(rows, columns=INTERVAL_COLUMNS)
    table = table.astype(
        {"start": "int64", "end": "int64", "length": "int64", "peak_score": "float64", "mean_score": "float64", "severity": "float64"}
    )  # an empty table would otherwise have object columns
    if index is not None and not isinstance(index, pd.RangeIndex):
        table.insert(2, "start_time", index[table["start"].to_numpy()])
        table.insert(3, "end_time", index[table["end"].to_numpy()])
    return table
