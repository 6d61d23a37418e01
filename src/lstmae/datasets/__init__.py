"""Bundled demo data: the NYC taxi series from the Numenta Anomaly Benchmark (NAB).

The CSV ships inside the package (see ``README.md`` and ``LICENSE-NAB.txt`` next to
this file for the source, the MIT license and the citation), so the demo and the
docs run offline and from an installed wheel.

* `load_nyc_taxi` reads the series: 10,320 half-hourly passenger counts,
  2014-07-01 00:00 .. 2015-01-31 23:30.
* `NYC_TAXI_EVENTS` holds NAB's five labelled anomaly windows, named after the
  event inside each (marathon, Thanksgiving, Christmas, New Year, blizzard).
* `match_events` / `missed_events` compare detected intervals with such windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import pandas as pd

from lstmae.errors import DataError, DataFileError, ParameterError, describe

__all__ = [
    "KnownEvent",
    "NYC_TAXI_EVENTS",
    "load_nyc_taxi",
    "match_events",
    "missed_events",
]

_NYC_TAXI_FILE = "nyc_taxi.csv"


@dataclass(frozen=True)
class KnownEvent:
    """A labelled time window that a detector is expected to flag.

    Attributes
    ----------
    name : str
        Human-readable name of what happened, e.g. ``"Thanksgiving"``.
    start : pandas.Timestamp
        First instant of the window.
    end : pandas.Timestamp
        Last instant of the window (inclusive).
    """

    name: str
    start: pd.Timestamp
    end: pd.Timestamp


def _event(name: str, start: str, end: str) -> KnownEvent:
    return KnownEvent(name=name, start=pd.Timestamp(start), end=pd.Timestamp(end))


# NAB labels/combined_windows.json, key "realKnownCause/nyc_taxi.csv", at commit
# ea702d75cc2258d9d7dd35ca8e5e2539d71f3140. The windows are NAB's scoring windows
# (10% of the file in total), so they are several days wide around each event.
NYC_TAXI_EVENTS: tuple[KnownEvent, ...] = (
    _event("NYC marathon", "2014-10-30 15:30:00", "2014-11-03 22:30:00"),
    _event("Thanksgiving", "2014-11-25 12:00:00", "2014-11-29 19:00:00"),
    _event("Christmas", "2014-12-23 11:30:00", "2014-12-27 18:30:00"),
    _event("New Year", "2014-12-29 21:30:00", "2015-01-03 04:30:00"),
    _event("January 2015 blizzard", "2015-01-24 20:30:00", "2015-01-29 03:30:00"),
)


def load_nyc_taxi() -> pd.DataFrame:
    """Load the bundled NYC taxi passenger series (NAB ``realKnownCause/nyc_taxi.csv``).

    Returns
    -------
    pandas.DataFrame
        Shape ``(10320, 1)``. A ``DatetimeIndex`` named ``"timestamp"`` (naive,
        New York local time, strictly increasing, 30-minute spacing) and one
        float64 column ``"value"``: taxi passengers in the 30 minutes starting
        at the timestamp.

    Raises
    ------
    DataFileError
        The CSV is missing from the installed package.

    Notes
    -----
    Data from the NYC Taxi and Limousine Commission, aggregated by Numenta for NAB;
    MIT license, Copyright 2014-2024 Numenta Inc. Cite Ahmad, Lavin, Purdy & Agha
    (2017), Neurocomputing, doi:10.1016/j.neucom.2017.04.070.
    """
    resource = resources.files(__name__).joinpath(_NYC_TAXI_FILE)
    try:
        # Open through importlib.resources rather than a path next to __file__, so
        # the loader also works from a wheel or a zip import.
        with resource.open("rb") as handle:
            frame = pd.read_csv(handle, dtype={"value": "float64"})
    except FileNotFoundError:
        raise DataFileError(
            f"bundled dataset file is missing: {_NYC_TAXI_FILE!r} not found in package "
            f"{__name__!r}; reinstall lstmae (the wheel must include lstmae/datasets/*.csv)"
        ) from None
    # An explicit format keeps parsing fast and fails loudly if the file was altered.
    index = pd.DatetimeIndex(
        pd.to_datetime(frame["timestamp"], format="%Y-%m-%d %H:%M:%S"), name="timestamp"
    )
    return pd.DataFrame({"value": frame["value"].to_numpy()}, index=index)


def _as_event_bounds(events: Sequence[KnownEvent]) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """Check ``events`` and return ``(name, start, end)`` triples with Timestamps."""
    if isinstance(events, (str, bytes)) or not isinstance(events, Sequence):
        raise ParameterError(
            f"events must be a sequence of KnownEvent, got {describe(events)}; "
            "pass e.g. lstmae.datasets.NYC_TAXI_EVENTS"
        )
    bounds = []
    for event in events:
        try:
            name, start, end = str(event.name), pd.Timestamp(event.start), pd.Timestamp(event.end)
        except (AttributeError, TypeError, ValueError):
            raise ParameterError(
                f"each event needs .name, .start and .end timestamps, got {describe(event)}; "
                "build events with lstmae.datasets.KnownEvent"
            ) from None
        if pd.isna(start) or pd.isna(end) or start > end:
            raise ParameterError(
                f"event {name!r} has start {start} after end {end} (or a missing bound); "
                "give start <= end"
            )
        bounds.append((name, start, end))
    return bounds


def _interval_bounds(intervals: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Check ``intervals`` and return its ``start_time`` / ``end_time`` as datetimes."""
    if not isinstance(intervals, pd.DataFrame):
        raise DataError(
            f"intervals must be a pandas DataFrame, got {type(intervals).__name__}; "
            "pass the interval table returned by the detector"
        )
    missing = [c for c in ("start_time", "end_time") if c not in intervals.columns]
    if missing:
        raise DataError(
            f"intervals lacks column(s) {missing}, has {list(intervals.columns)}; "
            "give datetime columns 'start_time' and 'end_time' (fit on a DatetimeIndex)"
        )
    try:
        starts = pd.to_datetime(intervals["start_time"])
        ends = pd.to_datetime(intervals["end_time"])
    except (TypeError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:80]  # keep the message on one line
        raise DataError(
            f"intervals 'start_time'/'end_time' are not datetimes ({reason}); "
            "give timestamps, e.g. from a DatetimeIndex"
        ) from None
    bad = starts.isna() | ends.isna() | (starts > ends)
    if bad.any():
        # Report by position: the index may have duplicate or non-integer labels.
        pos = int(bad.to_numpy().nonzero()[0][0])
        raise DataError(
            f"interval at position {pos} has start_time {starts.iloc[pos]} after end_time "
            f"{ends.iloc[pos]} "
            "(or a missing bound); give start_time <= end_time"
        )
    return starts, ends


