"""`lstmae evaluate`: its error cases (one line, exit 2) and one tiny end-to-end run."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmae.evaluation import metrics
from clirun import run

TINY = json.dumps({"epochs": 1, "timesteps": 10, "units": 4, "batch_size": 64, "validation_split": 0.0})


@pytest.fixture(scope="module")
def labelled_csv(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    n = 240
    values = np.sin(2 * np.pi * np.arange(n) / 10) + 0.05 * rng.standard_normal(n)
    labels = np.zeros(n, dtype=int)
    values[200:210] = 0.9
    labels[200:210] = 1
    path = tmp_path_factory.mktemp("evaluate") / "toy.csv"
    pd.DataFrame({"value": values, "label": labels}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def ucr_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ucr")
    with gzip.open(folder / "001_UCR_Anomaly_Toy_100_150_160.txt.gz", "wt") as stream:
        stream.write("\r\n".join(str(v) for v in np.sin(np.arange(200) / 3)))
    return folder


def test_help_names_the_options(capsys):
    code, out, _ = run(capsys, "evaluate", "--help")
    assert code == 0
    for option in ("--format", "--output", "--limit", "--series", "--train-end", "--random-state", "--params"):
        assert option in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["{tmp}/missing", "--format", "ucr"], "does not exist"),
        (["{csv}", "--format", "arff"], "format must be one of ucr, nab, smap, labelled-csv; got 'arff'"),
        (["{csv}"], "Missing option '--format'"),
        (["{ucr}", "--format", "ucr", "--train-end", "5"], "labelled-csv only"),
        (["{csv}", "--format", "labelled-csv", "--train-end", "9999"], r"train_end must lie in \[1, 240\)"),
        (["{csv}", "--format", "labelled-csv", "--params", "{epochs: 5}"], "--params must be a JSON object"),
        (["{csv}", "--format", "labelled-csv", "--params", "[5]"], "--params must be a JSON object"),
        (["{csv}", "--format", "labelled-csv", "--params", '{"epoch": 5}'], "unknown estimator parameter.*epoch"),
        (["{csv}", "--format", "labelled-csv", "--params", '{"epochs": 0}'], "epochs"),
        (["{csv}", "--format", "labelled-csv", "--limit", "0"], "limit must be an integer >= 1, got 0"),
        (["{ucr}", "--format", "ucr", "--series", "*ECG*"], r"no series found .* matching '\*ECG\*'"),
        (["{csv}", "--format", "labelled-csv", "-o", "{tmp}/results.txt"], "unsupported extension '.txt'"),
        (["{ucr}", "--format", "nab"], "not a NAB folder"),
        (["{csv}", "--format", "ucr"], "not a labelled UCR file name"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, labelled_csv, ucr_folder, args, message):
    places = {"{tmp}": str(tmp_path), "{csv}": str(labelled_csv), "{ucr}": str(ucr_folder)}
    filled = [places.get(a.split("/")[0], a.split("/")[0]) + a[len(a.split("/")[0]):] for a in args]
    code, out, err = run(capsys, "evaluate", *filled)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmae: error: "), err
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in err


def test_end_to_end_on_a_tiny_labelled_csv(capsys, tmp_path, labelled_csv):
    results = tmp_path / "results.csv"
    code, out, err = run(capsys, "evaluate", labelled_csv, "--format", "labelled-csv", "--train-end", "150",
                         "--params", TINY, "--random-state", "0", "-o", results)
    assert code == 0, err
    assert "csv/toy" in out and "VUS-PR" in out and "mean" in out
    assert "[1/1] csv/toy" in err
    table = pd.read_csv(results)
    assert table.loc[0, "status"] == "ok" and table.loc[0, "n"] == 240 and table.loc[0, "train_end"] == 150
    assert table.loc[0, "window"] == metrics.sliding_window(pd.read_csv(labelled_csv)[["value"]].to_numpy())
    for column in ("vus_pr", "auc_pr", "vus_roc", "auc_roc"):
        assert 0.0 <= table.loc[0, column] <= 1.0
    assert np.isnan(table.loc[0, "ucr_top1"])  # top-1 is for UCR series only
    assert table.loc[0, "seconds"] >= table.loc[0, "fit_seconds"] > 0
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic writer left nothing behind
