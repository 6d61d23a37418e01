"""The command line, through its entry point `lstmae.cli.app.main` (and once as a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmae.cli.app import main
from clirun import run

VERBS = ["fit", "score", "detect", "encode", "reconstruct", "explain", "demo", "serve"]


def sine_frame(n: int = 600, period: int = 20, flat: tuple[int, int] | None = None, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = np.sin(2 * np.pi * np.arange(n) / period) + 0.05 * rng.standard_normal(n)
    if flat is not None:
        values[flat[0] : flat[1]] = 0.9
    return pd.DataFrame({"timestamp": pd.date_range("2021-01-01", periods=n, freq="h"), "value": values})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def csv_file(workdir) -> Path:
    path = workdir / "sine.csv"
    sine_frame(flat=(450, 480)).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_file(workdir, csv_file) -> Path:
    path = workdir / "model.safetensors"
    code = main(
        ["fit", str(csv_file), "-o", str(path), "--train-end", "300", "--timesteps", "20", "--units", "8,4",
         "--epochs", "2", "--batch-size", "64", "--seed", "0", "--quiet"]
    )
    assert code == 0
    return path


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(capsys, verb):
    code, out, _ = run(capsys, verb, "--help")
    assert code == 0
    assert "Usage:" in out and verb in out


def test_version(capsys):
    from lstmae import __version__

    code, out, _ = run(capsys, "--version")
    assert code == 0 and __version__ in out


def test_fit_writes_a_loadable_model_and_reports(capsys, csv_file, tmp_path):
    from lstmae import LSTMAutoencoder

    path = tmp_path / "m.safetensors"
    code, out, err = run(capsys, "fit", csv_file, "-o", path, "--train-end", "2021-01-13", "--timesteps", "20",
                         "--units", "6", "--epochs", "1", "--seed", "1")
    assert code == 0, err
    assert "saved model to" in err and "epoch" in err
    model = LSTMAutoencoder.load(path)
    assert model.timesteps_ == 20 and model.config_.units == (6,)
    assert list(model.feature_names_in_) == ["value"]


def test_fit_warns_when_the_design_can_learn_the_identity(capsys, csv_file, tmp_path):
    path = tmp_path / "seq.safetensors"
    code, _, err = run(capsys, "fit", csv_file, "-o", path, "--architecture", "sequence", "--timesteps", "20",
                       "--units", "4", "--epochs", "1", "--seed", "0")
    assert code == 0
    assert "warning: no bottleneck" in err and "identity" in err
    code, _, err = run(capsys, "fit", csv_file, "-o", path, "--timesteps", "20", "--units", "4", "--epochs", "1", "--seed", "0")
    # a repeat model with latent 4 < 20 values per window: no design warning (1 epoch is too little
    # to learn the shape, which the diagnostics say: mean-collapse, not identity)
    assert code == 0 and "warning: no bottleneck" not in err and "identity-like" not in err
    assert "diagnostics: identity_ratio" in err and "lstmae: warning: mean-collapse" in err


def test_score_one_row_per_timestep(capsys, csv_file, model_file, tmp_path):
    target = tmp_path / "scores.csv"
    code, _, err = run(capsys, "score", csv_file, "-m", model_file, "-o", target)
    assert code == 0, err
    table = pd.read_csv(target)
    source = pd.read_csv(csv_file)
    assert list(table.columns) == ["timestamp", "score", "anomaly"]
    assert len(table) == len(source)
    assert table["timestamp"].tolist() == source["timestamp"].tolist()
    assert np.isfinite(table["score"]).all()
    assert set(table["anomaly"].unique()) <= {0, 1}


def test_score_to_stdout_matches_python_api(capsys, csv_file, model_file):
    from io import StringIO

    from lstmae import LSTMAutoencoder

    code, out, _ = run(capsys, "score", csv_file, "-m", model_file)
    assert code == 0
    table = pd.read_csv(StringIO(out))
    model = LSTMAutoencoder.load(model_file)
    frame = pd.read_csv(csv_file, parse_dates=["timestamp"]).set_index("timestamp")
    np.testing.assert_allclose(table["score"].to_numpy(), model.anomaly_score(frame), rtol=1e-12)
    expected = (model.anomaly_score(frame) > model.threshold_).astype(int)
    assert table["anomaly"].tolist() == expected.tolist()


def test_detect_prints_table_and_writes_csv(capsys, csv_file, model_file, tmp_path):
    target = tmp_path / "intervals.csv"
    code, out, err = run(capsys, "detect", csv_file, "-m", model_file, "-o", target, "--threshold", "0")
    assert code == 0, err
    table = pd.read_csv(target)
    # threshold 0: every timestep with a positive score is anomalous -> one interval over everything
    assert len(table) == 1 and table.loc[0, "start"] == 0 and table.loc[0, "end"] == 599
    assert "anomalous interval" in out and "start_time" in out


def test_detect_without_anomalies_says_so(capsys, csv_file, model_file):
    code, out, _ = run(capsys, "detect", csv_file, "-m", model_file, "--threshold", "1e9")
    assert code == 0
    assert "no anomalous interval" in out


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".parquet"])
def test_encode_formats(capsys, csv_file, model_file, tmp_path, suffix):
    from lstmae import window_starts

    target = tmp_path / f"emb{suffix}"
    code, _, err = run(capsys, "encode", csv_file, "-m", model_file, "-o", target, "--stride", "10")
    assert code == 0, err
    n_windows = len(window_starts(600, 20, 10))
    if suffix == ".npy":
        array = np.load(target, allow_pickle=False)
        assert array.shape == (n_windows, 4)
    else:
        table = pd.read_csv(target) if suffix == ".csv" else pd.read_parquet(target)
        assert len(table) == n_windows
        assert table["start"].tolist() == window_starts(600, 20, 10).tolist()
        assert [c for c in table.columns if c.startswith("z")] == ["z0", "z1", "z2", "z3"]


def test_encode_rejects_unknown_extension(capsys, csv_file, model_file, tmp_path):
    code, _, err = run(capsys, "encode", csv_file, "-m", model_file, "-o", tmp_path / "emb.xlsx")
    assert code == 2
    assert "unsupported extension '.xlsx'" in err


def test_reconstruct_same_rows_and_columns(capsys, csv_file, model_file, tmp_path):
    target = tmp_path / "recon.csv"
    code, _, _ = run(capsys, "reconstruct", csv_file, "-m", model_file, "-o", target)
    assert code == 0
    table = pd.read_csv(target)
    assert list(table.columns) == ["timestamp", "value"]
    assert len(table) == 600


def test_panel_long_format_round_trip(capsys, tmp_path):
    rng = np.random.default_rng(3)
    users, days = 30, 12
    rows = []
    for user in range(users):
        phase = rng.uniform(0, 6)
        for day in range(days):
            rows.append({"user": f"u{user}", "day": day, "value": np.sin(day / 2 + phase)})
    path = tmp_path / "panel.csv"
    pd.DataFrame(rows).sample(frac=1, random_state=0).to_csv(path, index=False)
    model = tmp_path / "panel.safetensors"
    code, _, err = run(capsys, "fit", path, "-o", model, "--id-column", "user", "--time-column", "day",
                       "--units", "4", "--epochs", "1", "--seed", "0", "--quiet")
    assert code == 0, err
    scores = tmp_path / "scores.csv"
    code, _, err = run(capsys, "score", path, "-m", model, "--id-column", "user", "--time-column", "day", "-o", scores)
    assert code == 0, err
    table = pd.read_csv(scores)
    assert len(table) == users and list(table.columns) == ["user", "score", "anomaly"]  # the id column keeps its name (issue 23 item 7)
    recon = tmp_path / "recon.csv"
    code, _, err = run(capsys, "reconstruct", path, "-m", model, "--id-column", "user", "--time-column", "day", "-o", recon)
    assert code == 0, err
    table = pd.read_csv(recon)
    assert list(table.columns) == ["user", "step", "value"] and len(table) == users * days
    assert table["step"].tolist()[:days] == list(range(days))
    embeddings = tmp_path / "emb.csv"
    code, _, err = run(capsys, "encode", path, "-m", model, "--id-column", "user", "--time-column", "day", "-o", embeddings)
    assert code == 0, err
    table = pd.read_csv(embeddings)
    assert list(table.columns) == ["user", "z0", "z1", "z2", "z3"] and len(table) == users
    # The model remembers its id column (issue 13, item 7); reading without one is still refused.
    code, _, err = run(capsys, "score", path, "-m", model, "--id-column", "none")
    assert code == 2 and "--id-column" in err


def test_explain_seed_case(capsys):
    code, out, _ = run(capsys, "explain", "--length", "2000", "--timesteps", "40", "--units", "100", "--batch-size", "32")
    assert code == 0
    assert "1961 windows" in out
    for shape in ("(batch, 40, 1) -> (batch, 100)", "(batch, 40, 100)", "(batch, 40, 1)"):
        assert shape in out
    assert "RepeatVector(40)" in out and "TimeDistributed(Dense(1))" in out and "unroll" in out


def test_explain_sequence_warns_identity(capsys):
    code, out, _ = run(capsys, "explain", "--samples", "2000", "--timesteps", "40", "--units", "100", "--architecture", "sequence")
    assert code == 0
    assert "WARNING" in out and "identity" in out


def test_explain_data_file_and_model(capsys, csv_file, model_file):
    code, out, _ = run(capsys, "explain", csv_file, "--timesteps", "20", "--units", "8,4")
    assert code == 0 and "600 timesteps" in out
    code, out, _ = run(capsys, "explain", "-m", model_file)
    assert code == 0 and "(batch, 20, 1)" in out


# ---------------------------------------------------------------- bad input
def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BAD_FIT = [
    ("missing file", lambda d: [d / "nope.csv"], r"no such file"),
    ("directory", lambda d: [d], r"directory"),
    ("no numeric column", lambda d: [_write(d / "text.csv", "name,label\na,b\nc,d\n")], r"no numeric column"),
    ("too short", lambda d: [_write(d / "short.csv", "value\n1\n2\n3\n"), "--timesteps", "10"], r"3 timesteps.*timesteps=10"),
    ("units zero", lambda d: [_write(d / "ok.csv", "value\n" + "\n".join(map(str, range(50)))), "--units", "0"], r"units.*\[0\]|units.*0"),
    ("units text", lambda d: [_write(d / "ok.csv", "value\n1\n"), "--units", "a,b"], r"--units.*'a,b'"),
    ("bad architecture", lambda d: [_write(d / "ok.csv", "value\n1\n"), "--architecture", "dense"], r"architecture.*'dense'"),
    ("bad timesteps", lambda d: [_write(d / "ok.csv", "value\n1\n"), "--timesteps", "x"], r"--timesteps.*'x'"),
    ("zero epochs", lambda d: [_write(d / "ok.csv", "value\n1\n"), "--epochs", "0"], r"epochs.*>= 1.*0"),
    ("bad validation split", lambda d: [_write(d / "ok.csv", "value\n1\n"), "--validation-split", "1.5"], r"--validation-split.*1.5"),
    ("non-integer epochs", lambda d: [_write(d / "ok.csv", "value\n1\n"), "--epochs", "abc"], r"--epochs"),
    ("train end beyond data", lambda d: [_write(d / "ok2.csv", "value\n" + "\n".join(map(str, range(50)))), "--train-end", "500"], r"train_end.*500"),
]


@pytest.mark.parametrize("case", BAD_FIT, ids=[c[0] for c in BAD_FIT])
def test_fit_bad_input_is_one_line_exit_2(capsys, tmp_path, case):
    _, make_args, pattern = case
    code, out, err = run(capsys, "fit", *make_args(tmp_path), "-o", tmp_path / "m.safetensors", "--quiet")
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("lstmae: error: ")
    assert "Traceback" not in err
    import re

    assert re.search(pattern, lines[0]), lines[0]
    assert not (tmp_path / "m.safetensors").exists()


def test_scoring_bad_input(capsys, tmp_path, csv_file, model_file):
    two = tmp_path / "two.csv"
    pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0)}).to_csv(two, index=False)
    cases = [
        (["score", csv_file, "-m", tmp_path / "missing.safetensors"], r"no model file"),
        (["score", two, "-m", model_file], r"value"),  # the model's column is missing from the file
        (["score", two, "-m", model_file, "--columns", "a,b"], r"2 feature\(s\).*fitted on 1"),
        (["detect", csv_file, "-m", _write(tmp_path / "junk.safetensors", "not a model")], r"not a readable lstmae model"),
        (["score", _write(tmp_path / "short.csv", "value\n1\n2\n"), "-m", model_file], r"2 timesteps.*timesteps=20"),
        (["detect", csv_file, "-m", model_file, "--min-gap", "0"], r"min_gap.*0"),
    ]
    import re

    for args, pattern in cases:
        code, _, err = run(capsys, *args)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1, err
        assert re.search(pattern, err), (pattern, err)


def test_truncated_model_is_refused(capsys, tmp_path, csv_file, model_file):
    data = model_file.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, "score", csv_file, "-m", cut)
    assert code == 2 and "lstmae: error:" in err and "Traceback" not in err


def test_console_script_runs_as_a_process(tmp_path):
    """The installed entry point, as a user runs it: a one-line error and exit code 2."""
    script = Path(sys.executable).parent / "lstmae"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "lstmae.cli.app"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([*command, "score", str(tmp_path / "missing.csv"), "-m", "x"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("lstmae: error:") and len(done.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------ --series-column: one global model over many series
@pytest.fixture(scope="module")
def hosts_file(workdir) -> Path:
    """A long table of three hosts' series of different lengths, rows interleaved by time, timestamps repeated across hosts."""
    frames = []
    for number, (host, n) in enumerate((("web", 300), ("db", 260), ("cache", 240))):
        frame = sine_frame(n=n, seed=number)
        frame["value"] += 5 * number
        frame.insert(1, "host", host)
        frames.append(frame)
    path = workdir / "hosts.csv"
    pd.concat(frames).sort_values("timestamp", kind="stable").to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def global_model_file(workdir, hosts_file) -> Path:
    path = workdir / "global.safetensors"
    code = main(["fit", str(hosts_file), "-o", str(path), "--series-column", "host", "--timesteps", "20", "--units", "8,4",
                 "--epochs", "2", "--seed", "0", "--quiet"])
    assert code == 0
    return path


