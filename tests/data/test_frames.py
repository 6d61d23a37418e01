"""Tests for lstmae.data.frames: every input layout, restore, every error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstmae.data.frames import Prepared, prepare
from lstmae.errors import DataError, LstmaeError

# ------------------------------------------------------------------ accepted inputs


def test_one_d_array():
    p = prepare(np.array([1.0, 2.0, 3.0]))
    assert p.kind == "series" and not p.is_panel
    assert p.input_ndim == 1 and p.n_features == 1
    assert p.values.dtype == np.float64 and p.values.shape == (3, 1)
    np.testing.assert_array_equal(p.values[:, 0], [1.0, 2.0, 3.0])
    assert p.index is None and p.columns is None
    restored = p.restore(p.values * 2)
    assert isinstance(restored, np.ndarray) and restored.shape == (3,)
    np.testing.assert_array_equal(restored, [2.0, 4.0, 6.0])


def test_two_d_array_and_int_dtype():
    x = np.arange(12, dtype=np.int32).reshape(4, 3)
    p = prepare(x)
    assert p.kind == "series" and p.input_ndim == 2 and p.n_features == 3
    assert p.values.dtype == np.float64
    np.testing.assert_array_equal(p.values, x)
    restored = p.restore(p.values)
    assert isinstance(restored, np.ndarray) and restored.shape == (4, 3)


def test_three_d_array_is_a_panel():
    x = np.arange(24.0).reshape(2, 4, 3)
    p = prepare(x)
    assert p.kind == "panel" and p.is_panel and p.input_ndim == 3
    assert p.values.shape == (2, 4, 3) and p.n_features == 3
    np.testing.assert_array_equal(p.values, x)
    out = np.zeros((2, 4, 3))
    assert p.restore(out) is out


@pytest.mark.parametrize(
    ("data", "shape", "ndim"),
    [
        ([1, 2, 3, 4], (4, 1), 1),
        ([[1, 2], [3, 4], [5, 6]], (3, 2), 2),
        ([[[1], [2]], [[3], [4]]], (2, 2, 1), 3),
        ([True, False, True], (3, 1), 1),
    ],
)
def test_lists(data, shape, ndim):
    p = prepare(data)
    assert p.values.shape == shape and p.input_ndim == ndim
    np.testing.assert_array_equal(p.values.ravel(), np.asarray(data, dtype=float).ravel())


def test_series_keeps_index_and_name():
    index = pd.date_range("2024-01-01", periods=4, freq="h", name="ts")
    s = pd.Series([1.0, 2.0, 3.0, 4.0], index=index, name="load")
    p = prepare(s)
    assert p.kind == "series" and p.input_ndim == 1
    assert p.values.shape == (4, 1)
    assert p.columns == ["load"]
    pd.testing.assert_index_equal(p.index, index)
    restored = p.restore(p.values + 1)
    assert isinstance(restored, pd.Series)
    assert restored.name == "load"
    pd.testing.assert_index_equal(restored.index, index)
    np.testing.assert_array_equal(restored.to_numpy(), [2.0, 3.0, 4.0, 5.0])


def test_unnamed_series_stays_unnamed():
    p = prepare(pd.Series([1.0, 2.0]))
    assert p.columns == [None]
    restored = p.restore(p.values)
    assert isinstance(restored, pd.Series) and restored.name is None


def test_dataframe_keeps_index_and_columns():
    index = pd.date_range("2024-01-01", periods=3, freq="D")
    df = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5], "flag": [True, False, True]}, index=index)
    p = prepare(df)
    assert p.kind == "series" and p.input_ndim == 2 and p.n_features == 3
    assert p.columns == ["a", "b", "flag"]
    np.testing.assert_array_equal(p.values, [[1, 0.5, 1], [2, 1.5, 0], [3, 2.5, 1]])
    restored = p.restore(p.values * 10)
    assert isinstance(restored, pd.DataFrame)
    assert list(restored.columns) == ["a", "b", "flag"]
    pd.testing.assert_index_equal(restored.index, index)
    np.testing.assert_array_equal(restored.to_numpy(), p.values * 10)


def test_dataframe_non_string_column_labels_become_strings():
    df = pd.DataFrame(np.ones((2, 2)), columns=[0, 1])
    assert prepare(df).columns == ["0", "1"]


def test_nullable_columns_without_missing_values():
    df = pd.DataFrame({"i": pd.array([1, 2, 3], dtype="Int64"), "f": pd.array([0.5, 1.0, 2.0], dtype="Float64")})
    np.testing.assert_array_equal(prepare(df).values, [[1, 0.5], [2, 1.0], [3, 2.0]])


def test_prepared_is_frozen():
    p = prepare([1.0, 2.0])
    assert isinstance(p, Prepared)
    with pytest.raises(AttributeError):
        p.kind = "panel"  # type: ignore[misc]


# ------------------------------------------------------------------ refused inputs


def refuses(data, match, name="X"):
    with pytest.raises(DataError, match=match) as info:
        prepare(data, name=name)
    assert isinstance(info.value, LstmaeError) and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_strings_refused():
    refuses(["a", "b"], r"X must hold numbers only; could not convert \['a', 'b'\] to float")
    refuses(np.array(["x", "y"]), r"X must hold numbers only; .*could not convert string to float")
    refuses([[1, 2], [3]], r"X must hold numbers only; could not convert \[\[1, 2\], \[3\]\]")
    refuses({"a": 1}, r"X must hold numbers only")


def test_long_input_is_described_briefly():
    message = refuses(["word"] * 1000, r"X must hold numbers only; could not convert \['word', .*\.\.\. to float")
    assert len(message) < 400


def test_complex_values_refused():
    refuses([1 + 2j, 3], r"X must hold numbers only; could not convert \[\(1\+2j\), 3\] to float")
    refuses(np.array([1 + 2j, 3]), r"X must hold real numbers; got complex values array\(\[1\.\+2\.j")
    refuses(pd.DataFrame({"z": [1 + 2j, 3]}), r"X has non-numeric column\(s\) \['z'\]")


def test_name_is_used_in_messages():
    refuses([np.nan, 1.0], r"^X_test has 1 non-finite", name="X_test")


def test_nan_in_dataframe_names_column_and_row():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, np.nan]})
    refuses(df, r"X has 1 non-finite value\(s\); the first is a missing value \(NaN\) at column 'b', row 2\. Fill or drop")


def test_nullable_missing_value_names_column_and_row():
    df = pd.DataFrame({"ok": [1.0, 2.0, 3.0], "n": pd.array([1, None, 3], dtype="Int64")})
    refuses(df, r"missing value \(NaN\) at column 'n', row 1\.")


def test_first_of_several_non_finite_values_is_reported():
    df = pd.DataFrame({"a": [1.0, np.inf, np.nan], "b": [np.nan, 2.0, 3.0]})
    # row-major: (0, 'b') comes before (1, 'a')
    refuses(df, r"X has 3 non-finite value\(s\); the first is a missing value \(NaN\) at column 'b', row 0\.")


def test_nan_in_series_names_the_series():
    refuses(pd.Series([1.0, np.nan], name="load"), r"missing value \(NaN\) at column 'load', row 1\.")


def test_nan_and_inf_in_arrays_name_the_position():
    refuses(np.array([[1.0, 2.0], [3.0, np.nan]]), r"the first is a missing value \(NaN\) at position \(1, 1\)\.")
    refuses([1.0, -np.inf], r"X has 1 non-finite value\(s\); the first is an infinite value \(-inf\) at position \(1,\)\.")
    panel = np.zeros((2, 3, 2))
    panel[1, 2, 0] = np.inf
    refuses(panel, r"an infinite value \(inf\) at position \(1, 2, 0\)\.")


def test_inf_in_dataframe():
    refuses(pd.DataFrame({"a": [1.0, np.inf]}), r"an infinite value \(inf\) at column 'a', row 1\.")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([], r"X is empty \(shape \(0,\)\); pass at least one full window"),
        (np.zeros((3, 0)), r"X is empty \(shape \(3, 0\)\)"),
        (np.zeros((0, 4, 2)), r"X is empty \(shape \(0, 4, 2\)\)"),
        (pd.DataFrame(), r"X is empty \(shape \(0, 0\)\)"),
        (pd.DataFrame({"a": []}, dtype=float), r"X is empty \(shape \(0, 1\)\)"),
        (pd.Series([], dtype=float), r"X is empty \(shape \(0, 1\)\)"),
    ],
)
def test_empty_refused(data, match):
    refuses(data, match)


@pytest.mark.parametrize(
    ("data", "shape"),
    [(np.zeros((2, 2, 2, 2)), r"\(2, 2, 2, 2\)"), (3.5, r"\(\)"), (np.float64(1.0), r"\(\)")],
)
def test_wrong_number_of_axes_refused(data, shape):
    refuses(data, r"X must have 1, 2 or 3 axes .*; got shape " + shape + r"\.")


def test_non_numeric_dataframe_columns_refused():
    df = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=2),
            "value": [1.0, 2.0],
            "label": ["x", "y"],
        }
    )
    refuses(df, r"X has non-numeric column\(s\) \['timestamp', 'label'\]; set a time column as the index")
    refuses(pd.Series(["a", "b"], name="s"), r"X has non-numeric column\(s\) \['s'\]")
    refuses(pd.DataFrame({"o": pd.Series([1, 2], dtype=object)}), r"non-numeric column\(s\) \['o'\]")
