"""Tests for lstmae.data.readers: every format, every error, split_train."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lstmae.data import readers
from lstmae.data.readers import LoadedData, read_data, split_train
from lstmae.errors import DataError, DataFileError, LstmaeError, LstmaeWarning, ParameterError


@contextlib.contextmanager
def fails(error: type[Exception], match: str) -> Iterator[None]:
    """pytest.raises that also checks the message is one line (the CLI prints it as is)."""
    with pytest.raises(error, match=match) as info:
        yield
    assert "\n" not in str(info.value)
    assert isinstance(info.value, LstmaeError)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


EXPECTED = pd.DataFrame(
    {"x": [1.5, 3.0, 5.0], "y": [2.0, 4.0, 6.0]},
    index=pd.DatetimeIndex(pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]), name="timestamp"),
)


def assert_expected(loaded: LoadedData) -> None:
    assert loaded.kind == "series"
    assert loaded.ids is None and loaded.time is None
    assert list(loaded.data.columns) == ["x", "y"]
    assert (loaded.data.dtypes == np.float64).all()
    np.testing.assert_array_equal(loaded.data.to_numpy(), EXPECTED.to_numpy())
    assert isinstance(loaded.data.index, pd.DatetimeIndex)
    assert loaded.data.index.name == "timestamp"
    assert list(loaded.data.index) == list(EXPECTED.index)
    assert loaded.n_rows == 3


# --------------------------------------------------------------------------- #
# CSV family
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("name", "sep"),
    [("d.csv", ","), ("d.csv", ";"), ("d.csv", "\t"), ("d.tsv", "\t"), ("d.csv", "|"), ("D.CSV", ",")],
)
def test_csv_delimiters(tmp_path: Path, name: str, sep: str) -> None:
    rows = ["timestamp,x,y", "2024-01-01,1.5,2", "2024-01-02,3,4", "2024-01-03,5,6"]
    path = write(tmp_path / name, "\n".join(row.replace(",", sep) for row in rows) + "\n")
    loaded = read_data(path)
    assert_expected(loaded)
    assert loaded.source == str(path)


def test_csv_with_bom_and_crlf(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.csv", "\ufefftimestamp;x;y\r\n2024-01-01;1.5;2\r\n2024-01-02;3;4\r\n2024-01-03;5;6\r\n")
    loaded = read_data(path)
    assert_expected(loaded)  # the BOM must not end up in the time column's name


def test_csv_gz(tmp_path: Path) -> None:
    path = tmp_path / "d.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("timestamp,x,y\n2024-01-01,1.5,2\n2024-01-02,3,4\n2024-01-03,5,6\n")
    assert_expected(read_data(path))


def test_quoted_commas_do_not_confuse_the_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path / "q.csv", 'note;x\n"a, b, c";1\n"d, e";2\n')
    loaded = read_data(path)
    assert list(loaded.data.columns) == ["x"]
    assert loaded.data["x"].tolist() == [1.0, 2.0]


def test_no_time_column_gives_range_index_and_skips_text(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "label,a,b\nnormal,1,2\nanomaly,3,4\n")
    loaded = read_data(path)
    assert isinstance(loaded.data.index, pd.RangeIndex)
    assert list(loaded.data.columns) == ["a", "b"]
    np.testing.assert_array_equal(loaded.data.to_numpy(), [[1.0, 2.0], [3.0, 4.0]])


def test_integer_columns_become_float64_and_spaces_are_ignored(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a, b\n1, 2\n3, 4\n")
    loaded = read_data(path)
    assert list(loaded.data.columns) == ["a", "b"]
    assert (loaded.data.dtypes == np.float64).all()


def test_empty_cells_become_nan_when_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a,b\n1,\n,4\n5,6\n")
    values = read_data(path, missing="keep").data.to_numpy()
    assert np.isnan(values[0, 1]) and np.isnan(values[1, 0])
    assert values[2].tolist() == [5.0, 6.0]


def test_columns_selects_and_orders(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a,b,c\n1,2,3\n4,5,6\n")
    loaded = read_data(path, columns=["c", "a"])
    assert list(loaded.data.columns) == ["c", "a"]
    np.testing.assert_array_equal(loaded.data.to_numpy(), [[3.0, 1.0], [6.0, 4.0]])


def test_time_column_autodetect_is_case_insensitive(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "v,DS\n1,2024-01-01\n2,2024-01-02\n")
    loaded = read_data(path)
    assert loaded.data.index.name == "DS"
    assert list(loaded.data.columns) == ["v"]


def test_explicit_time_column(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "when,v\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n")
    loaded = read_data(path, time_column="when")
    assert isinstance(loaded.data.index, pd.DatetimeIndex)
    assert loaded.data.index[1] == pd.Timestamp("2024-01-01 01:00")


def test_numeric_time_column_is_kept_as_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "time,v\n10,1\n20,2\n30,3\n")
    loaded = read_data(path)
    assert not isinstance(loaded.data.index, pd.DatetimeIndex)
    assert loaded.data.index.tolist() == [10, 20, 30]
    assert loaded.data.index.name == "time"
    assert list(loaded.data.columns) == ["v"]


def test_unsorted_timestamps_are_sorted_stably(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "timestamp,v\n2024-01-03,3\n2024-01-01,1\n2024-01-02,2\n")
    with pytest.warns(LstmaeWarning, match=r"not in time order \(data row 2, 2024-01-01.*sorted them by 'timestamp'"):
        loaded = read_data(path)
    assert loaded.data.index.is_monotonic_increasing
    assert loaded.data["v"].tolist() == [1.0, 2.0, 3.0]


def test_mixed_date_formats_still_parse(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "date,v\n2024-01-01,1\n2024-01-02T06:00:00,2\nJan 3 2024,3\n")
    index = read_data(path).data.index
    assert list(index) == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02 06:00"), pd.Timestamp("2024-01-03")]


def test_duplicate_timestamps_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "timestamp,v\n2024-01-01,1\n2024-01-02,2\n2024-01-01,3\n")
    with fails(DataFileError, r"duplicate time 2024-01-01.*data rows 1 and 3"):
        read_data(path)


def test_unparseable_time_names_column_and_value(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "timestamp,v\n2024-01-01,1\nnot a date,2\n")
    with fails(DataFileError, r"time column 'timestamp'.*data row 2 holds 'not a date'"):
        read_data(path)


def test_empty_time_cell(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "timestamp,v\n2024-01-01,1\n,2\n")
    with fails(DataFileError, r"time column 'timestamp'.*empty at data row 2"):
        read_data(path)


def test_missing_time_column(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a,b\n1,2\n")
    with fails(DataFileError, r"time_column 'when' not found.*\['a', 'b'\]"):
        read_data(path, time_column="when")


def test_missing_value_column(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a,b\n1,2\n")
    with fails(DataFileError, r"column 'z' not found.*columns found: \['a', 'b'\]"):
        read_data(path, columns=["a", "z"])


def test_mostly_numeric_column_with_text_names_row_and_value(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a,b\n1,2\n3,oops\n5,6\n")
    with fails(DataFileError, r"column 'b'.*mixes numbers and text: data row 2 holds 'oops'"):
        read_data(path)


def test_explicit_text_column_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "label,a\nx,1\ny,2\n")
    with fails(DataFileError, r"column 'label'.*not numeric.*data row 1 holds 'x'"):
        read_data(path, columns=["label", "a"])


def test_no_numeric_column(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "timestamp,label\n2024-01-01,a\n2024-01-02,b\n")
    with fails(DataFileError, r"no numeric column in .*d\.csv; columns found: \['timestamp', 'label'\]; pass --columns"):
        read_data(path)


def test_header_only_csv(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "timestamp,value\n")
    with fails(DataFileError, r"header row but no data rows"):
        read_data(path)


@pytest.mark.parametrize("first", ["1.5,2.5", "1", "2024-01-01,5"])
def test_headerless_csv_is_rejected(tmp_path: Path, first: str) -> None:
    path = write(tmp_path / "d.csv", f"{first}\n{first}\n")
    with fails(DataFileError, rf"no header row.*{re.escape(repr(first))}"):
        read_data(path)


def test_pandas_default_numeric_header_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame([[1.0, 2.0], [3.0, 4.0]]).to_csv(path, index=False)
    assert list(read_data(path).data.columns) == ["0", "1"]


def test_ragged_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a,b\n1,2\n3,4,5\n")
    with fails(DataFileError, r"cannot parse .*d\.csv as comma-separated text"):
        read_data(path)


def test_binary_garbage_csv(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(bytes(range(128, 256)) * 4)
    with fails(DataFileError, r"is not UTF-8 text \(byte 0x80 at offset 0\)"):
        read_data(path)


def test_bad_gzip(tmp_path: Path) -> None:
    path = tmp_path / "d.csv.gz"
    path.write_bytes(b"this is not gzip data")
    with fails(DataFileError, r"cannot decompress .*d\.csv\.gz"):
        read_data(path)


def test_blank_only_csv(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "\n\n  \n")
    with fails(DataFileError, r"is empty"):
        read_data(path)


# --------------------------------------------------------------------------- #
# Path errors
# --------------------------------------------------------------------------- #


def test_no_such_file(tmp_path: Path) -> None:
    with fails(DataFileError, r"no such file: .*missing\.csv"):
        read_data(tmp_path / "missing.csv")


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "data.csv"
    folder.mkdir()
    with fails(DataFileError, r"is a directory"):
        read_data(folder)


def test_unsupported_extension_lists_supported(tmp_path: Path) -> None:
    path = write(tmp_path / "d.xlsx", "a\n1\n")
    with fails(DataFileError, r"unsupported file type: .*d\.xlsx; supported endings are \.csv, \.tsv, .*\.txt\.gz"):
        read_data(path)


@pytest.mark.parametrize("name", ["d.csv", "d.parquet", "d.npy", "d.txt"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with fails(DataFileError, r"is empty \(0 bytes\)"):
        read_data(path)


@pytest.mark.parametrize("name", ["d.csv", "d.parquet", "d.npy", "d.txt.gz"])
def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    path = write(tmp_path / name, "a\n1\n")

    def deny(source: str, compressed: bool) -> None:
        raise PermissionError(13, "Permission denied", source)

    # Simulated: tests may run as root, for whom chmod 000 changes nothing.
    monkeypatch.setattr(readers, "_open_binary", deny)
    with fails(DataFileError, r"cannot read .*: permission denied"):
        read_data(path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file")
def test_permission_denied_for_real(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a\n1\n")
    path.chmod(0)
    try:
        with fails(DataFileError, r"permission denied"):
            read_data(path)
    finally:
        path.chmod(0o600)


def test_error_hierarchy() -> None:
    assert issubclass(DataFileError, DataError)


# --------------------------------------------------------------------------- #
# Parquet
# --------------------------------------------------------------------------- #


def test_parquet_round_trip_with_time_column(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    EXPECTED.reset_index().assign(label=["a", "b", "c"]).to_parquet(path)
    assert_expected(read_data(path))


def test_parquet_round_trip_with_datetime_index(tmp_path: Path) -> None:
    path = tmp_path / "d.PQ"
    EXPECTED.iloc[::-1].to_parquet(path)  # a saved index, out of order
    with pytest.warns(LstmaeWarning, match=r"not in time order"):
        assert_expected(read_data(path))


def test_parquet_nullable_and_mixed_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "b": ["1", "x", "3"]}).to_parquet(path)
    loaded = read_data(path, columns=["a"], missing="keep")
    assert np.isnan(loaded.data["a"].iloc[1]) and loaded.data["a"].iloc[2] == 3.0
    with fails(DataFileError, r"column 'b'.*data row 2 holds 'x'"):
        read_data(path)


def test_garbage_parquet(tmp_path: Path) -> None:
    path = write(tmp_path / "d.parquet", "a,b\n1,2\n")
    with fails(DataFileError, r"cannot read .*d\.parquet as parquet"):
        read_data(path)


def test_parquet_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame({"a": pd.Series([], dtype=float)}).to_parquet(path)
    with fails(DataFileError, r"no data rows"):
        read_data(path)


# --------------------------------------------------------------------------- #
# .npy
# --------------------------------------------------------------------------- #


def test_npy_1d(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.array([1, 2, 3], dtype=np.int32))
    loaded = read_data(path)
    assert loaded.kind == "series"
    assert list(loaded.data.columns) == ["value"]
    assert isinstance(loaded.data.index, pd.RangeIndex)
    assert loaded.data["value"].dtype == np.float64
    assert loaded.data["value"].tolist() == [1.0, 2.0, 3.0]


def test_npy_2d_and_column_selection(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    array = np.arange(12.0).reshape(4, 3)
    np.save(path, array)
    loaded = read_data(path)
    assert list(loaded.data.columns) == ["0", "1", "2"]
    np.testing.assert_array_equal(loaded.data.to_numpy(), array)
    assert list(read_data(path, columns=["2"]).data.columns) == ["2"]
    with fails(DataFileError, r"column '7' not found.*\['0', '1', '2'\]"):
        read_data(path, columns=["7"])


def test_npy_3d_is_a_panel(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    array = np.random.default_rng(0).normal(size=(5, 4, 2)).astype(np.float32)
    np.save(path, array)
    loaded = read_data(path)
    assert loaded.kind == "panel"
    assert loaded.data.dtype == np.float64 and loaded.data.shape == (5, 4, 2)
    np.testing.assert_array_equal(loaded.data, array.astype(np.float64))
    assert loaded.ids == [0, 1, 2, 3, 4] and loaded.time is None
    assert loaded.n_rows == 5


def test_npy_object_array_is_never_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with fails(DataFileError, r"pickled data is never loaded"):
        read_data(path)


@pytest.mark.parametrize("shape", [(2, 2, 2, 2), ()])
def test_npy_wrong_ndim(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.zeros(shape))
    with fails(DataFileError, rf"has {len(shape)} axes"):
        read_data(path)


def test_npy_non_numeric_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.array(["a", "b"]))
    with fails(DataFileError, r"holds <U1 values, not real numbers"):
        read_data(path)
    np.save(path, np.zeros((0, 3)))
    with fails(DataFileError, r"empty array \(shape \(0, 3\)\)"):
        read_data(path)


def test_garbage_npy(tmp_path: Path) -> None:
    path = write(tmp_path / "d.npy", "definitely not numpy")
    with fails(DataFileError, r"d\.npy"):
        read_data(path)


@pytest.mark.parametrize("argument", ["time_column", "id_column"])
@pytest.mark.parametrize("name", ["d.npy", "d.txt"])
def test_table_arguments_rejected_for_arrays(tmp_path: Path, argument: str, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, np.zeros(3))
    else:
        write(path, "1 2 3")
    with fails(ParameterError, rf"{argument}='t' applies to tables only"):
        read_data(path, **{argument: "t"})


# --------------------------------------------------------------------------- #
# .txt / .txt.gz
# --------------------------------------------------------------------------- #


def test_txt_one_per_line(tmp_path: Path) -> None:
    loaded = read_data(write(tmp_path / "d.txt", "1\n2.5\n-3e2\n"))
    assert loaded.kind == "series"
    assert list(loaded.data.columns) == ["value"]
    assert loaded.data["value"].tolist() == [1.0, 2.5, -300.0]


def test_txt_one_line(tmp_path: Path) -> None:
    loaded = read_data(write(tmp_path / "d.txt", "  1 2\t3   4.25"))
    assert loaded.data["value"].tolist() == [1.0, 2.0, 3.0, 4.25]


def test_txt_gz_with_crlf_matches_benchmark_reader(tmp_path: Path) -> None:
    path = tmp_path / "d.TXT.GZ"
    values = np.random.default_rng(1).normal(size=50)
    with gzip.open(path, "wb") as handle:
        handle.write("\r\n".join(format(v, ".17g") for v in values).encode() + b"\r\n")
    reference = np.array(gzip.open(path, "rt").read().split(), float)
    loaded = read_data(path)
    np.testing.assert_array_equal(loaded.data["value"].to_numpy(), reference)
    np.testing.assert_array_equal(reference, values)


def test_txt_bad_token_names_it_and_its_position(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", "1\n2\nthree\n4\n")
    with fails(DataFileError, r"non-number 'three' as value 3"):
        read_data(path)


def test_txt_whitespace_only(tmp_path: Path) -> None:
    with fails(DataFileError, r"is empty"):
        read_data(write(tmp_path / "d.txt", " \r\n \n"))


# --------------------------------------------------------------------------- #
# Long-format panels
# --------------------------------------------------------------------------- #


def slow_panel(frame: pd.DataFrame, id_column: str, time_column: str | None, features: list[str]):
    """Reference: a plain Python loop over ids and rows."""
    ids: list = []
    for value in frame[id_column]:
        if value not in ids:
            ids.append(value)
    samples = []
    for sample_id in ids:
        rows = [row for _, row in frame.iterrows() if row[id_column] == sample_id]
        if time_column is not None:
            rows.sort(key=lambda row: pd.Timestamp(row[time_column]))
        samples.append([[float(row[name]) for name in features] for row in rows])
    return ids, np.array(samples, dtype=np.float64)


def test_long_panel_matches_slow_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n_ids, length = 4, 6
    frame = pd.DataFrame(
        {
            "unit": np.repeat([f"u{i}" for i in (3, 1, 2, 0)], length),
            "timestamp": np.tile(pd.date_range("2024-01-01", periods=length, freq="h").astype(str), n_ids),
            "a": rng.normal(size=n_ids * length),
            "b": rng.normal(size=n_ids * length),
        }
    ).sample(frac=1.0, random_state=3)  # shuffled rows: grouping and sorting must both happen
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    loaded = read_data(path, id_column="unit")
    ids, expected = slow_panel(frame, "unit", "timestamp", ["a", "b"])
    assert loaded.kind == "panel"
    assert loaded.ids == ids
    assert loaded.data.shape == (n_ids, length, 2)
    np.testing.assert_array_equal(loaded.data, expected)
    assert list(loaded.time) == list(pd.date_range("2024-01-01", periods=length, freq="h"))
    assert loaded.n_rows == n_ids


def test_long_panel_without_time_keeps_file_order(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "id,v\n7,1\n5,2\n7,3\n5,4\n")
    loaded = read_data(path, id_column="id")
    assert loaded.ids == [7, 5] and loaded.time is None
    np.testing.assert_array_equal(loaded.data[:, :, 0], [[1.0, 3.0], [2.0, 4.0]])


def test_long_panel_unequal_lengths(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "id,v\na,1\na,2\nb,3\nc,4\nc,5\n")
    with fails(DataFileError, r"id 'b' in .* has 1 rows but id 'a' has 2"):
        read_data(path, id_column="id")


def test_long_panel_duplicate_time_within_id(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "id,time,v\na,1,1\na,1,2\nb,1,3\nb,2,4\n")
    with fails(DataFileError, r"duplicate time 1 for id 'a'"):
        read_data(path, id_column="id")


def test_long_panel_missing_id_column(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "id,v\na,1\n")
    with fails(DataFileError, r"id_column 'unit' not found.*\['id', 'v'\]"):
        read_data(path, id_column="unit")


def test_contradictory_arguments(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "id,t,v\na,1,1\n")
    with fails(ParameterError, r"both 't'"):
        read_data(path, id_column="t", time_column="t")
    with fails(ParameterError, r"'id' is the id_column"):
        read_data(path, id_column="id", columns=["id", "v"])
    with fails(ParameterError, r"columns is empty"):
        read_data(path, columns=[])


# --------------------------------------------------------------------------- #
# split_train
# --------------------------------------------------------------------------- #


@pytest.fixture
def series(tmp_path: Path) -> LoadedData:
    dates = pd.date_range("2024-01-01", periods=10, freq="D")
    frame = pd.DataFrame({"timestamp": dates.astype(str), "v": np.arange(10.0)})
    path = tmp_path / "s.csv"
    frame.to_csv(path, index=False)
    return read_data(path)


def test_split_none_is_unchanged(series: LoadedData) -> None:
    assert split_train(series, None) is series


@pytest.mark.parametrize("train_end", [4, "4", np.int64(4)])
def test_split_by_count(series: LoadedData, train_end: object) -> None:
    train = split_train(series, train_end)
    assert train.n_rows == 4 and train.kind == "series"
    assert train.data["v"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert series.n_rows == 10  # the original is untouched


def test_split_by_timestamp(series: LoadedData) -> None:
    train = split_train(series, "2024-01-04")
    assert train.data.index.max() == pd.Timestamp("2024-01-03")
    assert train.n_rows == 3
    assert split_train(series, "2024-01-10").n_rows == 9


@pytest.mark.parametrize("train_end", [0, 11, -1, "0", "11"])
def test_split_count_out_of_range(series: LoadedData, train_end: object) -> None:
    with fails(ParameterError, r"train_end=.* outside the allowed range 1\.\.10"):
        split_train(series, train_end)


@pytest.mark.parametrize("train_end", ["2023-12-01", "2024-01-01", "2024-02-01"])
def test_split_timestamp_out_of_range(series: LoadedData, train_end: str) -> None:
    with fails(ParameterError, r"data runs from 2024-01-01 00:00:00 to 2024-01-10 00:00:00"):
        split_train(series, train_end)


def test_split_bad_values(series: LoadedData) -> None:
    with fails(ParameterError, r"neither a row count nor a timestamp"):
        split_train(series, "yesterday-ish")
    with fails(ParameterError, r"must be a row count"):
        split_train(series, 2.5)  # type: ignore[arg-type]
    with fails(ParameterError, r"must be a row count"):
        split_train(series, True)  # type: ignore[arg-type]


def test_split_timestamp_needs_datetime_index(tmp_path: Path) -> None:
    loaded = read_data(write(tmp_path / "d.csv", "a\n1\n2\n3\n"))
    with fails(ParameterError, r"no datetime time column"):
        split_train(loaded, "2024-01-01")
    assert split_train(loaded, 2).n_rows == 2


def test_split_panel(tmp_path: Path) -> None:
    path = tmp_path / "p.npy"
    np.save(path, np.arange(24.0).reshape(4, 3, 2))
    panel = read_data(path)
    train = split_train(panel, 3)
    assert train.kind == "panel" and train.data.shape == (3, 3, 2) and train.ids == [0, 1, 2]
    with fails(ParameterError, r"use a sample count for panels"):
        split_train(panel, "2024-01-01")
    with fails(ParameterError, r"outside the allowed range 1\.\.4"):
        split_train(panel, 5)


# --------------------------------------------------------------------------- #
# Property: CSV round trip is exact
# --------------------------------------------------------------------------- #


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    matrix=arrays(
        np.float64,
        st.tuples(st.integers(1, 20), st.integers(1, 5)),
        elements=st.floats(allow_nan=False, allow_infinity=False, width=64),
    )
)
def test_csv_round_trip_is_exact(tmp_path: Path, matrix: np.ndarray) -> None:
    path = tmp_path / "r.csv"
    columns = [f"c{i}" for i in range(matrix.shape[1])]
    pd.DataFrame(matrix, columns=columns).to_csv(path, index=False, float_format="%.17g")
    loaded = read_data(path)
    assert list(loaded.data.columns) == columns
    np.testing.assert_array_equal(loaded.data.to_numpy(), matrix)
