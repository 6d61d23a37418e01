"""Slow, obviously-correct reference implementations, written as plain Python loops.

The fast code in lstmae is compared against these. They use lists and Python
floats, never the vectorised tricks of the code under test.
"""

from __future__ import annotations

import math


def window_starts(n_timesteps: int, timesteps: int, stride: int) -> list[int]:
    """Every ``stride``-th start whose window fits, then the start of the window ending at n-1."""
    starts = []
    start = 0
    while start + timesteps <= n_timesteps:
        starts.append(start)
        start += stride
    last = n_timesteps - timesteps
    if not starts or starts[-1] != last:
        starts.append(last)
    return starts


def gather_windows(series, starts, timesteps: int) -> list:
    """``[series[s], series[s+1], ..., series[s+T-1]]`` for each start, as nested lists."""
    windows = []
    for s in starts:
        window = []
        for t in range(timesteps):
            window.append([float(v) for v in series[s + t]])
        windows.append(window)
    return windows


def timestep_means(n_timesteps: int, starts, values) -> list[list[float] | None]:
    """For each timestep, the mean over the windows covering it (None if no window does).

    ``values[w][t][c]`` is the value of window ``w`` (starting at ``starts[w]``)
    at its step ``t`` for channel ``c``.
    """
    result: list[list[float] | None] = []
    for i in range(n_timesteps):
        collected = []
        for w, s in enumerate(starts):
            timesteps = len(values[w])
            if s <= i < s + timesteps:
                collected.append([float(v) for v in values[w][i - s]])
        if not collected:
            result.append(None)
            continue
        n_channels = len(collected[0])
        result.append([math.fsum(c[k] for c in collected) / len(collected) for k in range(n_channels)])
    return result


def fit_scaler(rows) -> tuple[list[float], list[float]]:
    """Per-feature mean and population standard deviation (1 for a constant feature).

    ``rows`` is a list of rows, each a list of features (leading axes already pooled).
    A feature whose standard deviation is at most 1e-12 times its largest
    magnitude counts as constant (the documented rule).
    """
    n_features = len(rows[0])
    means, scales = [], []
    for f in range(n_features):
        column = [float(r[f]) for r in rows]
        big = max(abs(v) for v in column) or 1.0
        unit = [v / big for v in column]  # avoids overflow near 1e308, as documented
        mean_unit = math.fsum(unit) / len(unit)
        var_unit = math.fsum((u - mean_unit) ** 2 for u in unit) / len(unit)
        std = math.sqrt(var_unit) * big
        means.append(mean_unit * big)
        scales.append(1.0 if std <= big * 1e-12 else std)
    return means, scales


def find_intervals(scores, threshold: float, min_gap: int) -> list[tuple[int, int]]:
    """Walk the scores: collect runs above the threshold, then merge runs closer than min_gap."""
    runs: list[list[int]] = []
    inside = False
    for i, s in enumerate(scores):
        if s > threshold:
            if inside:
                runs[-1][1] = i
            else:
                runs.append([i, i])
                inside = True
        else:
            inside = False
    merged: list[list[int]] = []
    for run in runs:
        if merged:
            normal_between = run[0] - merged[-1][1] - 1
            if normal_between < min_gap:
                merged[-1][1] = run[1]
                continue
        merged.append(list(run))
    return [(a, b) for a, b in merged]


def lstm_parameters(input_size: int, units: int) -> int:
    """One torch ``nn.LSTM`` layer: 4 gates, each with W_ih, W_hh and two bias vectors."""
    return 4 * (units * (input_size + units) + 2 * units)


def autoencoder_parameters(n_features: int, units: tuple[int, ...]) -> int:
    """Encoder F -> u0 -> u1 ..., decoder u_last -> reversed(units), then Linear(u0, F)."""
    total = 0
    previous = n_features
    for u in units:
        total += lstm_parameters(previous, u)
        previous = u
    for u in reversed(units):
        total += lstm_parameters(previous, u)
        previous = u
    total += units[0] * n_features + n_features
    return total