def test_series_column_fits_one_global_model_and_scores_per_series(capsys, hosts_file, global_model_file):
    from lstmae import LSTMAutoencoder

    model = LSTMAutoencoder.load(global_model_file)
    assert list(model.series_states_) == ["web", "db", "cache"]  # order of first appearance
    assert model.metadata_["read"]["series_column"] == "host"
    code, out, _ = run(capsys, "score", hosts_file, "-m", global_model_file)  # the series column is remembered
    assert code == 0
    table = pd.read_csv(pd.io.common.StringIO(out))
    assert list(table.columns) == ["host", "timestamp", "score", "anomaly"]
    raw = pd.read_csv(hosts_file, parse_dates=["timestamp"])
    for host, rows in table.groupby("host", sort=False):  # the slow way: each host through the Python API alone
        series = raw[raw["host"] == host].set_index("timestamp")[["value"]]
        expected = model.anomaly_score({host: series})[host]
        np.testing.assert_allclose(rows["score"].to_numpy(), expected.to_numpy(), rtol=1e-12)
        threshold = model.series_states_[host].threshold
        assert rows["anomaly"].tolist() == (expected.to_numpy() > threshold).astype(int).tolist()


def test_series_column_detect_prints_each_series(capsys, hosts_file, global_model_file, tmp_path):
    code, out, _ = run(capsys, "detect", hosts_file, "-m", global_model_file, "--threshold", "0.5", "-o", tmp_path / "iv.csv")
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("host ")] == ["host web:", "host db:", "host cache:"]
    intervals = pd.read_csv(tmp_path / "iv.csv")
    assert intervals.columns[0] == "host" and set(intervals["host"]) <= {"web", "db", "cache"}


