"""The interactive HTML report: one self-contained file that opens offline.

`write_report` scores a long series with a fitted model (public methods only:
`anomaly_score`, `reconstruct`, `detect`, `explain` and the fitted attributes,
the `ReportedModel` protocol; this module never imports the estimator) and
writes one HTML file holding plotly.js, the page's own script and style, and
the data as JSON; nothing is fetched from the network, so the file opens
from a ``file://`` URL and can be mailed to a colleague.

The page shows, on one shared zoomable time axis, the series against its
reconstruction and the score against the threshold, detected intervals (red),
known labels (green) and the timesteps trained on (grey) shaded on both; a sortable table of intervals whose
rows zoom the plot; per-feature scores of the selected interval (multivariate
data); and the model's summary (parameters, training history, diagnostics and
their warnings, the `explain` walk).

Long series are drawn from a peak-preserving subset (`display_indices`): the
minimum and maximum of each of a fixed number of buckets, plus every point
around the detected intervals, so a 1,000,000-point series gives a file of a
few MB that opens in about a second, and no spike disappears. The page says
when the view is downsampled.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from importlib.resources import files
from typing import Any, Protocol

import numpy as np
import pandas as pd

from lstmae.data.frames import prepare
from lstmae.errors import DataError, LstmaeError, ParameterError, describe
from lstmae.evaluation.metrics import label_ranges
from lstmae.persistence.atomic import atomic_target
from lstmae.reports.decimate import DECIMATE_ABOVE, minmax_decimate_indices

__all__ = ["ReportData", "ReportedModel", "display_indices", "render_html", "report_data", "write_report"]

#: Lines (series, reconstruction, score) longer than this are downsampled for display.
DOWNSAMPLE_ABOVE = DECIMATE_ABOVE
#: Buckets of all lines together: a multivariate series shares them out, so the
#: file stays a few MB whatever the number of features.
TOTAL_BUCKETS = 30_000
#: Buckets of one line: at most this many (a few per pixel), at least MIN_BUCKETS.
MAX_BUCKETS = 5_000
MIN_BUCKETS = 250


class ReportedModel(Protocol):
    """What the report reads of a fitted model (`lstmae.LSTMAutoencoder`): public methods and attributes only.

    Also read when present: ``feature_names_in_``, ``diagnostics_``, ``history_``.
    """

    threshold_: float

    def anomaly_score(self, X: Any, *, per_feature: bool = False) -> Any: ...

    def reconstruct(self, X: Any) -> Any: ...

    def detect(self, X: Any) -> pd.DataFrame: ...

    def explain(self, X: Any = None) -> str: ...

    def seen_in_training(self, X: Any) -> Any: ...

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...


@dataclass(frozen=True, eq=False)
class ReportData:
    """Everything the page shows, as plain arrays (no model needed to render).

    Attributes
    ----------
    x : ndarray of shape (n,)
        Horizontal coordinate of each timestep: milliseconds since 1970 (UTC
        wall time) when ``is_time``, else the index's numbers or positions.
    is_time : bool
    values, reconstruction, feature_scores : ndarray of shape (n, n_features)
    scores : ndarray of shape (n,)
    threshold : float
    intervals : DataFrame
        `LSTMAutoencoder.detect`'s table (``start``, ``end`` positions, ...).
    labels : ndarray of shape (n,) of bool, or None
        Known anomalies, shaded in green.
    feature_names : list of str
    trained : ndarray of shape (n,) of bool, or None
        The timesteps the model was trained on (`LSTMAutoencoder.seen_in_training`), shaded in grey.
    summary : dict
        ``params`` (dict), ``history`` (dict of lists), ``diagnostics`` (dict,
        with ``warnings``) and ``explain`` (str); any may be missing.
    title : str
    """

    x: np.ndarray
    is_time: bool
    values: np.ndarray
    reconstruction: np.ndarray
    feature_scores: np.ndarray
    scores: np.ndarray
    threshold: float
    intervals: pd.DataFrame
    labels: np.ndarray | None
    feature_names: list[str]
    summary: dict
    title: str = "lstmae report"
    trained: np.ndarray | None = None


# --------------------------------------------------------------------------- #
# Public entry points
# --------------------------------------------------------------------------- #


def write_report(
    model: ReportedModel,
    X: Any,
    path: str | os.PathLike,
    *,
    labels: Any = None,
    title: str | None = None,
) -> Path:
    """Score ``X`` with ``model`` and write the interactive report to ``path`` (atomic).

    Parameters
    ----------
    model : LSTMAutoencoder (any `ReportedModel`)
        A fitted model (of a long series, not a panel).
    X : array-like of shape (n_timesteps,) or (n_timesteps, n_features), or DataFrame
        The series to show; a DatetimeIndex gives a time axis.
    path : str or os.PathLike
        The ``.html`` file to write.
    labels : array-like of shape (n_timesteps,), optional
        Known anomalies (non-zero = anomalous), shaded in the plots.
    title : str, optional
        The page's title.

    Returns
    -------
    Path
        ``path``.
    """
    target = Path(path)
    if target.suffix.lower() not in (".html", ".htm"):
        raise ParameterError(f"cannot write the report to {str(path)!r}: it is an HTML page; give a file name ending in .html.")
    page = render_html(report_data(model, X, labels=labels, title=title))
    with atomic_target(target, "the report") as temporary:
        temporary.write_text(page, encoding="utf-8")
    return target


def report_data(model: ReportedModel, X: Any, *, labels: Any = None, title: str | None = None) -> ReportData:
    """Score ``X`` with ``model`` (its public methods only) and collect what the page shows."""
    data = prepare(X)
    if data.is_panel:
        raise DataError(
            f"the report shows one long series; got a panel of shape {data.values.shape}. "
            "Report one sequence at a time (X[i]), or use `lstmae score` for a panel."
        )
    n, width = data.values.shape
    scores = np.asarray(model.anomaly_score(X), dtype=np.float64).reshape(n)  # the score detect thresholds
    per_feature = np.asarray(model.anomaly_score(X, per_feature=True), dtype=np.float64).reshape(n, -1)
    reconstruction = np.asarray(model.reconstruct(X), dtype=np.float64).reshape(n, width)
    intervals = model.detect(X)
    fitted_names = getattr(model, "feature_names_in_", None)
    names = data.columns or ([] if fitted_names is None else [str(name) for name in fitted_names])
    if len(names) != width:
        names = ["value"] if width == 1 else [str(i) for i in range(width)]
    x, is_time = _x_axis(data.index, n)
    diagnostics = getattr(model, "diagnostics_", None)
    summary = {
        # trainer_kwargs may hold Lightning objects (loggers, callbacks): shown as their repr
        "params": {key: repr(value) if key == "trainer_kwargs" and value is not None else value for key, value in model.get_params().items()},
        "history": getattr(model, "history_", {}),
        "diagnostics": dict(diagnostics) if diagnostics else {},
        "explain": model.explain(X),
        "threshold": float(model.threshold_),
    }
    return ReportData(
        x=x, is_time=is_time, values=data.values, reconstruction=reconstruction, feature_scores=per_feature,
        scores=scores, threshold=float(model.threshold_), intervals=intervals,
        labels=_labels(labels, n), feature_names=[str(name) for name in names], summary=summary,
        title=title or f"lstmae report: {n:,} timesteps, {width} feature(s)",
        trained=np.asarray(model.seen_in_training(X), dtype=bool).reshape(n),
    )


def display_indices(y: np.ndarray, n_buckets: int, keep: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """Positions of ``y`` to draw: each bucket's minimum and maximum, and every position in ``keep``.

    Parameters
    ----------
    y : ndarray of shape (n,)
    n_buckets : int
        Buckets of `lstmae.reports.decimate.minmax_decimate_indices` (equal, contiguous;
        ``n <= 2 * n_buckets`` keeps every position).
    keep : sequence of (first, last)
        Inclusive position ranges drawn at full resolution (clipped to ``[0, n)``).

    Returns
    -------
    ndarray of int64
        Sorted, unique positions; the first and last are always included.
    """
    n = len(y)
    parts = [minmax_decimate_indices(y, n_buckets)]
    for first, last in keep:
        first, last = max(int(first), 0), min(int(last), n - 1)
        if first <= last:
            parts.append(np.arange(first, last + 1, dtype=np.int64))
    return np.unique(np.concatenate(parts))


def render_html(data: ReportData) -> str:
    """The report page for ``data``: one HTML document, everything inline."""
    payload, arrays = _payload(data)
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False, default=_jsonable)
    for number, array in enumerate(arrays):
        text = text.replace(f'"{_placeholder(number)}"', array, 1)
    # Inside <script>, "</script>" or "<!--" in a string would end the block:
    # "<" only occurs in JSON strings, where \u003c reads back the same.
    text = text.replace("<", "\\u003c")
    return _PAGE.format(
        title=html.escape(data.title),
        style=_STYLE,
        plotly=_plotly_js(),
        data=text,
        script=_SCRIPT,
    )


# --------------------------------------------------------------------------- #
# Data -> JSON
# --------------------------------------------------------------------------- #


def _x_axis(index: pd.Index | None, n: int) -> tuple[np.ndarray, bool]:
    if isinstance(index, pd.DatetimeIndex):
        wall = index.tz_localize(None) if index.tz is not None else index  # shown as the clock read there
        return wall.as_unit("ms").asi8.astype(np.float64), True
    if index is not None and pd.api.types.is_numeric_dtype(index) and not isinstance(index, pd.RangeIndex):
        return index.to_numpy(dtype=np.float64), False
    return np.arange(n, dtype=np.float64), False


def _labels(labels: Any, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    try:
        array = np.asarray(labels, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise DataError(f"labels must be numbers (0 = normal, non-zero = anomaly); got {describe(labels)}.") from None
    if len(array) != n:
        raise DataError(f"labels has {len(array)} values but the series has {n} timesteps; give one label per timestep.")
    if not np.isfinite(array).all():
        raise DataError(f"labels has {int((~np.isfinite(array)).sum())} missing or infinite value(s); fill them with 0 or 1.")
    return array != 0


def _context(start: int, end: int, n: int) -> tuple[int, int]:
    """The positions shown when an interval is selected: it, and half its length (>= 10) either side."""
    margin = max((end - start + 1) // 2, 10)
    return max(start - margin, 0), min(end + margin, n - 1)


def _placeholder(number: int) -> str:
    return f"@@lstmae-array-{number}@@"


def _numbers(values: np.ndarray, exact: bool) -> str:
    """A JSON array; ``exact`` keeps every digit (x coordinates), else 7 significant digits."""
    if exact and np.array_equal(values, np.round(values)) and np.abs(values).max(initial=0) < 2**53:
        return "[" + ",".join(map(str, values.astype(np.int64).tolist())) + "]"
    text = ",".join(map(repr if exact else "{:.7g}".format, values.tolist()))
    return "[" + text + "]"


def _payload(data: ReportData) -> tuple[dict, list[str]]:
    """The page's JSON (arrays as placeholders) and the arrays' JSON texts, in order."""
    n, width = data.values.shape
    arrays: list[str] = []

    def line(y: np.ndarray, positions: np.ndarray) -> dict:
        arrays.append(_numbers(data.x[positions], exact=True))
        arrays.append(_numbers(y[positions], exact=False))
        return {"x": _placeholder(len(arrays) - 2), "y": _placeholder(len(arrays) - 1), "points": int(len(positions))}

    intervals = data.intervals
    spans = list(zip(intervals["start"].astype(int).tolist(), intervals["end"].astype(int).tolist()))
    n_lines = 2 * width + 1
    downsampled = n > DOWNSAMPLE_ABOVE
    buckets = min(MAX_BUCKETS, max(MIN_BUCKETS, TOTAL_BUCKETS // n_lines))
    keep: list[tuple[int, int]] = []
    if downsampled:  # full resolution around the most severe intervals, as many as fit 2 x buckets points
        budget = 2 * buckets
        for row in np.argsort(-intervals["severity"].to_numpy(), kind="stable") if len(spans) else []:
            first, last = _context(*spans[row], n)
            if last - first + 1 <= budget:
                keep.append((first, last))
                budget -= last - first + 1
    positions = (lambda y: display_indices(y, buckets, keep)) if downsampled else (lambda y: np.arange(n))
    series = [
        {
            "name": name,
            "value": line(data.values[:, f], positions(data.values[:, f])),
            "recon": line(data.reconstruction[:, f], positions(data.reconstruction[:, f])),
        }
        for f, name in enumerate(data.feature_names)
    ]
    score = line(data.scores, positions(data.scores))
    rows = []
    for number, (start, end) in enumerate(spans):
        record = intervals.iloc[number]
        first, last = _context(start, end, n)
        rows.append({
            "start": start, "end": end,
            "x0": float(data.x[start]), "x1": float(data.x[end]),
            "view": [float(data.x[first]), float(data.x[last])],
            "start_label": _label_text(record.get("start_time", start)),
            "end_label": _label_text(record.get("end_time", end)),
            "length": int(record["length"]), "peak": float(record["peak_score"]),
            "severity": _finite_or_none(float(record["severity"])),
            "top": str(record.get("top_features", "")),
            "features": data.feature_scores[start : end + 1].mean(axis=0).tolist(),
        })
    label_spans = [] if data.labels is None else [[float(data.x[a]), float(data.x[b])] for a, b in label_ranges(data.labels).tolist()]
    payload = {
        "title": data.title, "n": n, "time": data.is_time, "features": data.feature_names,
        "threshold": data.threshold, "series": series, "score": score, "intervals": rows,
        "labels": label_spans if data.labels is not None else None,
        "trained": [] if data.trained is None else [[float(data.x[a]), float(data.x[b])] for a, b in label_ranges(data.trained).tolist()],
        "trained_points": 0 if data.trained is None else int(data.trained.sum()),
        "downsampled": {"n": n, "buckets": buckets, "detail": len(keep)} if downsampled else None,
        "summary": _summary(data.summary),
    }
    return payload, arrays


def _label_text(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ")
    return str(value)


def _finite_or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _summary(summary: dict) -> dict:
    diagnostics = dict(summary.get("diagnostics") or {})
    warnings = [str(w) for w in diagnostics.pop("warnings", [])]
    history = {key: [_finite_or_none(float(v)) for v in values] for key, values in (summary.get("history") or {}).items()}
    return {
        "params": [[key, _cell(value)] for key, value in (summary.get("params") or {}).items()],
        "history": history,
        "diagnostics": [[key, _cell(value)] for key, value in diagnostics.items()],
        "warnings": warnings,
        "explain": str(summary.get("explain") or ""),
        "threshold": summary.get("threshold"),
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{key} {_cell(item)}" for key, item in value.items())
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} into the report's JSON")


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    """plotly.js from the `plotly` package (its offline bundle), to be inlined."""
    try:
        bundle = files("plotly") / "package_data" / "plotly.min.js"
        text = bundle.read_text(encoding="utf-8")
    except (ImportError, OSError) as exc:
        raise LstmaeError(
            f"the HTML report needs plotly's offline bundle (plotly.min.js), which could not be read ({exc}); "
            "install it with: pip install plotly"
        ) from None
    if "</script" in text.lower():  # would end the inline <script> early
        raise LstmaeError("plotly.min.js contains '</script' and cannot be inlined; install another plotly version.")
    return text


# --------------------------------------------------------------------------- #
# The page
# --------------------------------------------------------------------------- #

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header><h1 id="title"></h1><p id="facts"></p><p id="downsample-note" hidden></p></header>
<section>
<p class="legend"><span class="swatch detected"></span>detected interval
<span class="swatch labelled"></span>known label
<span class="swatch trained"></span>trained on
<span class="swatch threshold"></span>threshold
<span class="hint">drag to zoom, double-click to reset; click an interval below to zoom to it</span></p>
<p id="feature-picker" hidden><label>feature shown: <select id="feature"></select></label></p>
<div id="plot"></div>
</section>
<section id="interval-section">
<h2 id="interval-title"></h2>
<table id="intervals"><thead><tr>
<th data-key="number">#</th><th data-key="start">start</th><th data-key="end">end</th>
<th data-key="length">length</th><th data-key="peak">peak</th><th data-key="severity">severity</th>
<th data-key="top">top features</th></tr></thead><tbody></tbody></table>
<div id="feature-scores" hidden></div>
</section>
<section id="model">
<h2>Model</h2>
<div class="columns">
<div><h3>Parameters</h3><table id="params"></table></div>
<div><h3>Diagnostics</h3><table id="diagnostics"></table><ul id="warnings"></ul></div>
<div class="wide"><h3>Training history</h3><div id="history"></div></div>
</div>
<h3>Shape walk (<code>model.explain()</code>)</h3>
<pre id="explain"></pre>
</section>
<script>{plotly}</script>
<script type="application/json" id="report-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 16px 24px; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 4px; } h2 { font-size: 1.15em; margin: 20px 0 6px; } h3 { font-size: 1em; margin: 10px 0 4px; }
#facts, .legend, #downsample-note { margin: 2px 0; font-size: 0.9em; }
#downsample-note { color: #8a5a00; }
.swatch { display: inline-block; width: 14px; height: 10px; margin: 0 4px 0 12px; vertical-align: middle; }
.swatch.detected { background: rgba(214, 39, 40, 0.35); } .swatch.labelled { background: rgba(44, 160, 44, 0.35); }
.swatch.threshold { height: 0; border-top: 2px dashed #d62728; }
.swatch.trained { background: rgba(127, 127, 127, 0.3); }
.hint { color: #777; margin-left: 16px; }
#plot { height: 560px; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
#intervals tbody tr { cursor: pointer; } #intervals tbody tr:hover { background: #f6f0f0; }
#intervals tbody tr.selected { background: #fbe3e3; }
#intervals td:last-child, #params td, #diagnostics td { text-align: left; }
#feature-scores { height: 300px; max-width: 900px; }
.columns { display: flex; flex-wrap: wrap; gap: 32px; } .columns .wide { flex: 1 1 420px; }
#history { height: 260px; min-width: 380px; }
#warnings li { color: #b00; }
pre { background: #f7f7f7; padding: 8px; font-size: 0.8em; overflow-x: auto; }
"""

