"""Detection plots: series vs reconstruction, anomaly score, detected intervals.

`plot_detection` draws one figure and writes it to a file. It never touches
``matplotlib.pyplot`` or the global backend: the figure is a plain
`matplotlib.figure.Figure` attached to an Agg canvas, so it works headless, in
threads and in notebooks that use another backend.

Long series are decimated for drawing only (see `minmax_decimate_indices`):
above ``DECIMATE_ABOVE`` points each line keeps the minimum and maximum of each
of ``DECIMATE_BUCKETS`` contiguous buckets, so isolated spikes stay visible while
a million-point series plots in a few seconds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from lstmae.errors import DataError, ParameterError, describe
from lstmae.evaluation.metrics import label_ranges
from lstmae.persistence.atomic import atomic_target
from lstmae.reports.decimate import DECIMATE_ABOVE, DECIMATE_BUCKETS, minmax_decimate_indices

__all__ = ["plot_detection", "minmax_decimate_indices", "DECIMATE_ABOVE", "DECIMATE_BUCKETS"]

_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
_INTERVAL_COLOR = "tab:red"
_EVENT_COLOR = "tab:green"
_TRAINED_COLOR = "tab:gray"
_SHADE_ALPHA = 0.2


def _as_matrix(data: Any, name: str) -> tuple[np.ndarray, pd.Index | None, list[str] | None]:
    """``data`` -> float array ``(n, d)``, its index and column names (DataFrame input)."""
    index: pd.Index | None = None
    columns: list[str] | None = None
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        index = data.index
        columns = [str(c) for c in data.columns]
    try:
        array = np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        raise DataError(
            f"{name} must be numeric, got {describe(data)}; pass an array or numeric DataFrame"
        ) from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(
            f"{name} must have shape (n_timesteps, n_features) with n >= 1, got {array.shape}; "
            "pass one long series (reshape panels to 2-D first)"
        )
    return array, index, columns


def _x_coordinates(index: pd.Index | None, n: int) -> tuple[np.ndarray, bool, Any]:
    """Numeric x for each row, whether it is a date axis, and the index time zone.

    Dates become matplotlib date numbers (days) so spans, text and lines all use
    one float axis; tz-aware indexes are drawn in their local wall time.
    """
    if isinstance(index, pd.PeriodIndex):
        index = index.to_timestamp()
    if isinstance(index, pd.DatetimeIndex):
        tz = index.tz
        naive = index.tz_localize(None) if tz is not None else index
        return np.asarray(mdates.date2num(naive.to_numpy())), True, tz
    if (
        index is not None
        and pd.api.types.is_numeric_dtype(index.dtype)
        and not pd.api.types.is_bool_dtype(index.dtype)
    ):
        return index.to_numpy(dtype=float), False, None
    # Labels that are neither times nor numbers (strings, ...) would become a
    # categorical axis; row positions are the meaningful fallback.
    return np.arange(n, dtype=float), False, None


def _interval_edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left/right edge of each row's cell: half-way to its neighbours.

    A one-row interval then gets a visible width instead of a zero-width span.
    """
    mid = (x[:-1] + x[1:]) / 2.0
    left = np.concatenate([[x[0]], mid])
    right = np.concatenate([mid, [x[-1]]])
    return left, right


def _check_intervals(intervals: pd.DataFrame | None, n: int) -> np.ndarray:
    """``intervals`` -> int array ``(k, 2)`` of inclusive ``[start, end]`` row positions."""
    if intervals is None:
        return np.empty((0, 2), dtype=np.int64)
    if not isinstance(intervals, pd.DataFrame):
        raise DataError(
            f"intervals must be a pandas DataFrame, got {type(intervals).__name__}; "
            "pass a table with integer columns 'start' and 'end'"
        )
    missing = [c for c in ("start", "end") if c not in intervals.columns]
    if missing:
        raise DataError(
            f"intervals lacks column(s) {missing}, has {list(intervals.columns)}; "
            "give integer row positions in columns 'start' and 'end' (inclusive)"
        )
    if len(intervals) == 0:
        return np.empty((0, 2), dtype=np.int64)
    try:
        bounds = intervals[["start", "end"]].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise DataError(
            f"intervals 'start'/'end' must be integers, got dtypes "
            f"{list(intervals[['start', 'end']].dtypes)}; "
            "give row positions, not timestamps"
        ) from None
    if not np.all(np.isfinite(bounds)) or np.any(bounds != np.round(bounds)):
        raise DataError(
            "intervals 'start'/'end' must be whole numbers, got non-integer or missing values; "
            "give row positions"
        )
    bounds = bounds.astype(np.int64)
    bad = (bounds[:, 0] < 0) | (bounds[:, 1] >= n) | (bounds[:, 0] > bounds[:, 1])
    if bad.any():
        start, end = bounds[bad][0]
        raise DataError(
            f"interval [start={start}, end={end}] is outside 0 <= start <= end < {n}; "
            "give inclusive row positions into values"
        )
    return bounds


