"""Human-readable reports on a terminal (rich tables)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

_LEFT = ("start_time", "end_time", "event", "id", "top_features")


def print_intervals(intervals: pd.DataFrame, threshold: float | None, console: Console, unit: str = "interval") -> None:
    """Print what `detect` found (intervals of a series, or samples of a panel: ``unit="sample"``) as a table;
    ``threshold`` None: each series was judged against its own (a fleet)."""
    against = "each series against its own threshold" if threshold is None else f"threshold {threshold:.4g}"
    if len(intervals) == 0:
        console.print(f"no anomalous {unit} ({against})")
        return
    table = Table(title=f"{len(intervals)} anomalous {unit}(s), {against}", title_justify="left")
    for column in intervals.columns:
        table.add_column(str(column), justify="left" if column in _LEFT else "right")
    for row in intervals.itertuples(index=False):
        table.add_row(*[_cell(value) for value in row])
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, pd.Timestamp):
        return str(value)
    return str(value)


_EVALUATION_COLUMNS = (
    ("name", "series"), ("n", "n"), ("d", "d"), ("vus_pr", "VUS-PR"), ("auc_pr", "AUC-PR"),
    ("vus_roc", "VUS-ROC"), ("auc_roc", "AUC-ROC"), ("ucr_top1", "top-1"), ("seconds", "seconds"),
)


def print_evaluation(results: pd.DataFrame, console: Console) -> None:
    """Print per-series evaluation results (see `lstmae.evaluation.series`) and their means as a table."""
    columns = [(key, title) for key, title in _EVALUATION_COLUMNS if key != "ucr_top1" or results[key].notna().any()]
    table = Table(title=f"{len(results)} series", title_justify="left", show_footer=True)
    means = {key: results[key].mean() for key, _ in columns if key not in ("name", "n", "d")}
    for key, title in columns:
        footer = "mean" if key == "name" else ("" if key in ("n", "d") else _metric_cell(means[key]))
        table.add_column(title, justify="left" if key == "name" else "right", footer=footer)
    for row in results.itertuples(index=False):
        cells = []
        for key, _ in columns:
            value = getattr(row, key)
            if key == "name" and row.status != "ok":
                value = f"{value} ({row.status})"
            cells.append(str(value) if key in ("name", "n", "d") else _metric_cell(value))
        table.add_row(*cells)
    console.print(table)
    failed = results[results["status"] == "error"]
    for row in failed.itertuples(index=False):
        console.print(f"error on {row.name}: {row.error}", markup=False)


def _metric_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


_PANEL_COLUMNS = (
    ("name", "dataset"), ("normal_class", "normal class"), ("n_train", "train"), ("n_test", "test"),
    ("anomalies", "anomalies"), ("auc_roc", "AUC-ROC"), ("auc_pr", "AUC-PR"), ("seconds", "seconds"),
)


def print_panel_evaluation(results: pd.DataFrame, console: Console) -> None:
    """Print per-class panel results (see `lstmae.evaluation.panels`), each dataset's mean over its classes, and the mean of those."""
    table = Table(title=f"{results['name'].nunique()} panel(s), {len(results)} normal class(es)", title_justify="left")
    for key, title in _PANEL_COLUMNS:
        table.add_column(title, justify="left" if key in ("name", "normal_class") else "right")
    counts = ("n_train", "n_test", "anomalies")
    for row in results.itertuples(index=False):
        label = row.normal_class if row.status == "ok" else f"{row.normal_class} ({row.status})"
        table.add_row(str(row.name), label, *[str(getattr(row, k)) if k in counts else _metric_cell(getattr(row, k)) for k, _ in _PANEL_COLUMNS[2:]])
    per_dataset = results.groupby("name", sort=False)[["auc_roc", "auc_pr", "seconds"]].mean()
    for name, means in per_dataset.iterrows():
        table.add_row(f"{name}: mean", "", "", "", "", _metric_cell(means["auc_roc"]), _metric_cell(means["auc_pr"]), _metric_cell(means["seconds"]), style="bold")
    if len(per_dataset) > 1:
        overall = per_dataset.mean()
        table.add_row("mean over datasets", "", "", "", "", _metric_cell(overall["auc_roc"]), _metric_cell(overall["auc_pr"]), _metric_cell(overall["seconds"]), style="bold")
    console.print(table)
    for row in results[results["status"] == "error"].itertuples(index=False):
        console.print(f"error on {row.name} class {row.normal_class}: {row.error}", markup=False)
