"""Panels through the command line: a long clicks table (fit / score / detect), and `evaluate --format panel`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmae.cli.app import main
from clirun import run
from paths import FILES

DATA = FILES / "panel"


@pytest.fixture(scope="module")
def clicks(tmp_path_factory) -> Path:
    """60 users x 8 days of clicks, long format; users 50-52 burst."""
    rng = np.random.default_rng(0)
    users, days = 60, 8
    counts = rng.poisson(10 * (1 + 0.3 * np.sin(2 * np.pi * np.arange(days) / 7)), size=(users, days)).astype(float)
    counts[50:53, 2:6] *= 6
    path = tmp_path_factory.mktemp("clicks") / "clicks.csv"
    pd.DataFrame({
        "user": np.repeat([f"u{i:02d}" for i in range(users)], days),
        "day": np.tile(pd.date_range("2026-01-01", periods=days).strftime("%Y-%m-%d"), users),
        "clicks": counts.ravel(),
    }).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def clicks_model(clicks) -> Path:
    path = clicks.with_name("clicks.safetensors")
    code = main(["fit", str(clicks), "--id-column", "user", "--train-end", "50", "-o", str(path),
                 "--units", "4", "--epochs", "2", "--seed", "0", "--quiet"])
    assert code == 0
    return path


def test_detect_lists_each_anomalous_user_with_its_id_and_the_column_name(capsys, clicks, clicks_model, tmp_path):
    code, _, _ = run(capsys, "score", clicks, "-m", clicks_model, "-o", tmp_path / "scores.csv")
    assert code == 0
    scores = pd.read_csv(tmp_path / "scores.csv")
    code, out, err = run(capsys, "detect", clicks, "-m", clicks_model, "-o", tmp_path / "found.csv")
    assert code == 0, err
    found = pd.read_csv(tmp_path / "found.csv")
    flagged = scores[scores["anomaly"] == 1]
    assert list(found.columns) == ["sample", "user", "score", "severity", "top_features"]  # the file's id column name
    assert sorted(found["user"]) == sorted(flagged["user"])  # one row per user, never an interval of users
    assert {"u50", "u51", "u52"} <= set(found["user"])
    assert (found["top_features"] == "clicks (100%)").all()
    assert f"{len(found)} anomalous sample(s)" in out and "start" not in out


def test_detect_on_a_panel_refuses_min_gap(capsys, clicks, clicks_model):
    code, _, err = run(capsys, "detect", clicks, "-m", clicks_model, "--min-gap", "3")
    assert code == 2 and "leave min_gap out" in err


def auc_loop(truth: np.ndarray, scores: np.ndarray) -> float:
    """Slow reference AUC-ROC: the share of (anomaly, normal) pairs ranked right, ties half."""
    pairs = [(a, b) for a in scores[truth == 1] for b in scores[truth == 0]]
    return float(np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs]))


def test_evaluate_format_panel_on_ts_files_fits_each_class_and_scores_the_rest(capsys, tmp_path):
    from lstmae import LSTMAutoencoder
    from lstmae.data.ts import read_ts

    code, out, err = run(capsys, "evaluate", DATA, "--format", "panel", "--params", '{"epochs": 1, "units": 4}',
                         "--random-state", "0", "-o", tmp_path / "rows.csv", "--quiet")
    assert code == 0, err
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert list(rows["normal_class"]) == ["up", "down"] and list(rows["anomalies"]) == [2, 2]
    train, test = read_ts(DATA / "Tiny_TRAIN.ts"), read_ts(DATA / "Tiny_TEST.ts", length=6)
    for row in rows.itertuples():
        model = LSTMAutoencoder(epochs=1, units=4, random_state=0, verbose=0).fit(train.values[train.labels == row.normal_class])
        truth = (test.labels != row.normal_class).astype(int)
        assert row.auc_roc == pytest.approx(auc_loop(truth, model.anomaly_score(test.values)))
    assert "mean over" not in out and "Tiny: mean" in out


def test_evaluate_format_panel_on_a_npy_with_labels(capsys, tmp_path):
    from lstmae.data.ts import read_ts

    train, test = read_ts(DATA / "Tiny_TRAIN.ts"), read_ts(DATA / "Tiny_TEST.ts", length=6)
    np.save(tmp_path / "tiny.npy", np.concatenate([train.values, test.values]))
    (tmp_path / "labels.txt").write_text("\n".join([*train.labels, *test.labels]) + "\n")
    code, out, err = run(capsys, "evaluate", tmp_path / "tiny.npy", "--format", "panel", "--labels", tmp_path / "labels.txt",
                         "--train-end", "6", "--normal-class", "down", "--params", '{"epochs": 1, "units": 4}',
                         "--random-state", "0", "-o", tmp_path / "rows.csv", "--quiet")
    assert code == 0, err
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert list(rows["normal_class"]) == ["down"] and rows["n_train"].tolist() == [3] and rows["n_test"].tolist() == [4]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ((), r"a \.npy panel needs --labels FILE"),
        (("--labels", "LABELS", "--train-end", "12"), r"train_end must be an integer in \[1, 9\]"),
        (("--labels", "LABELS", "--normal-class", "sideways"), r"--normal-class 'sideways' is not a class of tiny"),
    ],
)
def test_evaluate_format_panel_errors(capsys, tmp_path, extra, match):
    import re

    np.save(tmp_path / "tiny.npy", np.zeros((10, 6, 1)))
    (tmp_path / "labels.txt").write_text("\n".join(["a", "b"] * 5))
    args = [str(tmp_path / "labels.txt") if a == "LABELS" else a for a in extra]
    code, _, err = run(capsys, "evaluate", tmp_path / "tiny.npy", "--format", "panel", *args, "--quiet")
    assert code == 2 and re.search(match, " ".join(err.split())), err