def _event_spans(
    events: Sequence[Any] | None, is_date: bool, tz: Any, x_lo: float, x_hi: float
) -> list[tuple[str, float, float]]:
    """Events -> ``(name, left, right)`` on the numeric x axis, clipped to the data.

    Events outside the plotted range are dropped, so the full NYC event list can be
    passed when plotting a slice of the series.
    """
    if events is None:
        return []
    if isinstance(events, (str, bytes)) or not isinstance(events, Sequence):
        raise ParameterError(
            f"events must be a sequence of objects with .name/.start/.end, got {describe(events)}; "
            "pass e.g. lstmae.datasets.NYC_TAXI_EVENTS"
        )
    spans = []
    for event in events:
        if not all(hasattr(event, a) for a in ("name", "start", "end")):
            raise ParameterError(
                f"each event needs .name, .start and .end, got {describe(event)}; "
                "use lstmae.datasets.KnownEvent"
            )
        bounds = []
        for value in (event.start, event.end):
            if is_date:
                stamp = None
                # pd.Timestamp(50) would silently mean 50 ns after 1970; refuse numbers.
                if not isinstance(value, (int, float, np.number)):
                    try:
                        stamp = pd.Timestamp(value)
                    except (TypeError, ValueError):
                        stamp = None
                if stamp is None or pd.isna(stamp):
                    raise ParameterError(
                        f"event {event.name!r} bound {value!r} is not a timestamp; "
                        "the x axis is dates, so give event times as timestamps"
                    )
                # Compare in the index's wall time, which is what the axis shows.
                if stamp.tz is not None:
                    stamp = (stamp.tz_convert(tz) if tz is not None else stamp).tz_localize(None)
                bounds.append(float(mdates.date2num(stamp.to_pydatetime())))
            else:
                if isinstance(value, (bool, np.bool_)) or not isinstance(
                    value, (int, float, np.number)
                ):
                    raise ParameterError(
                        f"event {event.name!r} bound {value!r} is not a number; the x axis is "
                        "row positions, so pass values/reconstruction as DataFrames with a "
                        "DatetimeIndex to place timestamped events"
                    )
                bounds.append(float(value))
        left, right = bounds
        if right < x_lo or left > x_hi:
            continue
        spans.append((str(event.name), max(left, x_lo), min(right, x_hi)))
    return spans


def _shade(ax: Any, spans: Sequence[tuple[float, float]], color: str) -> None:
    """Shade vertical bands ``[left, right]`` over the full height of ``ax``.

    One PolyCollection instead of one ``axvspan`` per band: thousands of
    intervals stay cheap to draw. The bands get an outline in the same colour so
    that intervals narrower than a pixel (a few rows of a long series) still show.
    """
    if not spans:
        return
    verts = [[(a, 0.0), (a, 1.0), (b, 1.0), (b, 0.0)] for a, b in spans]
    bands = PolyCollection(
        verts,
        transform=ax.get_xaxis_transform(),  # x in data units, y in axes fraction
        facecolors=color,
        edgecolors=color,
        linewidths=0.6,
        alpha=_SHADE_ALPHA,
        zorder=0,
    )
    ax.add_collection(bands, autolim=False)


def _draw_line(ax: Any, x: np.ndarray, y: np.ndarray, decimate: bool, **style: Any) -> None:
    if decimate:
        idx = minmax_decimate_indices(y, DECIMATE_BUCKETS)
        x, y = x[idx], y[idx]
    ax.plot(x, y, **style)


def _atomic_save(fig: Figure, path: Path, fmt: str) -> None:
    """Save ``fig`` to ``path`` via a temporary file in the same directory.

    ``os.replace`` within one directory is atomic, so ``path`` is either the old
    file or the complete new one, never a partial write.
    """
    with atomic_target(path, "the plot") as temporary:
        with open(temporary, "wb") as handle:
            fig.savefig(handle, format=fmt)


