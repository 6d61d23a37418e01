"""`lstmae fleet fit|score|detect` through the entry point, with the local engine and with Ray,
and once as a real process stopped with Ctrl-C and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import sine
from lstmae import LSTMAutoencoder
from lstmae.cli.app import main
from lstmae.data.readers import read_data
from lstmae.persistence.model_file import load_model
from clirun import run

QUICK = ["--timesteps", "16", "--units", "4", "--epochs", "1", "--seed", "0", "--params", '{"windows_per_epoch": 64}', "--quiet"]
GOOD = ("m1", "m2", "m3")


def write_table(path: Path, names: tuple[str, ...], n: int = 160, short: bool = True) -> Path:
    parts = []
    for number, name in enumerate(names):
        values = sine(n, 16, seed=number, phase=number)
        values[n // 2: n // 2 + 4] += 4.0
        parts.append(pd.DataFrame({"machine": name, "timestamp": pd.date_range("2024-01-01", periods=n, freq="min"), "load": values}))
    if short:
        parts.append(pd.DataFrame({"machine": "tiny", "timestamp": pd.date_range("2024-01-01", periods=5, freq="min"), "load": 1.0}))
    pd.concat(parts, ignore_index=True).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli_fleet")


@pytest.fixture(scope="module")
def table(workdir: Path) -> Path:
    return write_table(workdir / "machines.csv", GOOD)


@pytest.fixture(scope="module")
def local_run(workdir: Path, table: Path) -> dict:
    """fleet fit, then fleet score, with the local engine (2 workers); their exit codes and stderr."""
    fit = main(["fleet", "fit", str(table), "--series-column", "machine", "-o", str(workdir / "models"), "--workers", "2", *QUICK])
    score = main(["fleet", "score", str(table), "-m", str(workdir / "models"), "-o", str(workdir / "scores"), "--workers", "2", "-q"])
    return {"fit": fit, "score": score}


def test_fit_and_score_exit_3_when_a_series_fails_and_write_one_file_each(local_run: dict, workdir: Path, table: Path, capsys) -> None:
    assert local_run == {"fit": 3, "score": 3}
    manifest = pd.read_parquet(workdir / "models" / "manifest.parquet").set_index("series")
    assert list(manifest.loc[list(GOOD), "status"]) == ["ok"] * 3
    assert manifest.loc["tiny", "status"] == "failed" and "fewer than timesteps=16" in manifest.loc["tiny", "error"]
    scores = pd.read_parquet(workdir / "scores", partitioning="hive")  # partitioned by series: the column comes back
    assert set(scores["machine"].astype(str)) == set(GOOD)
    for name in GOOD:  # each file: that series' model on that series, as the single-model verbs would score it
        single = workdir / f"{name}.csv"
        whole = pd.read_csv(table)
        whole[whole["machine"] == name].drop(columns=["machine"]).to_csv(single, index=False)
        model = LSTMAutoencoder.load(workdir / "models" / manifest.loc[name, "model"])
        expected = np.asarray(model.anomaly_score(read_data(single).data))
        got = pd.read_parquet(workdir / "scores" / f"machine={name}" / "part-0.parquet")
        assert list(got.columns) == ["timestamp", "score", "anomaly"]
        np.testing.assert_array_equal(got["score"].to_numpy(), expected)
    scored = pd.read_parquet(workdir / "scores" / "_manifest.parquet").set_index("series")
    assert scored.loc["tiny", "error"].startswith("no model: its fit failed (the series has 5 timesteps, fewer than timesteps=16")


def test_the_summary_line_names_the_failed_series(workdir: Path, table: Path, capsys) -> None:
    code, _, err = run(capsys, "fleet", "fit", table, "--series-column", "machine", "-o", workdir / "models", "--workers", "2",
                       "--resume", *QUICK)
    assert code == 3
    assert "fleet: series 'tiny' failed: the series has 5 timesteps" in err
    assert "fleet: 3 of 4 series fitted, 1 failed or not done ('tiny')" in err
    assert "Traceback" not in err


def test_detect_prints_one_table_most_severe_first_and_a_summary(local_run: dict, workdir: Path, table: Path, capsys) -> None:
    code, out, err = run(capsys, "fleet", "detect", table, "-m", workdir / "models", "--threshold", "2", "--workers", "1",
                         "-o", workdir / "intervals.csv", "-q")
    assert code == 3  # "tiny" has no model
    assert out.count("anomalous interval(s), threshold 2") == 1  # one table for every series
    written = pd.read_csv(workdir / "intervals.csv")
    assert set(written["machine"]) == set(GOOD) and list(written.columns[:3]) == ["machine", "start", "end"]
    ranked = written.sort_values("severity", ascending=False, kind="stable")
    rows = [line for line in out.splitlines() if any(f" {name} " in line for name in GOOD)]
    assert [next(name for name in GOOD if f" {name} " in line) for line in rows] == list(ranked["machine"])
    top = ranked.iloc[0]
    assert (f"fleet detect: {len(written)} interval(s) in 3 of 3 series scored; the most severe: machine {top['machine']} "
            f"(severity {top['severity']:.3g}") in err


def test_ray_engine_gives_the_same_files(local_run: dict, workdir: Path, table: Path) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        fit = main(["fleet", "fit", str(table), "--series-column", "machine", "-o", str(workdir / "ray-models"),
                    "--engine", "ray", "--workers", "2", *QUICK])
        score = main(["fleet", "score", str(table), "-m", str(workdir / "ray-models"), "-o", str(workdir / "ray-scores"),
                      "--engine", "ray", "-q"])
    finally:
        ray.shutdown()
    assert (fit, score) == (3, 3)
    local = pd.read_parquet(workdir / "models" / "manifest.parquet")
    remote = pd.read_parquet(workdir / "ray-models" / "manifest.parquet")
    assert list(remote["model_sha256"]) == list(local["model_sha256"])  # the same weights, bit for bit
    for name in GOOD:
        files = [pd.read_parquet(root / f"machine={name}" / "part-0.parquet") for root in (workdir / "scores", workdir / "ray-scores")]
        pd.testing.assert_frame_equal(files[0], files[1], check_exact=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--series-column", "nope"], "series column 'nope' not found in"),
        (["--series-column", "machine", "--engine", "spark"], "engine must be one of 'local', 'ray', got 'spark'"),
        (["--series-column", "machine", "--address", "auto"], "address='auto' is for engine='ray'"),
        (["--series-column", "machine", "--workers", "0"], "workers must be an integer >= 1"),
        (["--series-column", "machine", "--timesteps", "ten"], "--timesteps must be"),
        (["--series-column", "machine", "--params", '{"epoch": 1}'], "unknown estimator parameter(s) epoch"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(workdir: Path, table: Path, capsys, args: list[str], message: str) -> None:
    code, _, err = run(capsys, "fleet", "fit", table, "-o", workdir / "bad", *args)
    assert code == 2
    assert err.startswith("lstmae: error: ") and message in err and err.count("\n") == 1


def test_score_without_a_fleet_is_exit_2(workdir: Path, table: Path, capsys) -> None:
    code, _, err = run(capsys, "fleet", "score", table, "-m", workdir / "nothing", "-o", workdir / "s")
    assert code == 2 and "no fleet at" in err and "lstmae fleet fit" in err


def test_ctrl_c_keeps_finished_models_and_resume_fits_the_rest(tmp_path: Path) -> None:
    names = tuple(f"unit{i}" for i in range(8))
    table = write_table(tmp_path / "units.csv", names, n=400, short=False)
    models = tmp_path / "models"
    command = [sys.executable, "-m", "lstmae", "fleet", "fit", str(table), "--series-column", "machine", "-o", str(models),
               "--workers", "1", "--timesteps", "16", "--units", "4", "--epochs", "3", "--seed", "0", "-q"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ})
    deadline = time.monotonic() + 300
    while not list(models.glob("models/*.safetensors")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "lstmae: interrupted (SIGINT)" in err and "Traceback" not in err
    manifest = pd.read_parquet(models / "manifest.parquet").set_index("series")
    done = manifest.index[manifest["status"] == "ok"]
    told = [line for line in err.splitlines() if line.startswith("fleet: interrupted: ")]
    assert told == [f"fleet: interrupted: {len(done)} of {len(names)} series fitted, {len(names) - len(done)} pending; the models "
                    f"are kept in {models}. To fit the rest, run the same command with --resume: lstmae fleet fit {table} "
                    f"--series-column machine -o {models} ... --resume"]
    assert 1 <= len(done) < len(names)
    assert set(manifest["status"]) <= {"ok", "pending"}
    for name in manifest.index:  # every "ok" has its valid model; a "pending" one may too (its worker saved it
        path = models / manifest.loc[name, "model"]  # as the Ctrl-C reached the driver), never half a file
        if name in done:
            assert load_model(path)[1]["tensors_sha256"] == manifest.loc[name, "model_sha256"]
        elif path.is_file():
            load_model(path)  # whole: it checks the file's checksum
    saved = [name for name in manifest.index if (models / manifest.loc[name, "model"]).is_file()]
    assert len(saved) < len(names)
    kept = {name: (models / manifest.loc[name, "model"]).stat().st_mtime_ns for name in saved}
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    after = pd.read_parquet(models / "manifest.parquet").set_index("series")
    assert list(after["status"]) == ["ok"] * len(names)
    assert {name: (models / after.loc[name, "model"]).stat().st_mtime_ns for name in saved} == kept  # not refitted


def test_warnings_are_counted_by_kind_and_the_fit_still_counts(workdir: Path, table: Path, capsys) -> None:
    """A fleet fitted with warnings exits 0 (3 only for failed series) and says which warnings, how many, where."""
    from lstmae.fleet.runner import warning_counts

    manifest = pd.DataFrame({"series": ["a", "b", "c", "d"], "warnings": [
        "mean-collapse: the model's error is 1.3x ...; identity-like model: it reproduces ...",
        "mean-collapse: the model's error is 2.0x ...", None, "line 4 skipped: ..."]})
    assert warning_counts(manifest) == {"mean-collapse": 2, "identity-like model": 1, "line 4 skipped": 1}
    models = workdir / "warned"
    code, _, err = run(capsys, "fleet", "fit", table, "--series-column", "machine", "-o", models, "--workers", "2",
                       "--timesteps", "16", "--units", "1", "--epochs", "1", "--seed", "0", "--params", '{"windows_per_epoch": 16}', "-q")
    assert code == 3  # "tiny"
    fitted = pd.read_parquet(models / "manifest.parquet")
    counts = warning_counts(fitted)
    assert counts.get("mean-collapse", 0) >= 1  # one unit, one epoch: the models learned little
    kinds = ", ".join(f"{kind} in {count} series" for kind, count in counts.items())
    assert f"fleet: warnings: {kinds}; read them in the manifest's warnings column ({models / 'manifest.parquet'})" in err