# The page's script: reads the JSON, draws with Plotly, wires the table.
_SCRIPT = r"""
(function () {
  "use strict";
  const started = performance.now();  // plotly.js is parsed by now: the report's own cost starts here
  const R = JSON.parse(document.getElementById("report-data").textContent);
  const plot = document.getElementById("plot");
  const many = R.features.length > 1;
  const CONFIG = {displaylogo: false, responsive: true};
  let feature = 0, selected = -1;

  function fmt(v) { return v === null ? "inf" : (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : +v.toPrecision(4) + ""); }
  function el(tag, text) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; }

  document.title = R.title;
  document.getElementById("title").textContent = R.title;
  document.getElementById("facts").textContent =
    R.n.toLocaleString("en") + " timesteps, features: " + R.features.join(", ") + "; threshold " + fmt(R.threshold) +
    "; " + R.intervals.length + " detected interval(s)" + (R.labels ? "; " + R.labels.length + " labelled stretch(es)" : "") +
    (R.trained_points ? "; grey: the " + R.trained_points.toLocaleString("en") + " timesteps trained on (scored leave-self-out, as the threshold saw them)" : "");
  if (R.downsampled) {
    const note = document.getElementById("downsample-note");
    note.hidden = false;
    note.textContent = "Downsampled for display: each line of " + R.n.toLocaleString("en") + " points is drawn from the minimum and maximum of " +
      R.downsampled.buckets.toLocaleString("en") + " buckets (every peak is kept)" +
      (R.downsampled.detail ? ", at full resolution around the " + R.downsampled.detail + " most severe interval(s)." : ".");
  }

  // ------------------------------------------------------------ main plot
  function seriesTraces(f) {
    const s = R.series[f], label = many ? s.name : "value";
    // The reconstruction is drawn first so the data stays visible on top of it; the legend lists the data first.
    return [
      {type: "scatter", mode: "lines", name: "reconstruction", x: s.recon.x, y: s.recon.y, xaxis: "x", yaxis: "y",
       line: {color: "#ff7f0e", width: 1.2, simplify: false}, opacity: 0.85, legendrank: 2},
      {type: "scatter", mode: "lines", name: label, x: s.value.x, y: s.value.y, xaxis: "x", yaxis: "y",
       line: {color: "#1f4e9c", width: 1.2, simplify: false}, legendrank: 1},
    ];
  }
  function band(x0, x1, color) {
    return {type: "rect", xref: "x", yref: "paper", x0: x0, x1: x1, y0: 0, y1: 1, fillcolor: color, line: {width: 0}, layer: "below"};
  }
  function shapes() {
    const out = [];
    R.trained.forEach(function (s) { out.push(band(s[0], s[1], "rgba(127,127,127,0.16)")); });
    (R.labels || []).forEach(function (s) { out.push(band(s[0], s[1], "rgba(44,160,44,0.22)")); });
    R.intervals.forEach(function (row) { out.push(band(row.x0, row.x1, "rgba(214,39,40,0.22)")); });
    out.push({type: "line", xref: "paper", x0: 0, x1: 1, yref: "y2", y0: R.threshold, y1: R.threshold,
              line: {color: "#d62728", width: 1.5, dash: "dash"}});
    if (selected >= 0) {
      const row = R.intervals[selected];
      out.push({type: "rect", xref: "x", yref: "paper", x0: row.x0, x1: row.x1, y0: 0, y1: 1, line: {color: "#d62728", width: 2}});
    }
    return out;
  }
  const scoreTrace = {type: "scatter", mode: "lines", name: "score", x: R.score.x, y: R.score.y, xaxis: "x", yaxis: "y2",
                      line: {color: "#6a3d9a", width: 1.2, simplify: false}, legendrank: 3};
  const layout = {
    margin: {l: 70, r: 20, t: 30, b: 40}, hovermode: "closest", showlegend: true,
    legend: {orientation: "h", x: 0, y: 1.08},
    xaxis: {type: R.time ? "date" : "linear", anchor: "y2"},
    yaxis: {domain: [0.42, 1], title: {text: many ? "value (feature)" : "value"}},
    yaxis2: {domain: [0, 0.34], title: {text: "anomaly score"}, rangemode: "tozero"},
    shapes: shapes(),
  };
  const drawn = [Plotly.newPlot(plot, seriesTraces(0).concat([scoreTrace]), layout, CONFIG)];

  function firstAtLeast(x, v) { let lo = 0, hi = x.length; while (lo < hi) { const m = (lo + hi) >> 1; if (x[m] < v) lo = m + 1; else hi = m; } return lo; }
  function visibleRange(x, y, x0, x1) {   // min and max of y where x0 <= x <= x1 (x sorted); the nearest points if none
    let lo = firstAtLeast(x, x0), hi = firstAtLeast(x, x1 + 1e-9 * Math.abs(x1) + 1e-12);
    if (hi <= lo) { lo = Math.max(lo - 1, 0); hi = Math.min(lo + 2, x.length); }
    let min = Infinity, max = -Infinity;
    for (let i = lo; i < hi; i++) { if (y[i] < min) min = y[i]; if (y[i] > max) max = y[i]; }
    return [min, max];
  }
  function padded(min, max) { const pad = (max - min) * 0.06 || Math.abs(max) * 0.1 || 1; return [min - pad, max + pad]; }
  function dateText(ms) { return new Date(ms).toISOString().replace("T", " ").replace("Z", ""); }
  function zoomTo(x0, x1) {
    const s = R.series[feature];
    const a = visibleRange(s.value.x, s.value.y, x0, x1), b = visibleRange(s.recon.x, s.recon.y, x0, x1);
    const c = visibleRange(R.score.x, R.score.y, x0, x1);
    Plotly.relayout(plot, {
      "xaxis.range": R.time ? [dateText(x0), dateText(x1)] : [x0, x1],
      "yaxis.range": padded(Math.min(a[0], b[0]), Math.max(a[1], b[1])),
      "yaxis2.range": padded(Math.min(0, c[0]), Math.max(c[1], R.threshold)),
      shapes: shapes(),
    });
  }
  function showFeature(f) {
    feature = f;
    // Plotly.react, not restyle: restyling x would reset the time axis to a linear one.
    return Plotly.react(plot, seriesTraces(f).concat([scoreTrace]), plot.layout, CONFIG);
  }
  if (many) {
    const picker = document.getElementById("feature");
    R.features.forEach(function (name, i) { const o = el("option", name); o.value = i; picker.appendChild(o); });
    picker.addEventListener("change", function () { showFeature(+picker.value); });
    document.getElementById("feature-picker").hidden = false;
  }

  // ------------------------------------------------------------ intervals
  const body = document.querySelector("#intervals tbody");
  document.getElementById("interval-title").textContent =
    R.intervals.length ? R.intervals.length + " detected interval(s)" : "No detected interval (no score above the threshold)";
  const sortKeys = {number: function (i) { return i; }, start: function (i) { return R.intervals[i].start; },
    end: function (i) { return R.intervals[i].end; }, length: function (i) { return R.intervals[i].length; },
    peak: function (i) { return R.intervals[i].peak; },
    severity: function (i) { const s = R.intervals[i].severity; return s === null ? Infinity : s; },
    top: function (i) { return R.intervals[i].top; }};
  let order = R.intervals.map(function (_, i) { return i; });
  function fillTable() {
    body.textContent = "";
    order.forEach(function (i) {
      const row = R.intervals[i], tr = el("tr");
      tr.dataset.interval = i;
      if (i === selected) tr.className = "selected";
      [String(i + 1), row.start_label, row.end_label, String(row.length), fmt(row.peak), fmt(row.severity), row.top]
        .forEach(function (text) { tr.appendChild(el("td", text)); });
      tr.addEventListener("click", function () { select(i); });
      body.appendChild(tr);
    });
  }
  document.querySelectorAll("#intervals th").forEach(function (th) {
    th.addEventListener("click", function () {
      const key = sortKeys[th.dataset.key], descending = th.classList.contains("sorted-asc");
      document.querySelectorAll("#intervals th").forEach(function (o) { o.classList.remove("sorted-asc", "sorted-desc"); });
      th.classList.add(descending ? "sorted-desc" : "sorted-asc");
      order.sort(function (a, b) { const u = key(a), v = key(b); const c = u < v ? -1 : u > v ? 1 : a - b; return descending ? -c : c; });
      fillTable();
    });
  });
  function select(i) {
    selected = i;
    const row = R.intervals[i];
    let ready = null;
    if (many) {
      let best = 0;
      row.features.forEach(function (v, f) { if (v > row.features[best]) best = f; });
      document.getElementById("feature").value = best;
      ready = showFeature(best);
      const box = document.getElementById("feature-scores");
      box.hidden = false;
      Plotly.react(box, [{type: "bar", x: R.features, y: row.features, marker: {color: "#6a3d9a"}}], {
        title: {text: "interval #" + (i + 1) + ": mean score of each feature (" + row.start_label + " to " + row.end_label + ")"},
        margin: {l: 60, r: 20, t: 40, b: 80}, yaxis: {title: {text: "score"}}}, CONFIG);
    }
    fillTable();
    return Promise.resolve(ready).then(function () { return zoomTo(row.view[0], row.view[1]); });
  }
  fillTable();

  // ------------------------------------------------------------ model summary
  function fillPairs(id, pairs) {
    const table = document.getElementById(id);
    pairs.forEach(function (p) { const tr = el("tr"); tr.appendChild(el("th", p[0])); tr.appendChild(el("td", p[1])); table.appendChild(tr); });
  }
  fillPairs("params", R.summary.params);
  fillPairs("diagnostics", R.summary.diagnostics.length ? R.summary.diagnostics : [["diagnostics", "not available"]]);
  const warn = document.getElementById("warnings");
  R.summary.warnings.forEach(function (w) { warn.appendChild(el("li", w)); });
  if (!R.summary.warnings.length) warn.appendChild(el("li", "no warning")).style.color = "#2a7";
  document.getElementById("explain").textContent = R.summary.explain;
  const history = Object.keys(R.summary.history).filter(function (k) { return k === "loss" || k === "val_loss"; });
  if (history.length) {
    drawn.push(Plotly.newPlot("history", history.map(function (k) {
      const y = R.summary.history[k];
      return {type: "scatter", mode: "lines+markers", name: k, x: y.map(function (_, i) { return i + 1; }), y: y};
    }), {margin: {l: 60, r: 20, t: 10, b: 40}, xaxis: {title: {text: "epoch"}, dtick: Math.max(1, Math.ceil(R.summary.history[history[0]].length / 12))}, yaxis: {title: {text: "loss"}}}, CONFIG));
  } else {
    document.getElementById("history").textContent = "no training history in this model";
  }
  Promise.all(drawn).then(function () {  // for tests and timing: every plot is drawn
    document.body.dataset.ready = "1";
    document.body.dataset.readyMs = Math.round(performance.now());
    document.body.dataset.drawMs = Math.round(performance.now() - started);
  });
})();
"""