# ----------------------------------------------------------------- metrics
def runs_of_ones(flags) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of the runs of ones, both ends inclusive, by scanning."""
    runs = []
    start = None
    for i, flag in enumerate(flags):
        if flag and start is None:
            start = i
        if not flag and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(flags) - 1))
    return runs


def auc_roc_pairs(y, score) -> float:
    """Share of (anomaly, normal) pairs where the anomaly scores higher; ties count half."""
    wins = 0.0
    pairs = 0
    for i in range(len(y)):
        if y[i] != 1:
            continue
        for j in range(len(y)):
            if y[j] != 0:
                continue
            pairs += 1
            if score[i] > score[j]:
                wins += 1.0
            elif score[i] == score[j]:
                wins += 0.5
    return wins / pairs


def average_precision_loop(y, score) -> float:
    """``sum (R_k - R_{k-1}) P_k`` over the distinct scores, highest first, predicting ``score >= t``."""
    positives = sum(1 for v in y if v == 1)
    total = 0.0
    previous_recall = 0.0
    for threshold in sorted(set(float(s) for s in score), reverse=True):
        tp = sum(1 for v, s in zip(y, score) if s >= threshold and v == 1)
        predicted = sum(1 for s in score if s >= threshold)
        recall = tp / positives
        total += (recall - previous_recall) * (tp / predicted)
        previous_recall = recall
    return total


def vus_loop(y, score, window: int, thresholds: int = 250) -> tuple[float, float]:
    """(VUS-ROC, VUS-PR) as the TSB-AD 'opt' definition reads, point by point (see lstmae.evaluation.metrics._vus)."""
    n = len(y)
    positives = sum(y)
    runs = runs_of_ones(y)
    descending = sorted((float(s) for s in score), reverse=True)
    import numpy as np  # only for the exact grid of ranks TSB-AD uses

    cuts = [descending[i] for i in np.linspace(0, n - 1, thresholds).astype(int)]
    auc_total = 0.0
    ap_total = 0.0
    for w in range(window + 1):
        half = w // 2
        soft = [float(v) for v in y]
        for start, end in runs:
            for d in range(1, half + 1):
                if end + d < n:
                    soft[end + d] += math.sqrt(1 - d / w)
                if start - d >= 0:
                    soft[start - d] += math.sqrt(1 - d / w)
        soft = [min(v, 1.0) for v in soft]
        # Widened ranges, merged when they touch or overlap.
        widened = []
        for start, end in runs:
            lo, hi = max(start - half, 0), min(end + half, n - 1)
            if widened and lo <= widened[-1][1]:
                widened[-1][1] = max(widened[-1][1], hi)
            else:
                widened.append([lo, hi])
        tpr = [0.0]
        fpr = [0.0]
        precision = [1.0]
        for cut in cuts:
            pred = [s >= cut for s in score]
            n_pred = sum(pred)
            tp = sum(soft[i] for i in range(n) if pred[i])
            extra = sum(soft[i] for i in range(n) if pred[i] and y[i] == 0)
            hit = sum(1 for lo, hi in widened if any(pred[lo : hi + 1]))
            p_new = (positives + positives + extra) / 2
            tpr.append(min(tp / p_new, 1.0) * hit / len(widened))
            fpr.append((n_pred - tp) / (n - p_new))
            precision.append(tp / n_pred)
        tpr.append(1.0)
        fpr.append(1.0)
        auc = sum((fpr[k + 1] - fpr[k]) * (tpr[k + 1] + tpr[k]) / 2 for k in range(len(tpr) - 1))
        ap = sum((tpr[k] - tpr[k - 1]) * precision[k] for k in range(1, len(precision)))
        auc_total += auc
        ap_total += ap
    return auc_total / (window + 1), ap_total / (window + 1)


def range_recall_loop(truth, pred, alpha: float) -> float:
    """Tatbul et al. range recall of ``truth`` by ``pred``: flat bias, cardinality 1/(overlapping ranges)."""
    truth_runs = runs_of_ones(truth)
    pred_runs = runs_of_ones(pred)
    if not truth_runs:
        return 0.0
    total = 0.0
    for start, end in truth_runs:
        hits = sum(1 for i in range(start, end + 1) if pred[i])
        existence = 1.0 if hits > 0 else 0.0
        overlapping = sum(1 for a, b in pred_runs if a <= end and b >= start)
        cardinality = 1.0 / overlapping if overlapping else 0.0
        total += alpha * existence + (1 - alpha) * hits / (end - start + 1) * cardinality
    return total / len(truth_runs)


def range_f1_loop(y, pred, alpha: float = 0.2) -> tuple[float, float, float]:
    recall = range_recall_loop(y, pred, alpha)
    precision = range_recall_loop(pred, y, 0.0)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


def ucr_top1_loop(y, score, train_end: int, margin: int = 100) -> int:
    """Is the first maximum of score[train_end:] within margin of a labelled range (end exclusive)?"""
    peak = train_end
    for i in range(train_end, len(score)):
        if score[i] > score[peak]:
            peak = i
    for start, end in runs_of_ones(y):
        if start - margin <= peak < end + 1 + margin:
            return 1
    return 0


def autocorrelation_loop(x, max_lag: int) -> list[float]:
    """Biased sample autocorrelation, mean removed, lags 0..max_lag."""
    n = len(x)
    mean = sum(x) / n
    centred = [v - mean for v in x]
    denominator = sum(v * v for v in centred)
    return [sum(centred[t] * centred[t + k] for t in range(n - k)) / denominator for k in range(min(max_lag, n - 1) + 1)]


def centred_mean_loop(values, width: int) -> list[float]:
    """Mean of values[t - width // 2 : t - width // 2 + width], clipped to the series, for each t."""
    n = len(values)
    out = []
    for t in range(n):
        lo = max(0, t - width // 2)
        hi = min(n, t - width // 2 + width)
        part = [values[i] for i in range(lo, hi)]
        out.append(math.fsum(part) / len(part))
    return out


def znormalise_loop(window, std_floor: float) -> list[list[float]]:
    """``window[t][f]`` with each feature's mean removed and divided by max(its population std, std_floor)."""
    steps, features = len(window), len(window[0])
    out = [[0.0] * features for _ in range(steps)]
    for f in range(features):
        column = [float(window[t][f]) for t in range(steps)]
        mean = math.fsum(column) / steps
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in column) / steps)
        for t in range(steps):
            out[t][f] = (column[t] - mean) / max(std, std_floor)
    return out


def nearest_window_loop(series, query_starts, reference_starts, timesteps: int, std_floor: float,
                        exclusion: int | None = None, reference_series=None) -> list[float]:
    """For each query window of ``series``: min over the reference windows (of ``reference_series``, default the same
    series) of sqrt(sum of squared differences of the z-normalised windows / (T * F)); reference windows starting
    within ``exclusion`` of the query's start are skipped unless none would be left."""
    reference_series = series if reference_series is None else reference_series
    references = [(r, znormalise_loop(gather_windows(reference_series, [r], timesteps)[0], std_floor)) for r in reference_starts]
    out = []
    for q in query_starts:
        z = znormalise_loop(gather_windows(series, [q], timesteps)[0], std_floor)
        size = timesteps * len(z[0])
        kept = [w for r, w in references if exclusion is None or abs(q - r) >= exclusion] or [w for _, w in references]
        best = min(math.fsum((a - b) ** 2 for row_a, row_b in zip(z, w) for a, b in zip(row_a, row_b)) for w in kept)
        out.append(math.sqrt(best / size))
    return out


def autoencoder_forward(model, x):
    """The unoptimised path: each ``nn.LSTM`` module called on its whole input, z repeated T times.

    ``model`` is an `lstmae.backends.network.LSTMAutoencoder`; ``x`` is (B, T, F). This is the
    network as first written (Keras's RepeatVector literally), against which the
    fast recurrence is checked.
    """
    batch, timesteps, features = x.shape
    k = model.config.frame
    steps = x.reshape(batch, timesteps // k, k * features)  # k timesteps per LSTM step
    for layer in model.encoder.layers:
        steps, _ = layer(steps)  # (B, T/k, H_i)
    if model.config.architecture == "repeat":
        steps = steps[:, -1].unsqueeze(1).expand(-1, timesteps // k, -1)  # (B, T/k, L): RepeatVector
    for layer in model.decoder.layers:
        steps, _ = layer(steps)
    return model.output_layer(steps).reshape(batch, timesteps, features)  # (B, T, F)
