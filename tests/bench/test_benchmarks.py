"""Benchmark loaders on tiny generated copies of each layout (and the real data when it is there)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmae.data.benchmarks import dev_data_folder, list_benchmark, load_benchmark
from lstmae.errors import DataFileError, ParameterError
from paths import ROOT


def write_ucr(folder: Path, name: str, values, compress: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = "\r\n".join(str(v) for v in values) + "\r\n"
    if compress:
        path = folder / f"{name}.txt.gz"
        with gzip.open(path, "wt") as stream:
            stream.write(text)
    else:
        path = folder / f"{name}.txt"
        path.write_text(text)
    return path


def test_ucr_labels_are_end_exclusive_and_train_end_from_the_name(tmp_path):
    write_ucr(tmp_path, "001_UCR_Anomaly_Toy_50_60_65", np.arange(100.0))
    write_ucr(tmp_path, "002_UCR_Anomaly_Toy_30_70_72", np.arange(80.0), compress=False)
    first, second = load_benchmark(tmp_path, "ucr")
    assert first.name == "ucr/001_UCR_Anomaly_Toy_50_60_65" and first.group == "ucr"
    assert first.values.shape == (100, 1) and first.values.dtype == np.float64
    assert first.labels.dtype == np.int8
    assert np.flatnonzero(first.labels).tolist() == [60, 61, 62, 63, 64]
    assert first.train_end == 50
    assert second.n == 80 and second.train_end == 30


def test_ucr_training_is_cut_before_an_anomaly_inside_it(tmp_path):
    # Series 203: train_end 11812 but the anomaly starts at 10995.
    write_ucr(tmp_path, "203_UCR_Anomaly_CHARISfive_50_40_45", np.arange(100.0))
    (series,) = load_benchmark(tmp_path, "ucr")
    assert series.train_end == 40
    assert series.labels[: series.train_end].sum() == 0


def test_ucr_single_file_and_one_line_files(tmp_path):
    path = tmp_path / "204_UCR_Anomaly_Toy_10_20_22.txt.gz"
    with gzip.open(path, "wt") as stream:
        stream.write("  ".join(str(float(v)) for v in range(40)))  # all values on one line
    (series,) = load_benchmark(path, "ucr")
    assert series.n == 40 and series.labels.sum() == 2


def test_nab_windows_are_inclusive_and_train_end_is_15_percent(tmp_path):
    (tmp_path / "data" / "realToy").mkdir(parents=True)
    (tmp_path / "labels").mkdir()
    stamps = pd.date_range("2020-01-01", periods=40, freq="5min")
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "value": np.arange(40.0)}).to_csv(
        tmp_path / "data" / "realToy" / "toy.csv", index=False)
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "value": np.ones(40)}).to_csv(
        tmp_path / "data" / "realToy" / "unlabelled.csv", index=False)
    windows = {"realToy/toy.csv": [["2020-01-01 01:00:00.000000", "2020-01-01 01:10:00.000000"]]}
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    (series,) = load_benchmark(tmp_path, "nab")
    assert series.name == "nab/realToy/toy"
    assert np.flatnonzero(series.labels).tolist() == [12, 13, 14]
    assert series.train_end == int(0.15 * 40)


def write_smap(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for chan in ("A-1", "P-2", "T-10"):
        np.savez(folder / f"{chan}.npz", train=rng.random((20, 3)).astype(np.float32),
                 test=rng.random((30, 3)).astype(np.float32), test_labels=np.zeros(30, np.uint8))
    pd.DataFrame({
        "chan_id": ["A-1", "P-2", "P-2"],
        "spacecraft": ["SMAP", "MSL", "MSL"],
        "anomaly_sequences": ["[[2, 4], [10, 10]]", "[[5, 8]]", "[[7, 12]]"],
        "class": ["[point]", "[point]", "[point]"],
        "num_values": [30, 30, 30],
    }).to_csv(folder / "labeled_anomalies.csv", index=False)


def test_smap_concatenates_train_and_test_and_merges_rows(tmp_path):
    write_smap(tmp_path)
    series = {s.name: s for s in load_benchmark(tmp_path, "smap")}
    assert sorted(series) == ["msl/P-2", "smap/A-1"]  # T-10 has no label row
    a1 = series["smap/A-1"]
    assert a1.group == "smap" and a1.values.shape == (50, 3) and a1.train_end == 20
    assert np.flatnonzero(a1.labels).tolist() == [22, 23, 24, 30]
    assert np.flatnonzero(series["msl/P-2"].labels).tolist() == list(range(25, 33))


def test_labelled_csv_default_and_given_train_end(tmp_path):
    path = tmp_path / "toy.csv"
    pd.DataFrame({"timestamp": range(100), "a": np.arange(100.0), "b": np.ones(100),
                  "label": [0] * 90 + [1] * 10}).to_csv(path, index=False)
    (series,) = load_benchmark(path, "labelled-csv")
    assert series.name == "csv/toy" and series.values.shape == (100, 2) and series.train_end == 15
    (series,) = load_benchmark(path, "labelled-csv", train_end=60)
    assert series.train_end == 60


def test_glob_and_limit(tmp_path):
    for i in range(1, 4):
        write_ucr(tmp_path, f"00{i}_UCR_Anomaly_Toy{i}_10_20_22", np.arange(40.0))
    assert [s.name for s in load_benchmark(tmp_path, "ucr", limit=2)] == [
        "ucr/001_UCR_Anomaly_Toy1_10_20_22", "ucr/002_UCR_Anomaly_Toy2_10_20_22"]
    assert [s.name for s in load_benchmark(tmp_path, "ucr", series="*Toy3*")] == ["ucr/003_UCR_Anomaly_Toy3_10_20_22"]
    assert [s.name for s in load_benchmark(tmp_path, "ucr", series="ucr/002_*")] == ["ucr/002_UCR_Anomaly_Toy2_10_20_22"]


def bad_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make, fmt, kwargs, error, match",
    [
        (lambda p: p / "missing", "ucr", {}, DataFileError, "does not exist"),
        (lambda p: p, "parquet", {}, ParameterError, "format must be one of ucr, nab, smap, labelled-csv; got 'parquet'"),
        (lambda p: p, "ucr", {}, DataFileError, r"no UCR files"),
        (lambda p: write_ucr(p, "not_a_ucr_name", [1.0]), "ucr", {}, DataFileError, "not a labelled UCR file name"),
        (lambda p: write_ucr(p, "001_UCR_Anomaly_X_5_8_30", np.arange(10.0)), "ucr", {}, DataFileError, "holds 10 values"),
        (lambda p: p, "nab", {}, DataFileError, "not a NAB folder"),
        (lambda p: p, "smap", {}, DataFileError, "no labeled_anomalies.csv"),
        (lambda p: bad_csv(p, "a,b\n1,2\n"), "labelled-csv", {}, DataFileError, "no 'label' column"),
        (lambda p: bad_csv(p, "a,label\n1,0\n2,3\n"), "labelled-csv", {}, DataFileError, "row 1 has 3"),
        (lambda p: bad_csv(p, "a,label\n1,0\n,1\n"), "labelled-csv", {}, DataFileError, "row 1 has a missing"),
        (lambda p: bad_csv(p, "name,label\nx,0\ny,1\n"), "labelled-csv", {}, DataFileError, "no numeric value column"),
        (lambda p: bad_csv(p, "a,label\n1,0\n2,1\n"), "labelled-csv", {"train_end": 5}, ParameterError, r"\[1, 2\)"),
        (lambda p: p, "ucr", {"train_end": 5}, ParameterError, "labelled-csv only"),
        (lambda p: write_ucr(p, "001_UCR_Anomaly_X_5_8_9", np.arange(10.0)), "ucr", {"series": "zzz*"}, DataFileError,
         "matching 'zzz\\*'"),
        (lambda p: write_ucr(p, "001_UCR_Anomaly_X_5_8_9", np.arange(10.0)), "ucr", {"limit": 0}, ParameterError, "limit"),
    ],
)
def test_bad_paths_and_files_raise_typed_errors(tmp_path, make, fmt, kwargs, error, match):
    path = make(tmp_path)
    with pytest.raises(error, match=match):
        list(load_benchmark(path, fmt, **kwargs))


def test_dev_data_is_looked_for_beside_the_checkout_unless_the_environment_names_it(monkeypatch, tmp_path):
    monkeypatch.delenv("LSTMAE_BENCH_DATA", raising=False)
    checkout = ROOT
    assert dev_data_folder() == checkout.parent / "shared" / "data"
    monkeypatch.setenv("LSTMAE_BENCH_DATA", str(tmp_path))
    assert dev_data_folder() == tmp_path


def test_real_layout_matches_the_manifest(dev_data):
    manifest = pd.read_csv(dev_data / "MANIFEST.csv").set_index("name")
    checked = 0
    for fmt, folder, glob in [("nab", "nab", "*"), ("smap", "smap_msl", "*"), ("ucr", "ucr", "1[0-2]*")]:
        for series in load_benchmark(dev_data / folder, fmt, series=glob):
            row = manifest.loc[series.name]
            assert (series.n, series.d, int(series.labels.sum())) == (row.n, row.d, row.positives), series.name
            assert series.train_end == row.train_end, series.name
            checked += 1
    assert checked > 100
    assert list_benchmark(dev_data / "ucr", "ucr")[0][0] == "ucr/001_UCR_Anomaly_DISTORTED1sddb40_35000_52000_52620"
