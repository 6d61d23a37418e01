"""The fleet (lstmae.fleet.runner, lstmae.fleet.engines, lstmae.data.partitioned): one model per series, many at once.

References are independent of the fleet's machinery: each series' rows picked
with pandas from the whole table, and a model fitted on them in this process.
Workers run torch on one thread, as this process does (conftest), so the
fleet's scores must equal the in-process model's bit for bit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import sine
from lstmae import LSTMAutoencoder
from lstmae.data.partitioned import read_series, stage
from lstmae.errors import DataFileError, ParameterError
from lstmae.fleet.runner import KILL_HOOK, Fleet
from lstmae.persistence.model_file import load_model

#: Small and quick; the default scoring path (the fleet adds nothing to it).
PARAMS = dict(timesteps=16, units=4, epochs=1, batch_size=32, windows_per_epoch=64, random_state=0, verbose=0)
GOOD = ("alpha", "b/β 2", "c")  # a name with a slash and non-ASCII letters: percent-encoded on disk


def long_table() -> pd.DataFrame:
    """Three good series of different lengths, one too short, one with no value at all; rows interleaved."""
    parts = []
    for number, (name, n) in enumerate(zip(GOOD, (160, 200, 180))):
        values = sine(n, 16, seed=number, phase=number)
        values[n // 2: n // 2 + 4] += 4.0
        parts.append(pd.DataFrame({"sensor": name, "time": pd.date_range("2024-01-01", periods=n, freq="min"), "value": values}))
    parts.append(pd.DataFrame({"sensor": "short", "time": pd.date_range("2024-01-01", periods=5, freq="min"), "value": np.arange(5.0)}))
    parts.append(pd.DataFrame({"sensor": "empty", "time": pd.date_range("2024-01-01", periods=50, freq="min"), "value": np.nan}))
    table = pd.concat(parts, ignore_index=True)
    return table.sample(frac=1.0, random_state=0).reset_index(drop=True)  # the fleet must not rely on row order


def series_frame(table: pd.DataFrame, name: str) -> pd.DataFrame:
    rows = table[table["sensor"] == name].sort_values("time")
    return rows.set_index("time")[["value"]]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return long_table()


@pytest.fixture(scope="module")
def fitted(table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    folder = tmp_path_factory.mktemp("fleet")
    return Fleet(LSTMAutoencoder(**PARAMS), workers=2).fit(table, series_column="sensor", output=folder)


@pytest.fixture(scope="module")
def scores(fitted: Fleet, table: pd.DataFrame) -> pd.DataFrame:
    return fitted.anomaly_score(table)


def test_one_model_per_series_and_a_manifest(fitted: Fleet, table: pd.DataFrame) -> None:
    manifest = fitted.manifest_.set_index("series")
    assert sorted(manifest.index) == sorted([*GOOD, "short", "empty"])
    for name in GOOD:
        row = manifest.loc[name]
        assert row["status"] == "ok" and pd.isna(row["error"])
        assert row["rows"] == (table["sensor"] == name).sum()
        _, info = load_model(fitted.folder_ / row["model"])
        assert info["tensors_sha256"] == row["model_sha256"]
        assert info["metadata"]["fleet"]["series"] == name
        assert row["threshold"] == pytest.approx(LSTMAutoencoder.load(fitted.folder_ / row["model"]).threshold_)
        assert row["seconds"] > 0 and row["attempts"] == 1
    saved = pd.read_parquet(fitted.folder_ / "manifest.parquet").set_index("series")
    pd.testing.assert_frame_equal(saved.sort_index(), manifest.sort_index())


def test_a_bad_series_is_recorded_with_its_reason_and_the_rest_go_on(fitted: Fleet) -> None:
    manifest = fitted.manifest_.set_index("series")
    assert sorted(fitted.failed_) == ["empty", "short"]
    assert manifest.loc["short", "status"] == "failed"
    assert "fewer than timesteps=16" in manifest.loc["short", "error"]
    assert "no values" in manifest.loc["empty", "error"]
    for name in ("short", "empty"):
        assert "\n" not in manifest.loc[name, "error"]
        assert not (fitted.folder_ / manifest.loc[name, "model"]).exists()


def test_scores_equal_a_model_fitted_alone_on_each_series(scores: pd.DataFrame, table: pd.DataFrame) -> None:
    assert set(scores["sensor"]) == set(GOOD)
    for name in GOOD:
        frame = series_frame(table, name)
        alone = LSTMAutoencoder(**PARAMS).fit(frame)
        expected = np.asarray(alone.anomaly_score(frame))
        got = scores[scores["sensor"] == name]
        np.testing.assert_array_equal(got["time"].to_numpy(), frame.index.to_numpy())
        np.testing.assert_array_equal(got["score"].to_numpy(), expected)  # bit-identical on the CPU
        np.testing.assert_array_equal(got["anomaly"].to_numpy(), (expected > alone.threshold_).astype(int))


def test_detect_gives_each_series_its_own_models_intervals(fitted: Fleet, table: pd.DataFrame) -> None:
    intervals = fitted.detect(table, threshold=2.0)
    assert list(intervals.columns[:3]) == ["sensor", "start", "end"]
    for name in GOOD:
        model = LSTMAutoencoder.load(fitted.folder_ / fitted.manifest_.set_index("series").loc[name, "model"])
        expected = model.detect(series_frame(table, name), threshold=2.0)
        got = intervals[intervals["sensor"] == name].drop(columns=["sensor"]).reset_index(drop=True)
        assert len(expected) > 0  # the +4 bump is found
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert sorted(fitted.detect_manifest_["series"][fitted.detect_manifest_["status"] != "ok"]) == ["empty", "short"]


def test_save_and_load_give_the_same_scores(fitted: Fleet, scores: pd.DataFrame, table: pd.DataFrame, tmp_path: Path) -> None:
    fitted.save(tmp_path / "copy")
    assert not (fitted.folder_ / "_input").exists()  # the staged table is removed after each run
    loaded = Fleet.load(tmp_path / "copy", workers=1)
    again = loaded.anomaly_score(table[table["sensor"] == "alpha"])
    np.testing.assert_array_equal(again["score"].to_numpy(), scores[scores["sensor"] == "alpha"]["score"].to_numpy())


def test_one_worker_and_ray_give_bit_identical_scores(scores: pd.DataFrame, table: pd.DataFrame, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    good = table[table["sensor"].isin(GOOD)]
    one = Fleet(LSTMAutoencoder(**PARAMS), workers=1).fit(good, series_column="sensor", output=tmp_path / "one")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = Fleet(LSTMAutoencoder(**PARAMS), engine="ray", workers=2).fit(good, series_column="sensor", output=tmp_path / "ray")
        ray_scores = on_ray.anomaly_score(good)
    finally:
        ray.shutdown()
    expected = scores.sort_values(["sensor", "time"]).reset_index(drop=True)
    for other in (one.anomaly_score(good), ray_scores):
        pd.testing.assert_frame_equal(other.sort_values(["sensor", "time"]).reset_index(drop=True), expected, check_exact=True)
    for fleet in (one, on_ray):
        assert list(fleet.manifest_["status"]) == ["ok"] * 3


def test_a_worker_killed_mid_fit_costs_one_retry_then_its_series_fails(table: pd.DataFrame, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    good = table[table["sensor"].isin(GOOD)]
    once = tmp_path / "killed-once"
    monkeypatch.setenv(KILL_HOOK, f"alpha@{once},c")  # alpha's worker dies once, c's every time
    fleet = Fleet(LSTMAutoencoder(**PARAMS), workers=2).fit(good, series_column="sensor", output=tmp_path / "fleet")
    manifest = fleet.manifest_.set_index("series")
    assert once.exists()
    assert manifest.loc["alpha", "status"] == "ok" and manifest.loc["alpha", "attempts"] == 2
    assert manifest.loc["b/β 2", "status"] == "ok" and manifest.loc["b/β 2", "attempts"] == 1
    assert manifest.loc["c", "status"] == "failed" and manifest.loc["c", "attempts"] == 2
    assert "SIGKILL" in manifest.loc["c", "error"]
    assert not list((tmp_path / "fleet" / "models").glob(".*.tmp"))


def test_resume_keeps_valid_models_and_refits_missing_or_damaged_ones(fitted: Fleet, table: pd.DataFrame, tmp_path: Path) -> None:
    folder = tmp_path / "fleet"
    fitted.save(folder)
    models = fitted.manifest_.set_index("series")["model"]
    (folder / models["alpha"]).unlink()
    damaged = folder / models["c"]
    damaged.write_bytes(damaged.read_bytes()[:-100])
    kept = folder / models["b/β 2"]
    before = (kept.stat().st_mtime_ns, kept.read_bytes())
    again = Fleet(LSTMAutoencoder(**PARAMS), workers=2).fit(table, series_column="sensor", output=folder, resume=True)
    assert (kept.stat().st_mtime_ns, kept.read_bytes()) == before
    manifest = again.manifest_.set_index("series")
    original = fitted.manifest_.set_index("series")
    for name in GOOD:  # the same seed: refitted models are the same models
        assert manifest.loc[name, "status"] == "ok"
        assert manifest.loc[name, "model_sha256"] == original.loc[name, "model_sha256"]
        load_model(folder / models[name])
    assert sorted(again.failed_) == ["empty", "short"]


def test_resume_refuses_other_settings(fitted: Fleet, table: pd.DataFrame, tmp_path: Path) -> None:
    fitted.save(tmp_path / "fleet")
    other = LSTMAutoencoder(**{**PARAMS, "units": 5})
    with pytest.raises(ParameterError, match=r"resume: .* other settings \(params"):
        Fleet(other, workers=1).fit(table, series_column="sensor", output=tmp_path / "fleet", resume=True)
    with pytest.raises(ParameterError, match="resume: no fleet to continue"):
        Fleet(other, workers=1).fit(table, series_column="sensor", output=tmp_path / "new", resume=True)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_staging_puts_each_series_rows_in_its_own_files(table: pd.DataFrame, tmp_path: Path, suffix: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import lstmae.data.partitioned as partitioned

    monkeypatch.setattr(partitioned, "BATCH_ROWS", 100)  # many batches: series split across them
    monkeypatch.setattr(partitioned, "CSV_BLOCK_BYTES", 4096)
    monkeypatch.setattr(partitioned, "MAX_OPEN_FILES", 2)  # files closed and new ones opened: several per series
    path = tmp_path / f"table{suffix}"
    table.to_csv(path, index=False) if suffix == ".csv" else table.to_parquet(path, index=False)
    staged = stage(path, "sensor", tmp_path / "staged")
    assert sorted(staged.files) == sorted(table["sensor"].unique())
    assert staged.columns == ["time", "value"]
    for name, files in staged.files.items():
        expected = table[table["sensor"] == name]
        assert staged.rows[name] == len(expected)
        got = read_series(files)
        assert all(Path(f).parent.parent == tmp_path / "staged" for f in files)
        np.testing.assert_array_equal(got["value"].to_numpy(), expected["value"].to_numpy())  # in file order
    assert max(len(files) for files in staged.files.values()) > 1  # the order across files is tested too
    again = stage(tmp_path / "staged", "sensor", tmp_path / "unused")  # a partitioned folder is used as it is
    assert again.files == staged.files and not (tmp_path / "unused").exists()


def test_staging_errors_are_one_line_with_the_fix(table: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"series column 'nope' not found in the DataFrame; columns found: \['sensor', 'time', 'value'\]"):
        stage(table, "nope", tmp_path / "a")
    holes = table.copy()
    holes.loc[3, "sensor"] = None
    with pytest.raises(DataFileError, match=r"series column 'sensor' is empty in data row 4"):
        stage(holes, "sensor", tmp_path / "b")
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.*"))
    with pytest.raises(DataFileError, match="no such file"):
        stage(tmp_path / "absent.csv", "sensor", tmp_path / "c")


def test_bad_fleet_parameters_fail_before_any_work(table: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="engine must be one of 'local', 'ray', got 'spark'"):
        Fleet(engine="spark").fit(table, series_column="sensor", output=tmp_path / "a")
    with pytest.raises(ParameterError, match="workers must be an integer >= 1.*got 0"):
        Fleet(workers=0).fit(table, series_column="sensor", output=tmp_path / "b")
    with pytest.raises(ParameterError, match="address='auto' is for engine='ray'"):
        Fleet(address="auto").fit(table, series_column="sensor", output=tmp_path / "c")
    with pytest.raises(ParameterError, match="estimator must be an LSTMAutoencoder"):
        Fleet("not a model").fit(table, series_column="sensor", output=tmp_path / "d")
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ParameterError, match="is a file; a fleet needs a folder"):
        Fleet().fit(table, series_column="sensor", output=file)
    assert not os.path.exists(tmp_path / "a")


def test_train_end_fits_each_series_on_its_first_rows_and_scores_them_all(table: pd.DataFrame, tmp_path: Path) -> None:
    one = table[table["sensor"].isin(["alpha", "short"])]
    fleet = Fleet(LSTMAutoencoder(**PARAMS), workers=1).fit(one, series_column="sensor", output=tmp_path / "f", train_end=100)
    frame = series_frame(table, "alpha")
    alone = LSTMAutoencoder(**PARAMS).fit(frame.iloc[:100])
    got = fleet.anomaly_score(one)
    np.testing.assert_array_equal(got["score"].to_numpy(), np.asarray(alone.anomaly_score(frame)))
    assert len(got) == len(frame)
    manifest = fleet.manifest_.set_index("series")
    assert manifest.loc["alpha", "threshold"] == alone.threshold_
    assert manifest.loc["short", "status"] == "failed" and "train_end" in manifest.loc["short", "error"]