def test_series_column_refusals(capsys, hosts_file, global_model_file, tmp_path):
    code, _, err = run(capsys, "fit", hosts_file, "-o", tmp_path / "m.safetensors", "--series-column", "host", "--id-column", "host")
    assert code == 2 and "give one" in err
    code, _, err = run(capsys, "fit", hosts_file, "-o", tmp_path / "m.safetensors", "--series-column", "sensor")
    assert code == 2 and "series_column 'sensor' not found" in err
    code, _, err = run(capsys, "encode", hosts_file, "-m", global_model_file, "-o", tmp_path / "e.npy")
    assert code == 2 and "go to a .csv or .parquet table" in err
    code, _, err = run(capsys, "fit", hosts_file, "-o", tmp_path / "m.safetensors", "--strategy", "ddp", "--devices", "2")
    assert code == 2 and "set random_state" in err and "--seed" in err
    code, _, err = run(capsys, "fit", hosts_file, "-o", tmp_path / "m.safetensors", "--devices", "0", "--seed", "0")
    assert code == 2 and "trainer_kwargs['devices'] must be an integer >= 1" in err


def test_help_says_how_series_and_id_columns_differ(capsys):
    _, out, _ = run(capsys, "fit", "--help")
    flat = " ".join(out.split())
    assert "--series-column" in flat and "independent series" in flat and "samples of one panel" in flat