def _overlaps(
    starts: pd.Series, ends: pd.Series, start: pd.Timestamp, end: pd.Timestamp
) -> pd.Series:
    """Boolean Series: which intervals overlap ``[start, end]`` (all bounds inclusive)."""
    try:
        # Two closed intervals overlap unless one ends before the other starts;
        # equality counts as overlap, so intervals that touch a window match it.
        return (starts <= end) & (ends >= start)
    except TypeError:
        # Mixing tz-aware and naive timestamps raises TypeError in pandas.
        raise DataError(
            f"cannot compare interval times (tz={getattr(starts.dt, 'tz', None)}) with event "
            f"times (tz={start.tz}); make both timezone-naive or both timezone-aware"
        ) from None


def match_events(intervals: pd.DataFrame, events: Sequence[KnownEvent]) -> pd.DataFrame:
    """Label detected intervals with the known events they overlap.

    Parameters
    ----------
    intervals : pandas.DataFrame
        ``(n_intervals, ...)`` table with datetime columns ``start_time`` and
        ``end_time`` (both inclusive); other columns are kept unchanged. May be empty.
    events : sequence of KnownEvent
        Labelled windows, e.g. `NYC_TAXI_EVENTS`. Anything with ``.name``,
        ``.start`` and ``.end`` works.

    Returns
    -------
    pandas.DataFrame
        A copy of ``intervals`` with a string column ``event`` added (replaced if it
        exists): the names of the events whose window overlaps the interval, joined
        with ``"; "`` in the order of ``events``, or ``""`` when none does. An interval
        that only touches a window (shares an end point) counts as overlapping.

    Raises
    ------
    DataError
        ``intervals`` is not a DataFrame, lacks the columns, has non-datetime or
        reversed bounds, or mixes time zones with ``events``.
    ParameterError
        ``events`` is not a sequence of event-like objects with ``start <= end``.
    """
    starts, ends = _interval_bounds(intervals)
    bounds = _as_event_bounds(events)
    names: list[list[str]] = [[] for _ in range(len(intervals))]
    for name, start, end in bounds:
        # Loop over the (few) events and vectorise over the (possibly many) intervals.
        for position in (_overlaps(starts, ends, start, end).to_numpy()).nonzero()[0]:
            names[position].append(name)
    result = intervals.copy()
    result["event"] = pd.Series(["; ".join(n) for n in names], index=intervals.index, dtype="str")
    return result


def missed_events(intervals: pd.DataFrame, events: Sequence[KnownEvent]) -> list[KnownEvent]:
    """Return the known events that no detected interval overlaps.

    Parameters
    ----------
    intervals : pandas.DataFrame
        ``(n_intervals, ...)`` table with datetime columns ``start_time`` and
        ``end_time`` (both inclusive). May be empty (then every event is missed).
    events : sequence of KnownEvent
        Labelled windows, e.g. `NYC_TAXI_EVENTS`.

    Returns
    -------
    list of KnownEvent
        The events of ``events`` (same objects, same order) that overlap no interval,
        with the same inclusive rule as `match_events`.

    Raises
    ------
    DataError, ParameterError
        As in `match_events`.
    """
    starts, ends = _interval_bounds(intervals)
    bounds = _as_event_bounds(events)
    return [
        event
        for event, (_, start, end) in zip(events, bounds, strict=True)
        if not _overlaps(starts, ends, start, end).any()
    ]
