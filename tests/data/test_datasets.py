"""Bundled NYC taxi dataset, its NAB event windows, and interval/event matching."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmae.datasets import NYC_TAXI_EVENTS, KnownEvent, load_nyc_taxi, match_events, missed_events
from lstmae.errors import DataError, ParameterError

NAB_KEY = "realKnownCause/nyc_taxi.csv"
NYC_SHA256 = "d8fa6f7f0734bf5c8be12c52a94e20a82664c397d9dec4449156bd453d32856d"


def test_load_nyc_taxi_shape_index_and_dtype() -> None:
    df = load_nyc_taxi()
    assert df.shape == (10320, 1)
    assert list(df.columns) == ["value"]
    assert df["value"].dtype == np.float64
    assert isinstance(df.index, pd.DatetimeIndex)
    assert df.index.name == "timestamp"
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert (np.diff(df.index.to_numpy()) == np.timedelta64(30, "m")).all()
    assert df.index[0] == pd.Timestamp("2014-07-01 00:00:00")
    assert df.index[-1] == pd.Timestamp("2015-01-31 23:30:00")
    assert df["value"].iloc[0] == 10844.0  # first row of the NAB file
    assert np.isfinite(df["value"]).all()


def test_bundled_files_ship_with_the_package() -> None:
    root = resources.files("lstmae.datasets")
    data = root.joinpath("nyc_taxi.csv").read_bytes()
    # Byte-for-byte copy of the NAB file (hash from the shared MANIFEST.csv).
    assert hashlib.sha256(data).hexdigest() == NYC_SHA256
    license_text = root.joinpath("LICENSE-NAB.txt").read_text(encoding="utf-8")
    assert "Copyright 2014-2024 Numenta Inc." in license_text
    assert "Permission is hereby granted" in license_text
    readme = root.joinpath("README.md").read_text(encoding="utf-8")
    for needle in (
        "ea702d75cc2258d9d7dd35ca8e5e2539d71f3140",
        "10.1016/j.neucom.2017.04.070",
        "MIT",
    ):
        assert needle in readme


def test_events_are_in_time_order_and_contain_their_dates() -> None:
    names = [e.name for e in NYC_TAXI_EVENTS]
    assert names == [
        "NYC marathon",
        "Thanksgiving",
        "Christmas",
        "New Year",
        "January 2015 blizzard",
    ]
    starts = [e.start for e in NYC_TAXI_EVENTS]
    assert starts == sorted(starts)
    days = ["2014-11-02", "2014-11-27", "2014-12-25", "2015-01-01", "2015-01-26"]
    for event, day in zip(NYC_TAXI_EVENTS, days, strict=True):
        assert isinstance(event.start, pd.Timestamp) and isinstance(event.end, pd.Timestamp)
        assert event.start <= pd.Timestamp(day) <= event.end


def test_events_match_nab_combined_windows(dev_data: Path) -> None:
    windows = json.loads((dev_data / "nab/labels/combined_windows.json").read_text())[NAB_KEY]
    got = [(e.start, e.end) for e in NYC_TAXI_EVENTS]
    assert got == [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in windows]


def test_bundled_csv_equals_shared_copy(dev_data: Path) -> None:
    bundled = resources.files("lstmae.datasets").joinpath("nyc_taxi.csv").read_bytes()
    assert bundled == (dev_data / "nab/data" / NAB_KEY).read_bytes()


def _events() -> list[KnownEvent]:
    return [
        KnownEvent("A", pd.Timestamp("2020-01-02 00:00"), pd.Timestamp("2020-01-03 00:00")),
        KnownEvent("B", pd.Timestamp("2020-01-05 00:00"), pd.Timestamp("2020-01-06 00:00")),
    ]


def test_match_events_overlap_touching_and_none() -> None:
    intervals = pd.DataFrame(
        {
            "start": [0, 1, 2, 3, 4],
            "start_time": pd.to_datetime(
                [
                    "2020-01-02 12:00",
                    "2020-01-03 00:00",
                    "2020-01-01 00:00",
                    "2020-01-03 00:30",
                    "2020-01-01 00:00",
                ]
            ),
            "end_time": pd.to_datetime(
                [
                    "2020-01-02 13:00",
                    "2020-01-04 00:00",
                    "2020-01-02 00:00",
                    "2020-01-04 23:59",
                    "2020-01-10 00:00",
                ]
            ),
        },
        index=[10, 11, 12, 13, 14],
    )
    out = match_events(intervals, _events())
    # inside A; touches A's end; touches A's start; between A and B; covers both
    assert out["event"].tolist() == ["A", "A", "A", "", "A; B"]
    assert out.index.tolist() == [10, 11, 12, 13, 14]
    assert out["start"].tolist() == [0, 1, 2, 3, 4]  # other columns kept
    assert "event" not in intervals.columns  # input not modified
    assert [e.name for e in missed_events(intervals.iloc[:4], _events())] == ["B"]
    assert missed_events(intervals, _events()) == []


def test_match_events_empty_intervals() -> None:
    empty = pd.DataFrame({"start_time": pd.to_datetime([]), "end_time": pd.to_datetime([])})
    out = match_events(empty, NYC_TAXI_EVENTS)
    assert len(out) == 0 and "event" in out.columns
    assert missed_events(empty, NYC_TAXI_EVENTS) == list(NYC_TAXI_EVENTS)


def test_match_events_on_nyc_windows() -> None:
    intervals = pd.DataFrame(
        {
            "start_time": pd.to_datetime(
                ["2014-11-27 06:00", "2014-12-27 18:30", "2014-08-01 00:00"]
            ),
            "end_time": pd.to_datetime(
                ["2014-11-27 20:00", "2014-12-29 21:30", "2014-08-02 00:00"]
            ),
        }
    )
    out = match_events(intervals, NYC_TAXI_EVENTS)
    # The second interval touches the end of Christmas and the start of New Year.
    assert out["event"].tolist() == ["Thanksgiving", "Christmas; New Year", ""]
    assert [e.name for e in missed_events(intervals, NYC_TAXI_EVENTS)] == [
        "NYC marathon",
        "January 2015 blizzard",
    ]


def test_match_events_errors() -> None:
    with pytest.raises(DataError, match="start_time"):
        match_events(pd.DataFrame({"start": [0], "end": [1]}), _events())
    reversed_ = pd.DataFrame(
        {"start_time": pd.to_datetime(["2020-01-02"]), "end_time": pd.to_datetime(["2020-01-01"])}
    )
    with pytest.raises(DataError, match="after end_time"):
        match_events(reversed_, _events())
    ok = pd.DataFrame(
        {"start_time": pd.to_datetime(["2020-01-01"]), "end_time": pd.to_datetime(["2020-01-02"])}
    )
    with pytest.raises(ParameterError, match="name"):
        match_events(ok, [object()])
    aware = ok.assign(
        start_time=ok["start_time"].dt.tz_localize("UTC"),
        end_time=ok["end_time"].dt.tz_localize("UTC"),
    )
    with pytest.raises(DataError, match="timezone"):
        match_events(aware, _events())
