"""Run the default detector on labelled series and measure it: the code path of `lstmae evaluate` and bench/quality.py.

For each `LabelledSeries`: fit ``LSTMAutoencoder(**params)`` on
``values[:train_end]``, score all n points with ``anomaly_score``, and compute
the benchmark's metrics (`lstmae.evaluation.metrics.evaluate`) with the window
`lstmae.evaluation.metrics.sliding_window` derives from the series. A model that fails on
a series is recorded as a row with ``status='error'`` and the message, so that
one bad series does not end a long run.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import pandas as pd

from lstmae.data.benchmarks import LabelledSeries
from lstmae.errors import LstmaeError, ParameterError
from lstmae.estimator import LSTMAutoencoder
from lstmae.evaluation import metrics
from lstmae.params import SPECS, check_names, validate

__all__ = ["COLUMNS", "METRICS", "evaluate_series", "parse_params", "summarise"]

#: The metric columns of a result row, in display order.
METRICS: tuple[str, ...] = ("vus_pr", "auc_pr", "vus_roc", "auc_roc", "ucr_top1")
#: Every column of a result row.
COLUMNS: tuple[str, ...] = (
    "name", "group", "n", "d", "train_end", "window", *METRICS, "fit_seconds", "score_seconds", "seconds", "status", "error",
)


def parse_params(text: str | None) -> dict[str, Any]:
    """Estimator keyword arguments from a JSON object such as ``'{"epochs": 5}'``."""
    if text is None or not text.strip():
        return {}
    try:
        params = json.loads(text)
    except ValueError as exc:
        raise ParameterError(f"--params must be a JSON object such as '{{\"epochs\": 5}}'; got {text!r} ({exc}).") from None
    if not isinstance(params, dict):
        raise ParameterError(f"--params must be a JSON object such as '{{\"epochs\": 5}}'; got {text!r}.")
    check_names(params)  # the command line's own check (`lstmae.cli.options.read_params`)
    validate({**{name: spec.default for name, spec in SPECS.items()}, **params})  # bad values fail now, not after reading data
    return params


def evaluate_series(series: LabelledSeries, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit on the normal prefix, score the whole series, measure.

    Parameters
    ----------
    series : LabelledSeries
        values (n, d), labels (n,), train_end.
    params : dict, optional
        Keyword arguments of `LSTMAutoencoder` (``verbose`` defaults to 0).

    Returns
    -------
    dict
        One result row with the keys of `COLUMNS`. Metrics that are undefined
        (no anomaly in the series, or top-1 outside UCR) are NaN; a failed
        fit/score gives ``status='error'`` and the message in ``error``.
    """
    row: dict[str, Any] = {
        "name": series.name, "group": series.group, "n": series.n, "d": series.d, "train_end": series.train_end,
        "window": metrics.sliding_window(series.values), **{m: math.nan for m in METRICS},
        "fit_seconds": math.nan, "score_seconds": math.nan, "seconds": math.nan, "status": "ok", "error": "",
    }
    model = LSTMAutoencoder(**{"verbose": 0, **(params or {})})
    try:
        began = time.perf_counter()
        model.fit(series.values[: series.train_end])
        fitted = time.perf_counter()
        score = np.asarray(model.anomaly_score(series.values), dtype=np.float64)
        done = time.perf_counter()
    except LstmaeError as exc:
        row.update(status="error", error=" ".join(str(exc).split()))
        return row
    row.update(fit_seconds=fitted - began, score_seconds=done - fitted, seconds=done - began)
    positives = int(series.labels.sum())
    if positives == 0 or positives == series.n:
        row.update(status="no-anomaly" if positives == 0 else "all-anomaly")
        return row
    if not np.isfinite(score).all():
        row.update(status="error", error=f"the model gave {int((~np.isfinite(score)).sum())} non-finite scores")
        return row
    result = metrics.evaluate(series.labels, score, window=row["window"],
                              train_end=series.train_end if series.group == "ucr" else None)
    row.update({m: result.get(m, math.nan) for m in METRICS})
    return row


def summarise(rows: pd.DataFrame) -> dict[str, float]:
    """Means of the metrics over the rows where they are defined, and the median/max seconds."""
    summary: dict[str, float] = {m: float(rows[m].mean()) if rows[m].notna().any() else math.nan for m in METRICS}
    seconds = rows["seconds"].dropna()
    summary["median_seconds"] = float(seconds.median()) if len(seconds) else math.nan
    summary["max_seconds"] = float(seconds.max()) if len(seconds) else math.nan
    summary["series"] = int(len(rows))
    return summary
