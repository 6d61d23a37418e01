"""The input policy: gaps, infinities, empty columns, repeated and shuffled times."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lstmae.data.cleaning import fill_missing, interpolate_column, merge_rows
from lstmae.data.readers import read_data
from lstmae.errors import DataError, DataFileError, LstmaeWarning, ParameterError
from paths import BENCH

CRASHES = BENCH / "fuzz-crashes"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ------------------------------------------------------------- slow references
def naive_interpolate(x: list[float], y: list[float]) -> list[float]:
    """Each gap: the straight line between its known neighbours; ends: the nearest known value."""
    known = [i for i, v in enumerate(y) if not math.isnan(v)]
    out = []
    for i, v in enumerate(y):
        if not math.isnan(v):
            out.append(v)
            continue
        before = [k for k in known if k < i]
        after = [k for k in known if k > i]
        if not before:
            out.append(y[after[0]])
        elif not after:
            out.append(y[before[-1]])
        else:
            a, b = before[-1], after[0]
            w = (x[i] - x[a]) / (x[b] - x[a])
            out.append((1 - w) * y[a] + w * y[b])
    return out


def naive_merge(keys: list, rows: list[list[float]], policy: str) -> tuple[list, list[list[float]]]:
    """Group rows by key in order of first appearance; first row, or mean of the present values."""
    order, groups = [], {}
    for key, row in zip(keys, rows):
        if key not in groups:
            order.append(key)
            groups[key] = []
        groups[key].append(row)
    merged = []
    for key in order:
        members = groups[key]
        if policy == "first":
            merged.append(list(members[0]))
            continue
        row = []
        for c in range(len(members[0])):
            present = [m[c] for m in members if not math.isnan(m[c])]
            big = max((abs(v) for v in present), default=0.0) or 1.0  # divided first: no overflow near 1e308
            row.append(math.fsum(v / big for v in present) / len(present) * big if present else math.nan)
        merged.append(row)
    return order, merged


# ------------------------------------------------------------- properties
finite = st.floats(-1e300, 1e300, allow_nan=False)


@given(st.lists(st.one_of(finite, st.just(math.nan)), min_size=1, max_size=30).filter(lambda v: any(not math.isnan(x) for x in v)), st.data())
@settings(max_examples=150, deadline=None)
def test_interpolate_column_matches_naive(values, data):
    steps = data.draw(st.lists(st.floats(0.01, 100), min_size=len(values), max_size=len(values)))
    x = np.cumsum(steps)
    got = interpolate_column(x, np.array(values))
    expected = naive_interpolate(list(x), values)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    assert np.isfinite(got).all()


@given(arrays(np.float64, st.integers(2, 40), elements=st.sampled_from([1e308, -1e308, 0.0, math.nan, 5e307, -1.7e308])))
@settings(max_examples=100, deadline=None)
def test_interpolation_of_extreme_values_stays_finite(values):
    if np.isnan(values).all():
        values[0] = 1e308
    got = interpolate_column(np.arange(len(values), dtype=float), values)
    assert np.isfinite(got).all()
    assert np.all(np.abs(got) <= np.nanmax(np.abs(values)))


@given(st.lists(st.integers(0, 5), min_size=1, max_size=25), st.integers(1, 3), st.sampled_from(["first", "mean"]), st.data())
@settings(max_examples=150, deadline=None)
def test_merge_rows_matches_naive(keys, n_features, policy, data):
    cell = st.one_of(st.floats(-1e308, 1e308, allow_nan=False), st.just(math.nan))
    rows = [data.draw(st.lists(cell, min_size=n_features, max_size=n_features)) for _ in keys]
    codes, uniques = pd.factorize(np.array(keys))
    first = np.unique(codes, return_index=True)[1]
    got = merge_rows(np.array(rows, dtype=np.float64), codes, first, policy)
    order, expected = naive_merge(keys, rows, policy)
    assert list(uniques) == order
    expected = np.array(expected, dtype=np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(expected)) and not np.isinf(got).any()
    # Up to rounding relative to the largest value of the column (a sum of 1e308 and -1e308 cancels).
    column_size = np.nanmax(np.abs(np.array(rows, dtype=np.float64)), axis=0, initial=0.0)
    assert np.all(np.abs(np.nan_to_num(got - expected)) <= 1e-12 * column_size + 1e-300)


# ------------------------------------------------------------- reading files
def test_gaps_are_interpolated_in_time_with_a_warning(tmp_path):
    path = write(tmp_path / "d.csv", "timestamp,v,w\n2024-01-01,1,10\n2024-01-02,,\n2024-01-05,5,40\n")
    with pytest.warns(LstmaeWarning, match=r"filled 2 missing value\(s\) by linear interpolation in time \(1 in 'v', 1 in 'w'\)"):
        frame = read_data(path).data
    # One day of four: a quarter of the way from the first to the last value.
    np.testing.assert_allclose(frame.iloc[1].to_numpy(), [2.0, 17.5])


def test_leading_and_trailing_gaps_take_the_nearest_value(tmp_path):
    path = write(tmp_path / "d.csv", "v\nnan\n2\n3\nNaN\n")
    with pytest.warns(LstmaeWarning, match="filled 2"):
        assert read_data(path).data["v"].tolist() == [2.0, 2.0, 3.0, 3.0]


def test_missing_error_names_column_and_row(tmp_path):
    path = write(tmp_path / "d.csv", "a,b\n1,2\n3,\n5,\n")
    with pytest.raises(DataFileError, match=r"column 'b' in .*d\.csv has a missing value at data row 2 \(2 such cells in all\)"):
        read_data(path, missing="error")


@pytest.mark.parametrize("missing", ["interpolate", "error", "keep"])
def test_all_missing_column_is_an_error(tmp_path, missing):
    path = write(tmp_path / "d.csv", "a,b\n1,\n2,\n")
    with pytest.raises(DataFileError, match=r"column 'b' .* has no values: all 2 rows are missing"):
        read_data(path, missing=missing)


@pytest.mark.parametrize(("cell", "shown"), [("inf", "inf"), ("-Infinity", "-inf"), ("1e999", "inf")])
def test_infinity_is_an_error_naming_column_and_row(tmp_path, cell, shown):
    path = write(tmp_path / "d.csv", f"a,b\n1,2\n3,4\n5,{cell}\n")
    with pytest.raises(DataFileError, match=rf"column 'b' .* infinite value \({shown}\) at data row 3"):
        read_data(path)


def test_infinity_in_npy_and_txt(tmp_path):
    np.save(tmp_path / "d.npy", np.array([[1.0, 2.0], [np.inf, 3.0]]))
    with pytest.raises(DataFileError, match=r"column '0' .* infinite value \(inf\) at row 2"):
        read_data(tmp_path / "d.npy")
    with pytest.raises(DataFileError, match=r"infinite value \(-inf\) at value 3"):
        read_data(write(tmp_path / "d.txt", "1 2 -inf"))


def test_nan_in_npy_is_interpolated(tmp_path):
    np.save(tmp_path / "d.npy", np.array([1.0, np.nan, 3.0]))
    with pytest.warns(LstmaeWarning, match="filled 1"):
        assert read_data(tmp_path / "d.npy").data["value"].tolist() == [1.0, 2.0, 3.0]


DUPLICATED = "timestamp,v\n2024-01-01,1\n2024-01-02,2\n2024-01-01,3\n2024-01-03,\n"


def test_duplicates_error_names_the_first_and_the_options(tmp_path):
    with pytest.raises(DataFileError, match=r"duplicate time 2024-01-01.*data rows 1 and 3.*--duplicates mean"):
        read_data(write(tmp_path / "d.csv", DUPLICATED))


@pytest.mark.parametrize(("policy", "expected"), [("mean", [2.0, 2.0, 2.0]), ("first", [1.0, 2.0, 2.0])])
def test_duplicates_mean_or_first(tmp_path, policy, expected):
    with pytest.warns(LstmaeWarning, match=rf"1 row\(s\) repeat an earlier time.*--duplicates {policy}"):
        loaded = read_data(write(tmp_path / "d.csv", DUPLICATED), duplicates=policy)
    assert loaded.data["v"].tolist() == expected
    assert loaded.data.index.is_unique and loaded.data.index.is_monotonic_increasing


def test_first_duplicate_that_is_empty_leaves_no_value(tmp_path):
    path = write(tmp_path / "d.csv", "timestamp,v\n2024-01-01,\n2024-01-01,5\n")
    with pytest.raises(DataFileError, match=r"column 'v' .* no values left.*--duplicates mean"):
        read_data(path, duplicates="first")


def test_panel_duplicates_and_gaps(tmp_path):
    path = write(tmp_path / "d.csv", "id,time,v\na,1,1\na,2,\na,3,3\nb,2,5\nb,1,4\nb,1,6\nb,3,7\n")
    with pytest.raises(DataFileError, match=r"duplicate time 1 for id 'b'.*data rows 5 and 6"):
        read_data(path, id_column="id")
    with pytest.warns(LstmaeWarning):
        loaded = read_data(path, id_column="id", duplicates="mean")
    np.testing.assert_array_equal(loaded.data[:, :, 0], [[1.0, 2.0, 3.0], [5.0, 5.0, 7.0]])


@pytest.mark.parametrize(("argument", "value"), [("missing", "drop"), ("duplicates", "last")])
def test_unknown_policy_fails_before_reading(tmp_path, argument, value):
    with pytest.raises(ParameterError, match=rf"{argument} must be one of .*got '{value}'"):
        read_data(tmp_path / "does-not-exist.csv", **{argument: value})


def test_fill_missing_for_data_in_memory():
    index = pd.date_range("2024-01-01", periods=4, freq="D")
    frame = pd.DataFrame({"v": [1.0, np.nan, np.nan, 4.0]}, index=index)
    with pytest.warns(LstmaeWarning):
        assert fill_missing(frame)["v"].tolist() == [1.0, 2.0, 3.0, 4.0]
    with pytest.warns(LstmaeWarning):
        np.testing.assert_array_equal(fill_missing(np.array([np.nan, 1.0, np.nan, 3.0])), [1.0, 1.0, 2.0, 3.0])
    with pytest.warns(LstmaeWarning):
        panel = fill_missing(np.array([[[1.0], [np.nan], [3.0]]]))
    np.testing.assert_array_equal(panel[0, :, 0], [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match=r"sample 0 of the data has no value in column '0'"):
        fill_missing(np.array([[[np.nan], [np.nan]], [[1.0], [2.0]]]))


FOUND = sorted(p for p in CRASHES.glob("*") if p.suffix != ".crash") if CRASHES.exists() else []


@pytest.mark.parametrize("path", FOUND, ids=lambda p: p.name)
def test_inputs_that_once_crashed_the_fuzzer_give_a_clean_answer(path):
    """Every input saved by bench/fuzz_readers.py, read with the options it crashed with."""
    note = path.with_name(path.name.split(".")[0] + ".crash").read_text()
    options = ast.literal_eval(note.rsplit("options: ", 1)[1].strip())
    try:
        read_data(path, **options)
    except DataError:
        pass