def plot_detection(
    values: pd.DataFrame | np.ndarray,
    reconstruction: pd.DataFrame | np.ndarray,
    scores: np.ndarray | pd.Series,
    threshold: float,
    intervals: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    events: Sequence[Any] | None = None,
    max_features: int = 4,
    trained: np.ndarray | None = None,
) -> Path:
    """Plot a series, its reconstruction, the anomaly score and detected intervals.

    Parameters
    ----------
    values : ndarray or DataFrame, shape (n_timesteps, n_features) or (n_timesteps,)
        The observed series. A DataFrame's (or Series') index is the x axis (dates
        for a ``DatetimeIndex``, numbers for a numeric index); otherwise row
        positions ``0..n-1`` are used.
    reconstruction : ndarray or DataFrame, same shape as ``values``
        The model's reconstruction. If both are DataFrames their indexes must match.
    scores : ndarray or Series, shape (n_timesteps,)
        Anomaly score per timestep, higher = more anomalous. NaNs draw as gaps.
    threshold : float
        Detection threshold, drawn as a dashed horizontal line on the score panel.
    intervals : DataFrame, shape (n_intervals, >=2)
        Detected intervals, integer columns ``start`` and ``end`` (inclusive row
        positions). May be empty (or None).
    path : str or PathLike
        Output file; ``.png``, ``.svg`` or ``.pdf`` (case-insensitive) picks the
        format. The parent directory is created if missing.
    title : str, optional
        Figure title.
    events : sequence, optional
        Known events (objects with ``.name``, ``.start``, ``.end``, e.g.
        `lstmae.datasets.KnownEvent`), shaded in green and labelled on the top
        panel. Their bounds are timestamps for a date axis, numbers otherwise.
        Events outside the plotted range are skipped.
    max_features : int, default 4
        At most this many features (the first ones) get a panel.
    trained : array-like of bool, shape (n_timesteps,), optional
        The timesteps the model was trained on (`LSTMAutoencoder.seen_in_training`),
        shaded grey on every panel: their scores are leave-self-out, as the threshold saw them.

    Returns
    -------
    pathlib.Path
        ``path``, written atomically: a temporary file in the same directory is
        renamed over it, so a failure leaves any previous file untouched.

    Raises
    ------
    ParameterError
        Unsupported extension, ``max_features < 1``, non-finite ``threshold``, or
        malformed ``events``.
    DataError
        Shapes or indexes that do not match, non-numeric data, or intervals
        outside ``0 <= start <= end < n_timesteps``.

    Notes
    -----
    The figure has one panel per shown feature (series and reconstruction) above
    a score panel, all sharing the x axis. The score axis is logarithmic when all
    finite scores are positive and span more than 3 decades. Detected intervals
    are shaded red on every panel, events green.

    Series longer than ``DECIMATE_ABOVE`` (20,000) rows are decimated for drawing:
    each line keeps the min and max of each of ``DECIMATE_BUCKETS`` buckets (see
    `minmax_decimate_indices`), which preserves spikes and keeps 1e6 points fast.
    The data themselves are not changed.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ParameterError(
            f"unsupported plot file extension {path.suffix!r} in {str(path)!r}; "
            f"use one of {', '.join(_FORMATS)}"
        )
    if (
        isinstance(max_features, (bool, np.bool_))
        or not isinstance(max_features, (int, np.integer))
        or max_features < 1
    ):
        raise ParameterError(
            f"max_features must be an integer >= 1, got {max_features!r}; pass e.g. 4"
        )
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not np.isfinite(threshold):
        raise ParameterError(
            f"threshold must be a finite number, got {describe(threshold)}; "
            "pass the detector's threshold"
        )

    data, index, columns = _as_matrix(values, "values")
    recon, recon_index, _ = _as_matrix(reconstruction, "reconstruction")
    n, d = data.shape
    if recon.shape != data.shape:
        raise DataError(
            f"reconstruction has shape {recon.shape}, values {data.shape}; "
            "pass the reconstruction of exactly these values"
        )
    if index is not None and recon_index is not None and not index.equals(recon_index):
        raise DataError(
            "values and reconstruction DataFrames have different indexes; "
            "align them (e.g. reconstruction.reindex(values.index)) before plotting"
        )
    if index is None:
        index = recon_index
    score = np.asarray(scores, dtype=float)
    if score.ndim == 2 and score.shape[1] == 1:
        score = score[:, 0]
    if score.shape != (n,):
        raise DataError(
            f"scores must have shape ({n},) like values, got {score.shape}; "
            "pass one score per timestep"
        )
    bounds = _check_intervals(intervals, n)
    if trained is not None:
        trained = np.asarray(trained)
        if trained.shape != (n,) or trained.dtype != bool:
            raise DataError(f"trained must be a boolean array of shape ({n},) like values, got {trained.dtype} {trained.shape}; "
                            "pass model.seen_in_training(values)")

    x, is_date, tz = _x_coordinates(index, n)
    decimate = n > DECIMATE_ABOVE
    left, right = _interval_edges(x)
    interval_spans = [(left[s], right[e]) for s, e in bounds]
    trained_spans = [] if trained is None else [(left[s], right[e]) for s, e in label_ranges(trained).tolist()]
    x_lo, x_hi = float(np.nanmin(x)), float(np.nanmax(x))
    event_spans = _event_spans(events, is_date, tz, x_lo, x_hi)

    shown = min(d, max_features)
    names = columns if columns is not None else [f"feature {j}" for j in range(d)]
    fig = Figure(figsize=(12.0, 2.2 * (shown + 1) + 0.4), layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas; no pyplot, no global backend
    axes = fig.subplots(shown + 1, 1, sharex=True, squeeze=False)[:, 0]

    for j in range(shown):
        ax = axes[j]
        _shade(ax, trained_spans, _TRAINED_COLOR)
        _shade(ax, interval_spans, _INTERVAL_COLOR)
        _shade(ax, [(a, b) for _, a, b in event_spans], _EVENT_COLOR)
        _draw_line(ax, x, data[:, j], decimate, color="tab:blue", lw=0.8, label="series")
        _draw_line(
            ax,
            x,
            recon[:, j],
            decimate,
            color="tab:orange",
            lw=0.8,
            alpha=0.9,
            label="reconstruction",
        )
        ax.set_ylabel(names[j], fontsize=9)
        ax.margins(x=0)

    top = axes[0]
    for k, (name, a, b) in enumerate(event_spans):
        # Labels start at the band's left edge, except near the right end of the
        # axis, where they end at its right edge so they are not cut off.
        near_right = x_hi > x_lo and (a - x_lo) / (x_hi - x_lo) > 0.85
        # Stagger label heights: NAB windows can sit a few days apart (Christmas,
        # New Year) and their labels would otherwise overlap.
        top.text(
            b if near_right else a,
            0.97 - 0.1 * (k % 3),
            f" {name} ",
            transform=top.get_xaxis_transform(),
            fontsize=7,
            color="darkgreen",
            va="top",
            ha="right" if near_right else "left",
            clip_on=True,
        )
    if d > shown:
        top.set_title(f"showing the first {shown} of {d} features", fontsize=8, loc="right")
    handles = [
        Line2D([], [], color="tab:blue", lw=1.0, label="series"),
        Line2D([], [], color="tab:orange", lw=1.0, label="reconstruction"),
    ]
    if trained_spans:
        handles.append(Patch(facecolor=_TRAINED_COLOR, alpha=_SHADE_ALPHA, label="training data"))
    if interval_spans:
        handles.append(
            Patch(facecolor=_INTERVAL_COLOR, alpha=_SHADE_ALPHA, label="detected interval")
        )
    if event_spans:
        handles.append(Patch(facecolor=_EVENT_COLOR, alpha=_SHADE_ALPHA, label="known event"))
    top.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.005, 1.0),
        borderaxespad=0.0,
        fontsize=8,
    )

    ax = axes[-1]
    _shade(ax, trained_spans, _TRAINED_COLOR)
    _shade(ax, interval_spans, _INTERVAL_COLOR)
    _shade(ax, [(a, b) for _, a, b in event_spans], _EVENT_COLOR)
    _draw_line(ax, x, score, decimate, color="black", lw=0.7, label="score")
    ax.axhline(
        threshold, color=_INTERVAL_COLOR, ls="--", lw=1.0, label=f"threshold = {threshold:.4g}"
    )
    finite = score[np.isfinite(score)]
    if finite.size and finite.min() > 0 and threshold > 0 and finite.max() / finite.min() > 1e3:
        ax.set_yscale("log")
    ax.set_ylabel("anomaly score", fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0.0, fontsize=8)
    ax.margins(x=0)
    if is_date:
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    else:
        ax.set_xlabel(
            "row" if index is None else (str(index.name) if index.name is not None else "index")
        )
    if title:
        fig.suptitle(title)

    _atomic_save(fig, path, fmt)
    return path
