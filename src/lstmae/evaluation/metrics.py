"""Evaluation of anomaly scores against point labels: AUC, VUS, range-based F1, UCR top-1.

The definitions follow the TSB-AD benchmark (Liu & Paparrizos, NeurIPS 2024),
whose numbers the lstmae benchmark reports, so that our scores can be put
beside published ones:

- ``auc_roc`` and ``auc_pr``: the area under the ROC curve (ties counted as
  half, the trapezoid rule) and average precision (the step-wise sum
  ``sum_k (R_k - R_{k-1}) P_k`` over the distinct score values).
- ``vus_roc`` and ``vus_pr``: the volume under the range-ROC and range-PR
  surfaces of Paparrizos et al., "Volume Under the Surface", VLDB 2022, in
  the ``version='opt'`` variant of TSB-AD with ``thre=250`` thresholds: the
  mean over buffer lengths ``w = 0 .. window`` of a range-AUC in which each
  labelled range is widened by ``w // 2`` points on each side with soft
  labels ``sqrt(1 - d / w)`` at distance ``d``.
- ``range_f1``: the range-based precision / recall of Tatbul et al.,
  NeurIPS 2018, with TSB-AD's parameters (recall: ``alpha = 0.2``,
  precision: ``alpha = 0``; flat positional bias; cardinality factor
  ``1 / (number of overlapping predicted ranges)``), without point
  adjustment; ``best_range_f1`` takes the best F1 over TSB-AD's grid of 100
  thresholds (TSB-AD's "R-based-F1").
- ``ucr_top1``: the UCR archive's rule, is the arg-max of the score over the
  test part within ``margin`` points of the labelled anomaly.
- ``sliding_window``: the period estimate TSB-AD uses as the VUS window.

Higher scores mean more anomalous everywhere. Every function validates its
input and raises `lstmae.errors.DataError` / `ParameterError` with the value
received. Nothing here imports torch.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from lstmae.errors import DataError, ParameterError, describe

__all__ = [
    "auc_pr",
    "auc_roc",
    "best_range_f1",
    "evaluate",
    "label_ranges",
    "range_f1",
    "sliding_window",
    "ucr_top1",
    "vus_pr",
    "vus_roc",
]

#: Number of score thresholds of the VUS curves (TSB-AD's ``thre``).
VUS_THRESHOLDS = 250
#: Number of thresholds of TSB-AD's grid for threshold-free range F1.
RANGE_F1_THRESHOLDS = 100
#: The default VUS window when no period is found (TSB-AD's fallback).
DEFAULT_WINDOW = 125


# ----------------------------------------------------------------- validation
def _labels(y: object, name: str = "y") -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of 0/1 labels of shape (n,), got shape {labels.shape}.")
    if labels.size == 0:
        raise DataError(f"{name} is empty; give one 0/1 label per timestep.")
    if labels.dtype == bool:
        return labels.astype(np.int8)
    if not np.issubdtype(labels.dtype, np.number):
        raise DataError(f"{name} must hold the numbers 0 and 1, got dtype {labels.dtype}.")
    bad = ~np.isin(labels, (0, 1))
    if bad.any():
        raise DataError(
            f"{name} must be binary (0 = normal, 1 = anomaly); found {describe(labels[bad][0].item())} "
            f"at index {int(np.flatnonzero(bad)[0])}. Convert the labels with (y > 0).astype(int)."
        )
    return labels.astype(np.int8)


def _scores(score: object, n: int) -> np.ndarray:
    values = np.asarray(score, dtype=np.float64)
    if values.ndim != 1:
        raise DataError(f"score must be a 1-D array of shape (n,), one score per timestep; got shape {values.shape}.")
    if values.shape[0] != n:
        raise DataError(f"score and y must have the same length; got {values.shape[0]} scores and {n} labels.")
    finite = np.isfinite(values)
    if not finite.all():
        index = int(np.flatnonzero(~finite)[0])
        raise DataError(
            f"score must be finite; found {values[index]} at index {index}. "
            "Replace NaN/inf (e.g. np.nan_to_num) or score every timestep."
        )
    return values


def _both_classes(labels: np.ndarray, metric: str) -> None:
    positives = int(labels.sum())
    if positives == 0 or positives == labels.size:
        kind = "no anomaly (all labels 0)" if positives == 0 else "no normal point (all labels 1)"
        raise DataError(
            f"{metric} needs at least one anomalous and one normal timestep; y of length {labels.size} has {kind}. "
            "Evaluate this series with another metric or leave it out."
        )


def _inputs(y: object, score: object, metric: str) -> tuple[np.ndarray, np.ndarray]:
    labels = _labels(y)
    scores = _scores(score, labels.size)
    _both_classes(labels, metric)
    return labels, scores


def _window(window: object) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 0:
        raise ParameterError(f"window must be an integer >= 0 (a period, e.g. sliding_window(values)), got {describe(window)}.")
    return int(window)


# ----------------------------------------------------------------- ranges
def label_ranges(y: object) -> np.ndarray:
    """The runs of ones in a 0/1 vector.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels or predictions.

    Returns
    -------
    ranges : ndarray of shape (n_ranges, 2), int64
        ``[start, end]`` of each run, both inclusive, in order.
    """
    flags = np.asarray(y).astype(np.int8, copy=False).ravel()
    edges = np.diff(np.concatenate(([0], flags, [0])).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return np.stack([starts, ends], axis=1).astype(np.int64)


# ----------------------------------------------------------------- point-wise AUCs
def auc_roc(y: object, score: object) -> float:
    """Area under the ROC curve: the chance that an anomaly outscores a normal point (ties count half).

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels, 1 = anomaly; both classes must occur.
    score : array-like of shape (n,)
        Finite scores, higher = more anomalous.

    Returns
    -------
    float in [0, 1]
        ``sklearn.metrics.roc_auc_score(y, score)``, after lstmae's input checks.
    """
    labels, scores = _inputs(y, score, "auc_roc")
    return float(roc_auc_score(labels, scores))


def auc_pr(y: object, score: object) -> float:
    """Average precision: ``sum_k (R_k - R_{k-1}) * P_k`` over the distinct score values, highest first.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels, 1 = anomaly; both classes must occur.
    score : array-like of shape (n,)
        Finite scores, higher = more anomalous.

    Returns
    -------
    float in [0, 1]
        ``sklearn.metrics.average_precision_score(y, score)``, after lstmae's input checks
        (TSB-AD's AUC-PR): a step sum, not the trapezoid.
    """
    labels, scores = _inputs(y, score, "auc_pr")
    return float(average_precision_score(labels, scores))


# ----------------------------------------------------------------- VUS
def _vus(labels: np.ndarray, scores: np.ndarray, window: int, thresholds: int) -> tuple[float, float]:
    """(VUS-ROC, VUS-PR) as TSB-AD's ``RangeAUC_volume_opt`` defines them, vectorised.

    For each buffer ``w`` in ``0..window`` and each of ``thresholds`` score
    thresholds (the scores at ranks ``linspace(0, n-1, thresholds)`` of the
    descending sort; a point is predicted when ``score >= threshold``):

    - ``soft_w``: the labels with ramps ``sqrt(1 - d/w)`` on the ``w//2``
      points each side of every labelled range (overlapping ramps add, capped at 1);
    - ``TP = sum(soft_w * pred)``, ``FP = n_pred - TP``;
    - ``P' = (P + P + sum_{normal points} soft_w * pred) / 2``;
    - ``TPR = min(TP / P', 1) * (share of widened ranges hit by a prediction)``,
      ``FPR = FP / (n - P')``, ``precision = TP / n_pred``;
    - range-AUC-ROC by trapezoids through (0,0) and (1,1), range-AP as
      ``sum (TPR_k - TPR_{k-1}) * precision_k`` from (0, 1).
    """
    n = labels.size
    positives = float(labels.sum())
    ranges = label_ranges(labels)
    starts, ends = ranges[:, 0], ranges[:, 1]

    # Thresholds and, per point, the first threshold index at which it is predicted.
    descending = -np.sort(-scores)
    cut = descending[np.linspace(0, n - 1, thresholds).astype(int)]  # non-increasing
    n_pred = np.searchsorted(-descending, -cut, side="right").astype(np.float64)  # count of score >= cut

    # Only points within window//2 of a labelled range matter for TP, P' and existence.
    half_max = window // 2
    near = np.zeros(n + 1, dtype=np.int64)
    np.add.at(near, np.maximum(starts - half_max, 0), 1)
    np.add.at(near, np.minimum(ends + half_max + 1, n), -1)
    region = np.flatnonzero(np.cumsum(near[:-1]) > 0)
    # first_hit[i]: smallest k with cut[k] <= score[i] (thresholds if never predicted).
    first_hit = np.searchsorted(-cut, -scores[region], side="left")
    is_anomaly = labels[region] == 1

    auc_sum = 0.0
    ap_sum = 0.0
    for w in range(window + 1):
        half = w // 2
        soft = _soft_labels(region, starts, ends, half, w, n)
        soft[is_anomaly] = 1.0
        # Cumulative sums over thresholds of soft labels newly predicted at each k.
        tp = np.cumsum(np.bincount(first_hit, weights=soft, minlength=thresholds + 1)[:thresholds])
        extra = np.cumsum(
            np.bincount(first_hit[~is_anomaly], weights=soft[~is_anomaly], minlength=thresholds + 1)[:thresholds]
        )
        hit = _ranges_hit(region, first_hit, starts, ends, half, n, thresholds)

        p_new = (positives + positives + extra) / 2.0
        recall = np.minimum(tp / p_new, 1.0)
        tpr = recall * hit
        fpr = (n_pred - tp) / (n - p_new)
        precision = tp / n_pred

        tpr_curve = np.concatenate(([0.0], tpr, [1.0]))
        fpr_curve = np.concatenate(([0.0], fpr, [1.0]))
        auc_sum += float(np.dot(np.diff(fpr_curve), (tpr_curve[1:] + tpr_curve[:-1]) / 2.0))
        ap_sum += float(np.dot(np.diff(tpr_curve[:-1]), precision))
    return auc_sum / (window + 1), ap_sum / (window + 1)


def _soft_labels(region: np.ndarray, starts, ends, half: int, w: int, n: int) -> np.ndarray:
    """The ramps ``sqrt(1 - d/w)`` around each range, summed and capped at 1, on the points of ``region``."""
    if half == 0:
        return np.zeros(region.size, dtype=np.float64)
    distance = np.arange(1, half + 1)
    height = np.broadcast_to(np.sqrt(1.0 - distance / w), (starts.size, half)).ravel()
    after = (ends[:, None] + distance).ravel()  # (n_ranges * half,)
    before = (starts[:, None] - distance).ravel()
    keep_after, keep_before = after < n, before >= 0
    ramp = np.zeros(n, dtype=np.float64)  # bincount of nothing would be int64
    ramp += np.bincount(after[keep_after], weights=height[keep_after], minlength=n)
    ramp += np.bincount(before[keep_before], weights=height[keep_before], minlength=n)
    return np.minimum(ramp[region], 1.0)


def _ranges_hit(region, first_hit, starts, ends, half: int, n: int, thresholds: int) -> np.ndarray:
    """Per threshold, the share of widened (and merged) ranges that contain a predicted point."""
    lo = np.maximum(starts - half, 0)
    hi = np.minimum(ends + half, n - 1)
    # Merge widened ranges that touch or overlap (TSB-AD keeps apart only those with a gap).
    new = np.concatenate(([True], lo[1:] > hi[:-1]))
    group_lo = lo[new]
    group_hi = np.maximum.reduceat(hi, np.flatnonzero(new))
    # Earliest threshold index at which some point of each merged range is predicted:
    # the minimum of first_hit over the region points inside [group_lo, group_hi].
    left = np.searchsorted(region, group_lo, side="left")
    right = np.searchsorted(region, group_hi, side="right")
    padded = np.append(first_hit, thresholds)  # lets `right` reach len(region)
    bounds = np.stack([left, right], axis=1).ravel()
    earliest = np.minimum.reduceat(padded, bounds)[::2]
    counts = np.cumsum(np.bincount(earliest, minlength=thresholds + 1)[:thresholds])
    return counts / group_lo.size


def vus_roc(y: object, score: object, window: int) -> float:
    """Volume under the range-ROC surface (TSB-AD's VUS-ROC, ``version='opt'``, 250 thresholds).

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels, 1 = anomaly; both classes must occur.
    score : array-like of shape (n,)
        Finite scores, higher = more anomalous.
    window : int >= 0
        The largest buffer length; TSB-AD uses ``sliding_window(values)``.

    Returns
    -------
    float in [0, 1]
    """
    labels, scores = _inputs(y, score, "vus_roc")
    return _vus(labels, scores, _window(window), VUS_THRESHOLDS)[0]


def vus_pr(y: object, score: object, window: int) -> float:
    """Volume under the range-PR surface (TSB-AD's VUS-PR, ``version='opt'``, 250 thresholds).

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels, 1 = anomaly; both classes must occur.
    score : array-like of shape (n,)
        Finite scores, higher = more anomalous.
    window : int >= 0
        The largest buffer length; TSB-AD uses ``sliding_window(values)``.

    Returns
    -------
    float in [0, 1]
    """
    labels, scores = _inputs(y, score, "vus_pr")
    return _vus(labels, scores, _window(window), VUS_THRESHOLDS)[1]


# ----------------------------------------------------------------- range-based F1
def _range_recall(truth_ranges: np.ndarray, predicted: np.ndarray, predicted_ranges: np.ndarray, alpha: float) -> float:
    """Tatbul et al.'s range recall of ``truth_ranges`` by ``predicted`` (flat bias, cardinality 1/k)."""
    if truth_ranges.shape[0] == 0:
        return 0.0
    covered = np.concatenate(([0], np.cumsum(predicted, dtype=np.int64)))
    starts, ends = truth_ranges[:, 0], truth_ranges[:, 1]
    hits = covered[ends + 1] - covered[starts]
    existence = hits > 0
    overlap = hits / (ends - starts + 1)
    # Predicted ranges overlapping each truth range: those starting <= end and ending >= start.
    overlapping = np.searchsorted(predicted_ranges[:, 0], ends, side="right") - np.searchsorted(
        predicted_ranges[:, 1], starts, side="left"
    )
    cardinality = np.where(overlapping > 0, 1.0 / np.maximum(overlapping, 1), 0.0)
    reward = alpha * existence.sum() + (1 - alpha) * np.sum(overlap * cardinality)
    return float(reward / truth_ranges.shape[0])


def range_f1(y: object, pred: object, *, alpha: float = 0.2) -> tuple[float, float, float]:
    """Range-based precision, recall and F1 of binary predictions (Tatbul et al., NeurIPS 2018).

    No point adjustment. Recall rewards each labelled range with
    ``alpha * existence + (1 - alpha) * overlap * cardinality``, where overlap
    is the share of its points predicted (flat bias) and cardinality is
    ``1 / (number of predicted ranges that overlap it)``; precision is the same
    with the roles swapped and ``alpha = 0``. These are TSB-AD's choices.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels, 1 = anomaly.
    pred : array-like of shape (n,)
        0/1 predictions, 1 = flagged anomalous.
    alpha : float in [0, 1]
        Weight of the existence reward in recall.

    Returns
    -------
    (precision, recall, f1) : tuple of floats
        Each 0 when there is nothing to measure (no predicted / no labelled range).

    Notes
    -----
    One difference from TSB-AD, outside what ``best_range_f1`` can meet: a
    vector of ones only (no 0 at all) is one range here, while TSB-AD's range
    finder sees no range in it.
    """
    labels = _labels(y)
    predicted = _labels(pred, "pred")
    if predicted.size != labels.size:
        raise DataError(f"pred and y must have the same length; got {predicted.size} predictions and {labels.size} labels.")
    if not 0.0 <= alpha <= 1.0:
        raise ParameterError(f"alpha must lie in [0, 1], got {describe(alpha)}.")
    return _range_prf(labels, label_ranges(labels), predicted, alpha)


def _range_prf(labels, truth_ranges, predicted, alpha) -> tuple[float, float, float]:
    predicted_ranges = label_ranges(predicted)
    recall = _range_recall(truth_ranges, predicted, predicted_ranges, alpha)
    precision = _range_recall(predicted_ranges, labels, truth_ranges, 0.0)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


def best_range_f1(y: object, score: object) -> float:
    """The best range-based F1 over 100 thresholds evenly spaced from min to max score (TSB-AD's R-based-F1).

    A point is predicted when ``score > threshold``.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels, 1 = anomaly; both classes must occur.
    score : array-like of shape (n,)
        Finite scores, higher = more anomalous.

    Returns
    -------
    float in [0, 1]
    """
    labels, scores = _inputs(y, score, "best_range_f1")
    truth_ranges = label_ranges(labels)
    best = 0.0
    for threshold in np.linspace(scores.min(), scores.max(), RANGE_F1_THRESHOLDS):
        best = max(best, _range_prf(labels, truth_ranges, (scores > threshold).astype(np.int8), 0.2)[2])
    return best


# ----------------------------------------------------------------- UCR top-1
def ucr_top1(y: object, score: object, train_end: int, margin: int = 100) -> int:
    """1 when the highest score of the test part lies within ``margin`` points of a labelled anomaly, else 0.

    The UCR archive's rule: with ``p = train_end + argmax(score[train_end:])``
    (the first maximum on ties), the answer is 1 when some labelled range
    ``[start, end)`` (end exclusive) has ``start - margin <= p < end + margin``.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels with at least one anomaly.
    score : array-like of shape (n,)
        Finite scores, higher = more anomalous.
    train_end : int
        Start of the test part, ``0 <= train_end < n``.
    margin : int >= 0
        Tolerance in points on each side.

    Returns
    -------
    int, 0 or 1
    """
    labels = _labels(y)
    scores = _scores(score, labels.size)
    n = labels.size
    if isinstance(train_end, bool) or not isinstance(train_end, (int, np.integer)) or not 0 <= train_end < n:
        raise ParameterError(f"train_end must be an integer in [0, {n}) for a series of length {n}, got {describe(train_end)}.")
    if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)) or margin < 0:
        raise ParameterError(f"margin must be an integer >= 0, got {describe(margin)}.")
    ranges = label_ranges(labels)
    if ranges.shape[0] == 0:
        raise DataError("ucr_top1 needs at least one labelled anomaly; y has none.")
    peak = int(train_end) + int(np.argmax(scores[train_end:]))
    inside = (ranges[:, 0] - margin <= peak) & (peak < ranges[:, 1] + 1 + margin)
    return int(inside.any())


# ----------------------------------------------------------------- window
def sliding_window(values: object, max_lag: int = 400) -> int:
    """The VUS window TSB-AD derives from a series: its strongest autocorrelation period.

    Reproduces ``TSB_AD.utils.slidingWindows.find_length_rank(values[:, 0].reshape(-1, 1), rank=1)``:
    on the first channel's first 20,000 points, the autocorrelation (biased,
    mean removed) at lags 3..``max_lag``; among its strict local maxima the
    highest one's lag, if that lag lies in 6..303, else 125.

    Parameters
    ----------
    values : array-like of shape (n,) or (n, d)
        The series; only column 0 is used.
    max_lag : int
        Largest lag of the autocorrelation (TSB-AD: 400).

    Returns
    -------
    int
        The window, in timesteps.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 2:
        array = array[:, 0]
    elif array.ndim != 1:
        raise DataError(f"values must have shape (n,) or (n, d), got shape {array.shape}.")
    if array.size < 2 or not np.isfinite(array).all():
        raise DataError(f"values must hold at least 2 finite numbers in column 0; got {array.size} values "
                        f"({int((~np.isfinite(array)).sum())} not finite).")
    x = array[:20000]
    x = x - x.mean()
    n = x.size
    size = 1 << int(math.ceil(math.log2(2 * n + 1)))
    spectrum = np.fft.rfft(x, size)
    autocovariance = np.fft.irfft(spectrum * np.conj(spectrum), size)[: min(max_lag, n - 1) + 1] / n
    if autocovariance[0] == 0:
        return DEFAULT_WINDOW
    base = 3
    acf = autocovariance[base:] / autocovariance[0]
    if acf.size < 3:
        return DEFAULT_WINDOW
    inner = acf[1:-1]
    peaks = np.flatnonzero((inner > acf[:-2]) & (inner > acf[2:])) + 1
    if peaks.size == 0:
        return DEFAULT_WINDOW
    best = peaks[np.argsort(acf[peaks])[::-1][0]]
    if best < 3 or best > 300:
        return DEFAULT_WINDOW
    return int(best + base)


# ----------------------------------------------------------------- all at once
def evaluate(
    y: object,
    score: object,
    *,
    window: int | None = None,
    values: object = None,
    train_end: int | None = None,
) -> dict[str, float]:
    """The benchmark's metrics of one scored series.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels; both classes must occur.
    score : array-like of shape (n,)
        Finite scores, higher = more anomalous.
    window : int, optional
        VUS window; by default ``sliding_window(values)`` when ``values`` is
        given, else 125.
    values : array-like of shape (n,) or (n, d), optional
        The series, to derive the window from.
    train_end : int, optional
        Start of the test part; when given, ``ucr_top1`` is included.

    Returns
    -------
    dict
        ``vus_pr, auc_pr, vus_roc, auc_roc, window`` and, with ``train_end``, ``ucr_top1``.
    """
    labels, scores = _inputs(y, score, "evaluate")
    if values is not None and np.shape(values)[0] != labels.size:
        raise DataError(f"values must have one row per label; got {np.shape(values)[0]} rows and {labels.size} labels.")
    if window is None:
        window = sliding_window(values) if values is not None else DEFAULT_WINDOW
    window = _window(window)
    roc, pr = _vus(labels, scores, window, VUS_THRESHOLDS)
    result: dict[str, float] = {
        "vus_pr": pr,
        "auc_pr": auc_pr(labels, scores),
        "vus_roc": roc,
        "auc_roc": auc_roc(labels, scores),
        "window": window,
    }
    if train_end is not None:
        result["ucr_top1"] = ucr_top1(labels, scores, train_end)
    return result
