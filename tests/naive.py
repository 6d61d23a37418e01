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


def autoencoder_forward(model, x):
    """The unoptimised path: each ``nn.LSTM`` module called on its whole input, z repeated T times.

    ``model`` is an `lstmae.nn.LSTMAutoencoder`; ``x`` is (B, T, F). This is the
    network as first written (Keras's RepeatVector literally), against which the
    fast recurrence is checked.
    """
    steps = x
    for layer in model.encoder.layers:
        steps, _ = layer(steps)  # (B, T, H_i)
    if model.config.architecture == "repeat":
        steps = steps[:, -1].unsqueeze(1).expand(-1, x.shape[1], -1)  # (B, T, L): RepeatVector
    for layer in model.decoder.layers:
        steps, _ = layer(steps)
    return model.output_layer(steps)  # (B, T, F)