def test_fit_says_when_early_stopping_ended_training(tmp_path, capsys):
    """Issue 23 item 8: the summary names the epoch early stopping ended at and the best one, whose weights the model has."""
    import numpy as np

    data = tmp_path / "noise.csv"
    data.write_text("value\n" + "\n".join(f"{v:.6f}" for v in np.random.default_rng(1).normal(size=1500)) + "\n")
    code = main(["fit", str(data), "-o", str(tmp_path / "m.safetensors"), "--timesteps", "20", "--units", "4",
                 "--epochs", "40", "--patience", "1", "--random-state", "0"])
    assert code == 0
    lines = capsys.readouterr().err.splitlines()
    stopped = [line for line in lines if line.startswith("early stopping ended training at epoch ")]
    assert len(stopped) == 1 and " of 40 (best val_loss " in stopped[0] and stopped[0].endswith("the model has that epoch's weights")
    assert not any("train longer" in line for line in lines)


def test_explain_data_describes_the_model_fit_would_train(tmp_path, capsys):
    """Issue 23 item 8: `explain DATA` picks timesteps (and the other defaults) as `fit` does for the same data."""
    import warnings

    from lstmae import LSTMAutoencoder

    n, period = 3000, 125
    values = np.sin(2 * np.pi * np.arange(n) / period) + 0.05 * np.random.default_rng(0).standard_normal(n)
    data = tmp_path / "periodic.csv"
    pd.DataFrame({"value": values}).to_csv(data, index=False)
    code, out, _ = run(capsys, "explain", data)
    assert code == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = LSTMAutoencoder(epochs=1, verbose=0, random_state=0).fit(pd.read_csv(data))
    assert fitted.timesteps_ != 40  # the old explain default would not match
    assert f"timesteps={fitted.timesteps_}" in out
    assert LSTMAutoencoder().explain(pd.read_csv(data)) in out  # the walk of the default estimator, not explain's own numbers
    assert "units=64" not in out
