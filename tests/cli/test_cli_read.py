"""A model remembers how its data was read (issue 13, item 7).

``lstmae fit DATA --id-column user --time-column day -o m`` saves both columns
in the model file; ``score``, ``detect``, ``encode`` and ``reconstruct`` then
read the same file without the flags, with the same results; a flag still
overrides, ``none`` reads without the model's column, and a model file
written without this record behaves as before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmae.cli.app import main
from lstmae.errors import ParameterError
from lstmae.estimator import LSTMAutoencoder
from test_cli import run


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("read")


@pytest.fixture(scope="module")
def clicks(root) -> Path:
    """A long-format panel: 20 users x 12 days, rows shuffled; neither column has a name lstmae guesses."""
    rng = np.random.default_rng(0)
    rows = [
        {"user": f"u{user}", "day": day, "clicks": np.sin(day / 2 + phase)}
        for user, phase in enumerate(rng.uniform(0, 6, 20))
        for day in range(12)
    ]
    path = root / "clicks.csv"
    pd.DataFrame(rows).sample(frac=1, random_state=0).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def panel_model(root, clicks) -> Path:
    path = root / "panel.safetensors"
    code = main(["fit", str(clicks), "--id-column", "user", "--time-column", "day", "-o", str(path),
                 "--units", "4", "--epochs", "1", "--seed", "0", "--quiet"])
    assert code == 0
    return path


@pytest.fixture(scope="module")
def sales(root) -> Path:
    """A series whose time column is called 'when' (not a name lstmae guesses), rows out of order."""
    n = 160
    values = np.sin(2 * np.pi * np.arange(n) / 16) + 0.05 * np.random.default_rng(1).standard_normal(n)
    frame = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=n, freq="h").astype(str), "sales": values})
    path = root / "sales.csv"
    frame.iloc[::-1].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def series_model(root, sales) -> Path:
    path = root / "series.safetensors"
    code = main(["fit", str(sales), "--time-column", "when", "-o", str(path), "--timesteps", "16", "--units", "4",
                 "--epochs", "1", "--seed", "0", "--quiet"])
    assert code == 0
    return path


def _output(capsys, tmp_path: Path, verb: str, data: Path, model: Path, *flags: str) -> str:
    """What a verb writes (stdout, or the file it was told to write), for comparing two runs."""
    args: list[object] = [verb, data, "-m", model, *flags]
    target = tmp_path / f"{verb}-{len(flags)}.csv"
    if verb == "encode":
        args += ["-o", target]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    return target.read_text() if verb == "encode" else out


@pytest.mark.parametrize("verb", ["score", "detect", "encode", "reconstruct"])
def test_panel_verbs_read_as_during_fit_without_flags(capsys, tmp_path, clicks, panel_model, verb):
    flagged = _output(capsys, tmp_path, verb, clicks, panel_model, "--id-column", "user", "--time-column", "day")
    plain = _output(capsys, tmp_path, verb, clicks, panel_model)
    assert plain == flagged
    if verb == "score":
        table = pd.read_csv(pd.io.common.StringIO(plain))
        # one row per user, in order of first appearance in the shuffled file
        assert table["user"].tolist() == pd.read_csv(clicks)["user"].drop_duplicates().tolist()  # named as in the file


@pytest.mark.parametrize("verb", ["score", "detect", "encode", "reconstruct"])
def test_series_verbs_read_as_during_fit_without_flags(capsys, tmp_path, sales, series_model, verb):
    flagged = _output(capsys, tmp_path, verb, sales, series_model, "--time-column", "when")
    plain = _output(capsys, tmp_path, verb, sales, series_model)
    assert plain == flagged
    if verb in ("score", "reconstruct"):
        table = pd.read_csv(pd.io.common.StringIO(plain))
        assert table.columns[0] == "when" and table["when"].is_monotonic_increasing  # read by time, sorted


def test_the_model_file_records_the_columns(panel_model, series_model):
    assert LSTMAutoencoder.load(panel_model).metadata_ == {
        "read": {"id_column": "user", "time_column": "day", "series_column": None}
    }
    assert LSTMAutoencoder.load(series_model).metadata_["read"] == {"id_column": None, "time_column": "when", "series_column": None}


def test_a_flag_overrides_the_model(capsys, tmp_path, root, sales, series_model):
    renamed = root / "renamed.csv"
    pd.read_csv(sales).rename(columns={"when": "at"}).to_csv(renamed, index=False)
    code, _, err = run(capsys, "score", renamed, "-m", series_model)
    assert code == 2
    # The error says where the column came from and how to choose another one.
    assert "time_column 'when' not found" in err and "fitted with --time-column when" in err
    assert "--time-column none" in err and len(err.strip().splitlines()) == 1
    overridden = _output(capsys, tmp_path, "score", renamed, series_model, "--time-column", "at")
    remembered = _output(capsys, tmp_path, "score", sales, series_model)
    assert overridden.replace("at,", "when,", 1) == remembered


def test_none_reads_without_the_models_column(capsys, tmp_path, root, sales, series_model):
    plain = root / "no-time.csv"
    frame = pd.read_csv(sales).sort_values("when")
    frame[["sales"]].to_csv(plain, index=False)
    scores = pd.read_csv(pd.io.common.StringIO(_output(capsys, tmp_path, "score", plain, series_model, "--time-column", "none")))
    remembered = pd.read_csv(pd.io.common.StringIO(_output(capsys, tmp_path, "score", sales, series_model)))
    assert list(scores.columns) == ["index", "score", "anomaly"]  # row positions: no time column
    np.testing.assert_array_equal(scores["score"].to_numpy(), remembered["score"].to_numpy())


def test_none_on_a_panel_model_is_refused(capsys, clicks, panel_model):
    code, _, err = run(capsys, "score", clicks, "-m", panel_model, "--id-column", "none")
    assert code == 2 and "pass --id-column as during fit" in err


def test_a_model_without_the_record_behaves_as_before(capsys, tmp_path, clicks, panel_model):
    old = tmp_path / "old.safetensors"
    LSTMAutoencoder.load(panel_model).save(old, metadata={})  # no metadata: as files written before item 7 (a re-save keeps metadata_ unless told)
    assert LSTMAutoencoder.load(old).metadata_ == {}
    code, _, err = run(capsys, "score", clicks, "-m", old)
    assert code == 2 and "pass --id-column as during fit" in err
    flagged = _output(capsys, tmp_path, "score", clicks, old, "--id-column", "user", "--time-column", "day")
    assert flagged == _output(capsys, tmp_path, "score", clicks, panel_model)


def test_fit_takes_none_as_no_column(capsys, tmp_path, sales):
    path = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "fit", sales, "-o", path, "--time-column", "when", "--id-column", "none",
                       "--timesteps", "16", "--units", "2", "--epochs", "1", "--seed", "0", "--quiet")
    assert code == 0, err
    assert LSTMAutoencoder.load(path).metadata_["read"]["id_column"] is None


def test_save_refuses_metadata_that_is_not_json(panel_model, tmp_path):
    model = LSTMAutoencoder.load(panel_model)
    with pytest.raises(ParameterError, match=r"metadata must be a mapping of JSON values, got \{'when': "):
        model.save(tmp_path / "m.safetensors", metadata={"when": object()})
    assert not (tmp_path / "m.safetensors").exists()
    model.save(tmp_path / "m.safetensors", metadata={"note": [1, "two", None]})
    assert LSTMAutoencoder.load(tmp_path / "m.safetensors").metadata_ == {"note": [1, "two", None]}


def test_an_npy_file_ignores_the_remembered_columns(capsys, tmp_path, sales, series_model):
    values = tmp_path / "sales.npy"
    np.save(values, pd.read_csv(sales).sort_values("when")["sales"].to_numpy())
    code, _, err = run(capsys, "score", values, "-m", series_model)
    # The file is read (a .npy file given a time column is refused before reading); the model
    # fitted on a named column then refuses the generated name, as it did before item 7.
    assert code == 2 and "time_column" not in err and "X has columns ['value']" in err
