"""Scoring a series as it arrives: `StreamScorer`, made by `LSTMAutoencoder.stream()`.

A stream gives every point the score `anomaly_score` gives it in the whole
series, as soon as that score can no longer change. It runs the batch
pipeline on the newest part only, through the same functions:

* the windows that a block of new points completes go through the network in
  one pass (`lstmae.scoring.inference.parts_pass`), which gives every score part
  that reads the network its values; a part that reads the input alone has
  windows of its own (``part.window_length(T)`` steps, on the same stride grid),
  which the block completes earlier (`lstmae.scoring.inference.input_pass`);
* their per-timestep values are summed per timestep and channel (the merge of
  `lstmae.scoring.inference.Merge`: the mean over the windows that cover a timestep);
* once no later window can cover a timestep, its merged values are final, and
  once the aggregation's stretch around a point is final, the point's score is
  `lstmae.scoring.state.ScoringState.scores_of` (each part's `ScorePart.values`, then
  `lstmae.scoring.combination.Combination`) of a segment of merged values that holds that stretch.

Window placement (``score_stride`` s, window length T): windows start at
0, s, 2s, ... as in batch scoring; a window runs when its last point arrives.
Batch scoring also adds a last window at n - T when n - T is not a multiple of s
(and at n - L for the nearest-window part); `StreamScorer.flush` adds the same, so with any stride the flushed
stream equals batch scoring of the whole series (to float rounding: chunks of
other sizes). For that, a point's merged value waits for the point T later when
s > 1 (only then is it certain that the end window will not cover it); with
s = 1 the end window is a regular one and T - 1 later suffices.

Delay (`StreamScorer.delay`): a point's score is final ``delay`` points after it
arrived: T - 1 (s = 1) or T (s > 1), plus T - T // 2 - 1 for
``aggregation="window"`` (the right half of the centred mean), T - 1 for ``aggregation="peak"``
(the windows after the point that contain it).

Shapes: F = features, C = merged channels (each score part's, in the parts' order:
`ScorePart.channels`), T = timesteps.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError, safe_open

from lstmae.backends.network import LSTMAutoencoder as Network
from lstmae.data.cleaning import interpolate_column, warn_filled
from lstmae.data.windows import window_starts
from lstmae.errors import DataError, FeatureMismatchError, ModelFileError, ParameterError
from lstmae.params import check_integer
from lstmae.persistence.model_file import METADATA_KEY, write_document
from lstmae.scoring import inference
from lstmae.scoring.intervals import interval_table
from lstmae.scoring.state import ScoringSettings, ScoringState

#: Format of a saved stream state (`StreamScorer.save_state`).
STATE_FORMAT = "lstmae.stream"
STATE_VERSION = 3  # 2: per-channel window counts, the nearest-window grid's own next window; 3: score parts by name

_NO_TIMES, _DATETIME, _NUMBER = "none", "datetime", "number"
_COLUMNS = pd.Index(["score", "anomaly"])


def aggregation_margins(aggregation: str, timesteps: int) -> tuple[int, int]:
    """(points before, points after) a point that its aggregated score reads (`lstmae.scoring.aggregation.centred_mean`).

    "window": the centred mean reads ``[t - T // 2, t - T // 2 + T)``; "peak": the maximum of the centred
    means whose stretches contain t (`lstmae.scoring.aggregation.containing_max`), so every point of those
    stretches, ``[t - T + 1, t + T - 1]``; "timestep": the point only.
    """
    if aggregation == "window":
        half = timesteps // 2
        return half, timesteps - half - 1
    if aggregation == "peak":
        return timesteps - 1, timesteps - 1
    return 0, 0


class StreamScorer:
    """Scores of a series fed point by point or in blocks; see the module docstring for what is exact.

    Make one with `LSTMAutoencoder.stream`, which passes its network, scoring state and settings
    (``model.scoring_state_``, the scoring parameters in force), its feature count and names.
    ``min_gap`` defaults to the window length. Attributes:

    delay : int
        Points between a point's arrival and its final score (a gap being
        interpolated adds the points until the gap's next value arrives).
    threshold : float
        The model's ``threshold_``; a final point is anomalous when its score is above it.
    closed_intervals : DataFrame
        The intervals that the last `update` / `flush` closed (columns of `LSTMAutoencoder.detect`);
        an interval closes once ``min_gap`` normal points followed its last anomalous one.
    """

    def __init__(
        self, network: Network, state: ScoringState, settings: ScoringSettings, *, n_features: int,
        feature_names: list[str] | None = None, min_gap: int | None = None, missing: str = "interpolate",
    ) -> None:
        if missing not in ("interpolate", "error"):
            raise ParameterError(f"missing must be 'interpolate' or 'error' for a stream, got {missing!r}.")
        self.network = network
        self.scoring = state
        self.settings = settings
        self.parts = self.scoring.parts_for(self.settings)  # each prepares its reference once, not per update
        self.missing = missing
        self.min_gap = check_integer("min_gap", settings.timesteps if min_gap is None else min_gap, 1)
        self.feature_names = None if feature_names is None else list(feature_names)
        self.threshold = float(self.scoring.threshold)
        T, s = self.settings.timesteps, self.settings.score_stride
        self.timesteps, self.stride, self.n_features = T, s, int(n_features)
        self.merge_delay = T - 1 if s == 1 else T
        self.margins = aggregation_margins(self.settings.aggregation, T)
        self.delay = self.merge_delay + self.margins[1]
        self.layout = [(part.name, part.channels(self.n_features)) for part in self.parts]  # what a pass merges per timestep
        self.channels = sum(width for _, width in self.layout)
        self._reset()

    # ------------------------------------------------------------ state
    def _reset(self) -> None:
        F, C = self.n_features, self.channels
        self.rows = 0  # rows received (held ones included)
        self.n = 0  # points released into the pipeline: positions 0 .. n-1
        self.next_starts = {name: 0 for name, _, _, _ in self.grids}  # each grid's next window to run
        self.tail = np.zeros((0, F), dtype=np.float32)  # the last <= T scaled points
        self.acc_from = 0  # first position whose merged value is not final
        self.sums = np.zeros((0, C))  # (n - acc_from, C) partial sums of the windows run so far
        self.counts = np.zeros((0, C), dtype=np.int64)  # (n - acc_from, C) windows summed, per channel
        self.merged_from = 0  # first position kept in `merged`
        self.merged = np.zeros((0, C))  # final merged values of positions merged_from .. acc_from-1
        self.scored = 0  # positions with a final score: 0 .. scored-1
        self.times = np.zeros(0)  # timestamps of positions scored .. n-1 (not used without times)
        self.held = np.zeros((0, F))  # raw rows waiting for a gap's next value
        self.held_times = np.zeros(0)
        self.last_valid = np.full(F, np.nan)  # the last released row (raw, gaps filled) ...
        self.last_x = np.zeros(0)  # ... and its time (row number without times); empty before the first
        self.time_kind: str | None = None  # set by the first update
        self.tz: str | None = None
        self.time_unit = "ns"
        self.last_time: float | None = None
        self.open_start = -1  # the open interval: first position, last anomalous position
        self.open_end = -1
        self.open_scores = np.zeros(0)  # scores and per-feature scores since open_start
        self.open_per = np.zeros((0, F))
        self.open_times = np.zeros(0)
        self.flushed = False
        self._closed: list[pd.DataFrame] = []  # the intervals the last call closed
        self._end_cache: tuple[int, list[tuple[int, tuple[np.ndarray, np.ndarray]]]] | None = None

    # ------------------------------------------------------------ input
    def update(self, values: Any, timestamps: Any = None) -> pd.DataFrame:
        """Add one point or a block of points; return the points whose score became final.

        Parameters
        ----------
        values : a number, array-like of shape (F,) for one point, (k,) (one feature) or (k, F)
            for k points, a pandas Series (one feature) or DataFrame (k rows, the model's columns)
        timestamps : array-like of k timestamps (datetimes or numbers), optional
            Strictly increasing across the whole stream; default: the index of a
            Series/DataFrame when it is not a plain range. Either every update
            has timestamps or none has.

        Returns
        -------
        DataFrame with columns ``score`` (float64) and ``anomaly`` (1 when score > threshold, else 0),
        indexed by the points' timestamps ("time") or positions in the stream ("position").
        Intervals closed by these points are in ``closed_intervals``.
        """
        if self.flushed:
            raise DataError("this stream was flushed (its series ended); start a new one with model.stream().")
        block, times = self._block(values, timestamps)
        self.rows += len(block)
        self.held = np.concatenate([self.held, block])
        self.held_times = np.concatenate([self.held_times, times])
        released, released_times = self._release(final=False)
        return self._advance(released, released_times, end=False)

    def flush(self) -> pd.DataFrame:
        """End the series: the scores of every point not final yet (as `update` returns them).

        Adds batch scoring's last window (at n - T) when the stride grid missed
        it and fills a gap at the end with the last known value. The stream
        takes no more points afterwards.
        """
        if self.flushed:
            return self._frame(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0))
        released, released_times = self._release(final=True)
        if 0 < self.n + len(released) < self.timesteps:
            raise DataError(
                f"the stream ended after {self.n + len(released)} points, fewer than the model's "
                f"timesteps={self.timesteps}; a score needs at least one full window."
            )
        result = self._advance(released, released_times, end=True)
        self.flushed = True
        return result

    def provisional(self) -> pd.Series:
        """PROVISIONAL scores of the points not final yet: what `flush` would give them if the series ended now.

        For alerting before the delay has passed; the final score of a point can
        differ (later windows and the rest of its centred mean are still to come).
        The newest point is scored once the stream holds one full window.
        Returns a Series named "provisional_score", indexed like `update`'s result.
        """
        if self.n < self.timesteps or self.flushed:
            return pd.Series(np.zeros(0), index=self._index(np.zeros(0, dtype=np.int64), np.zeros(0)), name="provisional_score")
        sums, counts = self.sums.copy(), self.counts.copy()
        self._add_end(sums, counts)
        merged = np.concatenate([self.merged, sums / counts])
        scores, _ = self._scores(merged, self.merged_from, self.scored, self.n, self.n)
        positions = np.arange(self.scored, self.n)
        return pd.Series(scores, index=self._index(positions, self.times), name="provisional_score")

    # ------------------------------------------------------------ checks
    def _block(self, values: Any, timestamps: Any) -> tuple[np.ndarray, np.ndarray]:
        """(rows (k, F) float64, timestamps (k,) float64 in the stream's time unit) of one update, checked."""
        F = self.n_features
        index = None
        if isinstance(values, pd.DataFrame):
            columns = [str(c) for c in values.columns]
            if self.feature_names is not None and columns != self.feature_names:
                raise FeatureMismatchError(
                    f"the block has columns {columns} but the model was fitted on {self.feature_names}; "
                    "pass the same columns, in the same order."
                )
            index, raw = values.index, values.to_numpy()
        elif isinstance(values, pd.Series):
            if F != 1:
                raise FeatureMismatchError(
                    f"a Series is a block of one feature, but the model has {F} features; "
                    "pass a one-row DataFrame or an array of shape (F,) for one point."
                )
            index, raw = values.index, values.to_numpy()[:, None]
        else:
            raw = np.asarray(values)
            if raw.ndim == 0 or (raw.ndim == 1 and F > 1):
                raw = raw.reshape(1, -1)
            elif raw.ndim == 1:
                raw = raw[:, None]
            if raw.ndim != 2:
                raise DataError(
                    f"a stream takes one point (F,) or a block (k, F) of one long series; got shape {raw.shape}. "
                    "Panels of separate sequences (3-D) are scored in batch with model.anomaly_score(X)."
                )
        if raw.shape[1] != F:
            raise FeatureMismatchError(
                f"the block has {raw.shape[1]} feature(s) per point but the model was fitted on {F}; "
                f"pass points of {F} value(s)."
            )
        block = self._numbers(raw)
        if timestamps is None and index is not None and not isinstance(index, pd.RangeIndex):
            timestamps = index
        return block, self._times(timestamps, len(block))

    def _numbers(self, raw: np.ndarray) -> np.ndarray:
        """The block as float64 (k, F); a DataError names the first row that is not a finite number or NaN."""
        out = None
        if raw.dtype.kind in "fiub":  # the usual case, vectorised; the loop below finds what is wrong
            out = raw.astype(np.float64)
        if out is not None and not np.isinf(out).any() and (self.missing != "error" or not np.isnan(out).any()):
            return out
        out = np.empty(raw.shape, dtype=np.float64)
        for (i, j), value in np.ndenumerate(raw.astype(object)):
            try:
                number = float(np.nan if value is None else value)
            except (TypeError, ValueError):
                number = None
            if number is None or isinstance(value, (bytes, complex, np.complexfloating)):
                raise DataError(
                    f"row {self.rows + i + 1} of the stream (row {i + 1} of this block) has a non-numeric value "
                    f"{value!r} in {self._column(j)}; pass numbers only (NaN for a missing value)."
                )
            if np.isinf(number):
                raise DataError(
                    f"row {self.rows + i + 1} of the stream has an infinite value ({number}) in {self._column(j)}; "
                    "values must be finite: send NaN for an unknown value (it is interpolated)."
                )
            if np.isnan(number) and self.missing == "error":
                raise DataError(
                    f"row {self.rows + i + 1} of the stream has a missing value in {self._column(j)} and "
                    "missing='error'; send a value, or make the stream with missing='interpolate'."
                )
            out[i, j] = number
        return out

    def _column(self, j: int) -> str:
        return f"column {self.feature_names[j]!r}" if self.feature_names is not None else f"feature {j}"

    def _times(self, timestamps: Any, k: int) -> np.ndarray:
        """Timestamps (int64 ns since the epoch for datetimes, float64 numbers), strictly increasing after the last one."""
        kind, tz, numbers, unit = _NO_TIMES, None, np.zeros(k), "ns"
        if timestamps is not None:
            index = timestamps if isinstance(timestamps, pd.Index) else pd.Index(np.atleast_1d(np.asarray(timestamps)))
            if len(index) != k:
                raise DataError(f"{len(index)} timestamp(s) for {k} point(s); pass one timestamp per point.")
            if pd.api.types.is_numeric_dtype(index.dtype) and not pd.api.types.is_bool_dtype(index.dtype):
                kind, numbers = _NUMBER, index.to_numpy(dtype=np.float64)
                if np.isnan(numbers).any():
                    raise DataError(f"row {self.rows + int(np.flatnonzero(np.isnan(numbers))[0]) + 1} of the stream has no timestamp.")
            else:
                try:
                    stamps = pd.DatetimeIndex(pd.to_datetime(index))
                except (TypeError, ValueError, OverflowError) as exc:
                    raise DataError(f"timestamps must be datetimes or numbers; could not read {list(index[:3])!r} ({exc}).") from None
                if stamps.hasnans:
                    raise DataError(f"row {self.rows + int(np.flatnonzero(stamps.isna())[0]) + 1} of the stream has no timestamp.")
                kind, tz, numbers = _DATETIME, None if stamps.tz is None else str(stamps.tz), stamps.as_unit("ns").asi8
                unit = stamps.unit
        if self.time_kind is not None and (kind, tz) != (self.time_kind, self.tz):
            said = lambda kind, tz: "no timestamps" if kind == _NO_TIMES else f"{kind} timestamps" + (f" in {tz}" if tz else "")  # noqa: E731
            raise DataError(
                f"this update has {said(kind, tz)} but the stream started with {said(self.time_kind, self.tz)}; "
                "keep one kind of timestamp for the whole stream."
            )
        if kind != _NO_TIMES:
            previous = np.concatenate([[self.last_time] if self.last_time is not None else [], numbers]).astype(numbers.dtype)
            steps = np.flatnonzero(np.diff(previous) <= 0)
            if len(steps):
                i = int(steps[0]) + (0 if self.last_time is not None else 1)
                raise DataError(
                    f"row {self.rows + i + 1} of the stream has timestamp {self._show_time(numbers[i], kind, tz)}, not after "
                    f"the previous one ({self._show_time(previous[steps[0]], kind, tz)}); a stream cannot re-sort or merge "
                    "rows: send the rows in time order, one per timestamp."
                )
            self.last_time = numbers[-1].item()
        if self.time_kind is None:  # the first update fixes the kind, and the dtype of the time arrays
            self.time_kind, self.tz, self.time_unit = kind, tz, unit
            for name in ("times", "held_times", "open_times", "last_x"):
                setattr(self, name, getattr(self, name).astype(numbers.dtype))
        return numbers

    @staticmethod
    def _show_time(value: Any, kind: str, tz: str | None) -> str:
        if kind == _DATETIME:
            return str(pd.Timestamp(int(value), tz="UTC").tz_convert(tz) if tz else pd.Timestamp(int(value)))
        return repr(float(value))

    # ------------------------------------------------------------ gaps
    def _release(self, final: bool) -> tuple[np.ndarray, np.ndarray]:
        """The held rows that can be filled now, and their timestamps.

        A missing value is filled linearly between its feature's last known value
        and the next one (in time with timestamps, else by row), so its row waits
        until that next value arrives; a gap at the start takes the first value,
        and at the end of the stream (``final``) the last one, as batch filling does.
        """
        held, F = self.held, self.n_features
        missing = np.isnan(held)
        count = len(held)
        if not final and len(held) and missing[-1].any():  # each feature's trailing gap waits
            trailing = len(held) - np.argmax(~missing[::-1], axis=0)  # (F,) first row of the trailing gap
            trailing[missing.all(axis=0)] = 0
            count = int(trailing[missing[-1]].min())
        if final and len(held):
            never = np.flatnonzero(np.isnan(self.last_valid) & missing.all(axis=0))
            if len(never):
                raise DataError(f"{self._column(int(never[0]))} has no value in the whole stream; a score needs values.")
        rows, times = held[:count].copy(), self.held_times[:count]
        if missing[:count].any():
            x = self.held_times if self.time_kind != _NO_TIMES else np.arange(self.rows - len(held), self.rows)
            known = len(self.last_x) > 0
            x = np.concatenate([self.last_x, x]) if known else x
            x = (x - x[0]).astype(np.float64)  # exact differences first: ns since the epoch exceed float64's integers
            for c in np.flatnonzero(missing[:count].any(axis=0)):
                ys = np.concatenate([self.last_valid[c : c + 1] if known else [], held[:, c]])
                rows[:, c] = interpolate_column(x, ys)[int(known) : int(known) + count]
            how = "in time" if self.time_kind == _DATETIME else "between neighbouring rows"
            warn_filled(missing[:count], self.feature_names or [str(j) for j in range(F)], "the stream", how)
        if count:
            self.last_valid = rows[-1].copy()
            self.last_x = times[-1:].copy() if self.time_kind != _NO_TIMES else np.array([self.rows - len(held) + count - 1])
        self.held, self.held_times = held[count:], self.held_times[count:]
        return rows, times

    # ------------------------------------------------------------ the pipeline
    def _advance(self, block: np.ndarray, times: np.ndarray, end: bool) -> pd.DataFrame:
        """Run the windows ``block`` completes, finalise what can no longer change, score it."""
        T = self.timesteps
        if len(block):
            self.tail = np.concatenate([self.tail, self.scoring.scale(block).numpy()])  # (<= T + k, F)
            self.n += len(block)
            self.times = np.concatenate([self.times, times])
            self.sums = np.concatenate([self.sums, np.zeros((len(block), self.channels))])
            self.counts = np.concatenate([self.counts, np.zeros((len(block), self.channels), dtype=np.int64)])
            for grid in self.grids:
                name, width, step, _ = grid
                starts = np.arange(self.next_starts[name], self.n - width + 1, step, dtype=np.int64)
                if len(starts):  # the windows this block completed, in one pass: positions starts[0] .. starts[-1] + width - 1
                    span = self.tail[len(self.tail) - (self.n - starts[0]) : len(self.tail) - (self.n - starts[-1] - width)]
                    self._add(self.sums, self.counts, int(starts[0]) - self.acc_from, *self._pass(span, grid))
                    self.next_starts[name] = int(starts[-1]) + step
            self.tail = self.tail[-T:]
        final_to = self.n
        if end and self.n:
            self._add_end(self.sums, self.counts)
        elif not end:
            final_to = max(self.acc_from, self.n - self.merge_delay)
        done = final_to - self.acc_from
        if done:
            self.merged = np.concatenate([self.merged, self.sums[:done] / self.counts[:done]])
            self.sums, self.counts, self.acc_from = self.sums[done:], self.counts[done:], final_to
        score_to = self.n if end else max(self.scored, self.acc_from - self.margins[1])
        if score_to == self.scored:
            self._closed = []
            return self._frame(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0))
        scores, per = self._scores(self.merged, self.merged_from, self.scored, score_to, self.n if end else None)
        positions = np.arange(self.scored, score_to)
        point_times = self.times[: len(positions)]
        self.times = self.times[len(positions) :]
        self.scored = score_to
        keep = max(0, score_to - self.margins[0]) - self.merged_from  # the left half of the next centred means
        self.merged, self.merged_from = self.merged[keep:], self.merged_from + keep
        self._intervals(scores, per, positions, point_times, end)
        return self._frame(scores, positions, point_times)

    @functools.cached_property
    def grids(self) -> list[tuple[str, int, int, list]]:
        """(name, window length, stride, parts) of each grid of windows the stream runs: the network's windows
        of T steps at the score stride for the parts that read the network, and each input part's own."""
        T, s = self.timesteps, self.stride
        grids = [("network", T, s, [part for part in self.parts if part.from_network])]
        for part in self.parts:
            if not part.from_network:
                length = part.window_length(T)  # at most T: the stream keeps the last T points
                grids.append((part.name, length, inference.input_stride(s, length), [part]))
        return grids

    def _pass(self, span: np.ndarray, grid: tuple[str, int, int, list]) -> tuple[np.ndarray, np.ndarray]:
        """(per-timestep sums (S, C), window counts (S, C)) of one grid's windows (`grids`) at 0, step, ..., S - width
        of ``span`` (S, F), scaled: the channels of that grid's parts, zero elsewhere.

        The batch pass itself (`lstmae.scoring.inference.parts_pass`); its means times the number of
        windows covering each timestep are the sums to carry on.
        """
        _, width, step, parts = grid
        scaled = torch.from_numpy(span)
        passed = inference.parts_pass(self.network, scaled, False, self.stride, parts, self.scoring.locate(scaled))
        starts = window_starts(len(span), width, step)
        edges = np.zeros(len(span) + 1, dtype=np.int64)
        np.add.at(edges, starts, 1)
        np.add.at(edges, starts + width, -1)
        covering = np.cumsum(edges[:-1])  # (S,) windows covering each timestep
        sums = np.zeros((len(span), self.channels))
        counts = np.zeros((len(span), self.channels), dtype=np.int64)
        at = 0
        for name, channels in self.layout:
            if name in passed:
                sums[:, at : at + channels] = passed[name] * covering[:, None]
                counts[:, at : at + channels] = covering[:, None]
            at += channels
        return sums, counts

    @staticmethod
    def _add(sums: np.ndarray, counts: np.ndarray, at: int, more_sums: np.ndarray, more_counts: np.ndarray) -> None:
        sums[at : at + len(more_sums)] += more_sums
        counts[at : at + len(more_counts)] += more_counts

    def _add_end(self, sums: np.ndarray, counts: np.ndarray) -> None:
        """Add batch scoring's last window of each grid (at n - width) when the grid has not run it; cached per length."""
        if self._end_cache is None or self._end_cache[0] != self.n:
            ends = []
            for grid in self.grids:
                _, width, step, _ = grid
                last = self.n - width
                if last >= 0 and last % step:
                    ends.append((last, self._pass(self.tail[-width:], grid)))
            self._end_cache = (self.n, ends)
        for last, (more_sums, more_counts) in self._end_cache[1]:
            self._add(sums, counts, last - self.acc_from, more_sums, more_counts)

    def _scores(self, merged: np.ndarray, merged_from: int, first: int, stop: int, series_end: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and per-feature scores of positions first .. stop-1 from final merged values (from ``merged_from``).

        The segment given to `ScoringState.scores_of` holds each point's whole
        aggregation stretch, so its clipped ends are the series' ends only.
        """
        before, after = self.margins
        left = max(0, first - before)
        right = stop + after if series_end is None else series_end
        segment = merged[left - merged_from : right - merged_from]  # (m, C)
        parts, at = {}, 0
        for name, width in self.layout:
            parts[name], at = segment[:, at : at + width], at + width
        scores, per = self.scoring.scores_of(parts, False, self.settings)
        return scores[first - left : stop - left], per[first - left : stop - left]

    # ------------------------------------------------------------ intervals
    def _intervals(self, scores: np.ndarray, per: np.ndarray, positions: np.ndarray, times: np.ndarray, end: bool) -> None:
        """Track runs above the threshold as `detect` does (runs closer than min_gap merge); close them."""
        closed = []
        above = scores > self.threshold
        begin = 0 if self.open_start >= 0 else None  # first point of this call that the open interval holds
        if begin is not None or above.any():
            for j in range(len(scores)):
                if above[j]:
                    if begin is None:
                        begin, self.open_start = j, int(positions[j])
                    self.open_end = int(positions[j])
                elif begin is not None and positions[j] - self.open_end >= self.min_gap:
                    self._hold(scores, per, times, begin, j)
                    closed.append(self._close())
                    begin = None
            if begin is not None:
                self._hold(scores, per, times, begin, len(scores))
        if end and self.open_start >= 0:
            closed.append(self._close())
        self._closed = closed

    def _hold(self, scores: np.ndarray, per: np.ndarray, times: np.ndarray, begin: int, stop: int) -> None:
        self.open_scores = np.concatenate([self.open_scores, scores[begin:stop]])
        self.open_per = np.concatenate([self.open_per, per[begin:stop]])
        self.open_times = np.concatenate([self.open_times, times[begin:stop]])

    def _close(self) -> pd.DataFrame:
        length = self.open_end - self.open_start + 1
        table = self._table(self.open_scores[:length], self.open_per[:length], self.open_times[:length])
        table[["start", "end"]] += self.open_start
        self.open_start = self.open_end = -1
        self.open_scores, self.open_per, self.open_times = np.zeros(0), np.zeros((0, self.n_features)), self.open_times[:0]
        return table

    def _table(self, scores: np.ndarray, per: np.ndarray, times: np.ndarray) -> pd.DataFrame:
        """`lstmae.scoring.intervals.interval_table` of these points, as `detect` gives it (times when the stream has them)."""
        index = None if self.time_kind in (None, _NO_TIMES) else self._labels(times)
        return interval_table(scores, self.threshold, self.min_gap, index=index, feature_scores=per, feature_names=self.feature_names)

    @property
    def closed_intervals(self) -> pd.DataFrame:
        """The intervals the last `update` / `flush` closed: the columns of `LSTMAutoencoder.detect`, positions in the stream."""
        if self._closed:
            return pd.concat(self._closed, ignore_index=True)
        return self._table(np.zeros(0), np.zeros((0, self.n_features)), self.times[:0])

    # ------------------------------------------------------------ output
    def _labels(self, times: np.ndarray) -> pd.Index:
        if self.time_kind != _DATETIME:
            return pd.Index(times)
        stamps = pd.DatetimeIndex(np.asarray(times, dtype=np.int64).view("datetime64[ns]"))
        stamps = stamps.as_unit(self.time_unit)  # the resolution the timestamps came in
        return stamps.tz_localize("UTC").tz_convert(self.tz) if self.tz else stamps

    def _index(self, positions: np.ndarray, times: np.ndarray) -> pd.Index:
        if self.time_kind in (None, _NO_TIMES):  # positions are always consecutive
            first = int(positions[0]) if len(positions) else self.scored
            return pd.RangeIndex(first, first + len(positions), name="position")
        return self._labels(times[: len(positions)]).rename("time")

    def _frame(self, scores: np.ndarray, positions: np.ndarray, times: np.ndarray) -> pd.DataFrame:
        index = self._index(positions, times)
        flags = (scores > self.threshold).astype(np.int8)
        try:  # pandas' own constructor without the dict checks: a point-by-point stream pays this every update
            return pd.DataFrame._from_arrays([scores, flags], columns=_COLUMNS, index=index, verify_integrity=False)
        except AttributeError:  # a pandas without it (measured 0.19 against 0.8 ms per update, pandas 3.0)
            return pd.DataFrame({"score": scores, "anomaly": flags}, index=index)

    # ------------------------------------------------------------ saving
    _ARRAYS = ("tail", "sums", "counts", "merged", "times", "held", "held_times", "last_valid", "last_x",
               "open_scores", "open_per", "open_times")
    _FIELDS = ("rows", "n", "next_starts", "acc_from", "merged_from", "scored", "time_kind", "tz", "time_unit", "last_time",
               "open_start", "open_end", "flushed")

    def _identity(self) -> dict[str, Any]:
        """What a saved state must match: the model's window plan, scoring settings and threshold."""
        return {
            "timesteps": self.timesteps, "stride": self.stride, "n_features": self.n_features,
            "scorer": self.settings.scorer, "aggregation": self.settings.aggregation,
            "threshold": self.threshold, "min_gap": self.min_gap, "missing": self.missing,
            "layout": [list(part) for part in self.layout],
        }

    def state_dict(self) -> dict[str, Any]:
        """The stream's state: ``{"tensors": {name: Tensor}, "fields": JSON-able dict}``; no objects, no pickle.

        `load_state_dict` on a stream of the same model continues exactly where this one stopped.
        """
        tensors = {name: torch.from_numpy(np.ascontiguousarray(getattr(self, name))) for name in self._ARRAYS}
        fields = {name: _copied(getattr(self, name)) for name in self._FIELDS}  # no dict shared with the stream
        return {"tensors": tensors, "fields": {**fields, "model": self._identity(), "format": STATE_FORMAT, "format_version": STATE_VERSION}}

    def load_state_dict(self, state: dict[str, Any]) -> "StreamScorer":
        """Continue from a `state_dict` (of a stream of the same model, settings and threshold). Returns self."""
        fields = state["fields"]
        if fields.get("format") != STATE_FORMAT or not isinstance(fields.get("format_version"), int) or fields["format_version"] > STATE_VERSION:
            raise ModelFileError(f"not a stream state this lstmae reads (format {fields.get('format')!r}, version {fields.get('format_version')!r}).")
        if fields["format_version"] < STATE_VERSION:
            raise ModelFileError(
                f"the stream state was saved by an earlier lstmae (state version {fields['format_version']}, this one "
                f"reads {STATE_VERSION}); start a new stream with model.stream() and feed it the series again."
            )
        if fields.get("model") != self._identity():
            raise ParameterError(
                f"the saved stream state is for a model or stream with {fields.get('model')}, but this stream has "
                f"{self._identity()}; restore it into model.stream() of the model (and options) that saved it."
            )
        self._reset()
        for name in self._ARRAYS:
            setattr(self, name, state["tensors"][name].numpy().copy())
        for name in self._FIELDS:
            setattr(self, name, _copied(fields[name]))
        return self

    def save_state(self, path: str | Path) -> Path:
        """Write `state_dict` to one safetensors file (fields as JSON in its header), atomically."""
        state = self.state_dict()
        write_document(Path(path), state["tensors"], state["fields"], "the stream state")
        return Path(path)

    def load_state(self, path: str | Path) -> "StreamScorer":
        """Continue from a file written by `save_state`. Returns self."""
        try:
            with safe_open(Path(path), framework="pt", device="cpu") as stored:
                fields = json.loads((stored.metadata() or {}).get(METADATA_KEY, "null"))
                tensors = {key: stored.get_tensor(key) for key in stored.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{str(path)!r} is not a readable stream state ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}).") from None
        if not isinstance(fields, dict) or set(self._ARRAYS) - set(tensors):
            raise ModelFileError(f"{str(path)!r} is not a stream state written by StreamScorer.save_state.")
        return self.load_state_dict({"tensors": tensors, "fields": fields})


def _copied(value: Any) -> Any:
    """A field's value that the stream may change without changing the saved state (a dict is copied)."""
    return dict(value) if isinstance(value, dict) else value


__all__ = ["StreamScorer", "aggregation_margins"]
