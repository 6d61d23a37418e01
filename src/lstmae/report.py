"""Human-readable reports on a terminal (rich tables)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

_LEFT = ("start_time", "end_time", "event", "start_id", "end_id")


def print_intervals(intervals: pd.DataFrame, threshold: float, console: Console) -> None:
    """Print detected intervals (positions, times, length, scores) as a table."""
    if len(intervals) == 0:
        console.print(f"no anomalous interval (threshold {threshold:.4g})")
        return
    table = Table(title=f"{len(intervals)} anomalous interval(s), threshold {threshold:.4g}", title_justify="left")
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
