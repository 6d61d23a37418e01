"""A push's body as points: JSON rows or CSV to (times (k,), values (k, F)), or a `BadInput` naming the problem.

JSON: a list of rows, or ``{"points": [rows], "provisional": bool}``; a row is
``{"time": T, "value": x}`` or ``{"time": T, "values": [x1, ..., xF]}`` (a
model's feature names as keys also work: ``{"time": T, "temp": 20.5, "load": 3}``).
CSV (``Content-Type: text/csv``): a header ``time,value`` (or ``time`` and the
model's columns), one row per point. T: seconds since the epoch (a number) or
an ISO 8601 date/time (UTC when it has no offset). ``null``/empty: a missing
value, interpolated once the next value arrives.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import numpy as np
import pandas as pd


class BadInput(Exception):
    """A request that cannot be served as sent: an HTTP status and a message saying what and how to fix it."""

    def __init__(self, message: str, status: int = 422, kind: str = "bad_input") -> None:
        super().__init__(message)
        self.message, self.status, self.kind = message, status, kind


def _time(value: Any, where: str) -> float:
    if isinstance(value, bool) or value is None:
        raise BadInput(f"{where}: time {value!r} is not a time; send seconds since the epoch (a number) or an ISO 8601 date/time.")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                stamp = pd.Timestamp(text)
            except (ValueError, TypeError, OverflowError):
                stamp = pd.NaT
            if pd.isna(stamp):
                raise BadInput(f"{where}: time {value!r} is not a time; send seconds since the epoch or an ISO 8601 date/time.") from None
            if stamp.tz is None:
                stamp = stamp.tz_localize("UTC")
            number = stamp.value / 1e9
    else:
        raise BadInput(f"{where}: time {_short(value)} is not a time; send seconds since the epoch (a number) or an ISO 8601 date/time.")
    if not math.isfinite(number):
        raise BadInput(f"{where}: time {value!r} is not finite.")
    return number


def _number(value: Any, where: str) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    if isinstance(value, bool):
        raise BadInput(f"{where}: value {value!r} is not a number; send numbers (null for a missing value).")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{where}: value {_short(value)} is not a number; send numbers (null for a missing value).") from None
    if math.isinf(number):
        raise BadInput(f"{where}: value {value!r} is infinite; send finite numbers (null for a missing value).")
    return number


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_json(body: bytes, n_features: int, names: list[str] | None, max_points: int) -> tuple[np.ndarray, np.ndarray, bool | None]:
    """(times, values, the body's "provisional" or None) of a JSON body."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"the body is not valid JSON ({exc}); send a list of rows like [{{\"time\": 1700000000, \"value\": 1.5}}].", 400, "bad_json") from None
    provisional = None
    if isinstance(document, dict):
        if "points" not in document:
            raise BadInput(f"the JSON object has no \"points\" (keys: {sorted(document)[:10]}); send {{\"points\": [rows]}} or a list of rows.")
        provisional = document.get("provisional")
        if provisional is not None and not isinstance(provisional, bool):
            raise BadInput(f"\"provisional\" must be true or false, got {_short(provisional)}.")
        document = document["points"]
    if not isinstance(document, list):
        raise BadInput(f"the points must be a JSON list of rows, got {type(document).__name__}.")
    _check_count(len(document), max_points)
    times = np.empty(len(document))
    values = np.empty((len(document), n_features))
    for i, row in enumerate(document):
        where = f"row {i + 1}"
        if not isinstance(row, dict):
            raise BadInput(f"{where} is {_short(row)}, not an object; send {{\"time\": T, \"value\": x}}.")
        if "time" not in row:
            raise BadInput(f"{where} has no \"time\" (keys: {sorted(row)[:10]}); every point needs its time.")
        times[i] = _time(row["time"], where)
        if "values" in row:
            given = row["values"]
            if not isinstance(given, list) or len(given) != n_features:
                raise BadInput(f"{where}: \"values\" must be a list of {n_features} number(s) (the model's features), got {_short(given)}.")
            values[i] = [_number(v, where) for v in given]
        elif "value" in row:
            if n_features != 1:
                raise BadInput(f"{where}: \"value\" is one number but the model has {n_features} features; send \"values\": [{n_features} numbers].")
            values[i, 0] = _number(row["value"], where)
        elif names is not None and all(name in row for name in names):
            values[i] = [_number(row[name], where) for name in names]
        else:
            raise BadInput(f"{where} has no \"value\" or \"values\" (keys: {sorted(row)[:10]}); send {{\"time\": T, \"value\": x}}.")
    _check_order(times)
    return times, values, provisional


def parse_csv(body: bytes, n_features: int, names: list[str] | None, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(times, values) of a CSV body: a header, then one row per point."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput("the CSV body is not UTF-8 text.", 400, "bad_csv") from None
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows:
        raise BadInput("the CSV body is empty; send a header (time,value) and one row per point.", 400, "bad_csv")
    header = [cell.strip() for cell in rows[0]]
    if "time" not in header:
        raise BadInput(f"the CSV header {header[:10]} has no 'time' column; send a header like time,value.", 400, "bad_csv")
    columns = [c for c in header if c != "time"]
    if names is not None and all(name in header for name in names):
        columns = list(names)
    if len(columns) != n_features:
        raise BadInput(f"the CSV header has value columns {columns[:10]} but the model has {n_features} feature(s)"
                       f"{'' if names is None else ' ' + str(names)}; send time and {n_features} value column(s).", 400, "bad_csv")
    at_time, at_values = header.index("time"), [header.index(c) for c in columns]
    data = rows[1:]
    _check_count(len(data), max_points)
    times = np.empty(len(data))
    values = np.empty((len(data), n_features))
    for i, row in enumerate(data):
        where = f"CSV row {i + 2}"
        if len(row) != len(header):
            raise BadInput(f"{where} has {len(row)} field(s), the header {len(header)}.")
        times[i] = _time(row[at_time], where)
        values[i] = [_number(row[j], where) for j in at_values]
    _check_order(times)
    return times, values


def _check_count(count: int, max_points: int) -> None:
    if count == 0:
        raise BadInput("no points in the body; send at least one row.")
    if count > max_points:
        raise BadInput(f"{count} points in one request, more than the limit of {max_points} (--max-points); send smaller blocks.", 413, "too_large")


def _check_order(times: np.ndarray) -> None:
    steps = np.flatnonzero(np.diff(times) <= 0)
    if len(steps):
        i = int(steps[0]) + 1
        raise BadInput(f"row {i + 1} has time {times[i]!r}, not after row {i}'s ({times[i - 1]!r}); send the points in time order, one per time.")


__all__ = ["BadInput", "parse_csv", "parse_json"]
