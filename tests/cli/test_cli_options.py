"""Every estimator parameter from every door (issue 22, item 5), fast errors (issue 23, item 4) and
whole command summaries in ``lstmae --help`` (issue 23, item 9)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from io import StringIO

import numpy as np
import pandas as pd
import pytest
import typer

from clirun import run
from lstmae import params
from lstmae.cli.app import app
from lstmae.cli.options import EstimatorOptions, first_sentence, flag, read_params
from lstmae.errors import ParameterError
from lstmae.estimator import LSTMAutoencoder

#: Each parameter with a value option: a bad text for it, and the value the estimator is given.
#: Written by hand; a new parameter fails `test_every_option_refuses_a_bad_value_as_the_estimator_does` until it has a row.
BAD = {
    "timesteps": ("1", 1),
    "stride": ("0", 0),
    "frame": ("0", 0),
    "units": ("0", 0),
    "architecture": ("dense", "dense"),
    "batch_size": ("0", 0),
    "epochs": ("2.5", 2.5),
    "validation_split": ("1.5", 1.5),
    "learning_rate": ("0", 0.0),
    "patience": ("0", 0),
    "windows_per_epoch": ("0", 0),
    "windows_per_series": ("-3", -3),
    "series_scaling": ("pooled", "pooled"),
    "score_stride": ("fast", "fast"),
    "aggregation": ("max", "max"),
    "scorer": ("distance", "distance"),
    "threshold": ("-1", -1.0),
    "contamination": ("0.7", 0.7),
    "random_state": ("-1", -1),
    "device": ("tpu", "tpu"),
    "verbose": ("-1", -1),
}
SWITCHES = {"shuffle", "normalize_errors"}  # --name/--no-name: no value that could be bad


def _options(*path: str) -> dict[str, object]:
    """{option string: click parameter} of ``lstmae PATH...``."""
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {opt: param for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def _error(capsys, *args: object) -> str:
    code, _, err = run(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("lstmae: error: "), (code, err)
    assert "Traceback" not in err
    return lines[0][len("lstmae: error: "):]


# ------------------------------------------------------------------ every parameter has an option
def test_the_specs_follow_the_table_and_the_estimator():
    assert list(params.SPECS) == list(params.PARAMETERS)
    assert {name: spec.default for name, spec in params.SPECS.items()} == LSTMAutoencoder().get_params()
    for name, spec in params.SPECS.items():
        assert spec.help.strip(), name
        if spec.text == "python":  # no option: the table says why
            assert len(spec.python_only) > 20, name
        params.check(name, spec.default)  # the shown default is one the table takes


@pytest.mark.parametrize("verb", [("fit",), ("fleet", "fit"), ("evaluate",)], ids=" ".join)
def test_every_parameter_has_an_option(verb):
    options = _options(*verb)
    for name, spec in params.SPECS.items():
        if spec.text == "python":
            continue
        assert flag(name) in options, (verb, name)
        if name in SWITCHES:
            assert f"--no-{name.replace('_', '-')}" in options, name
    assert "--params" in options
    for kept in ("--seed", "--timesteps", "--units", "--epochs"):  # the spellings that existed stay
        assert kept in options, kept
    if verb == ("fit",):
        for kept in ("--batch-size", "--stride", "--validation-split", "--learning-rate", "--patience", "--threshold",
                     "--contamination", "--device", "--quiet", "-q", "-o", "--resume", "--devices", "--strategy"):
            assert kept in options, kept


def test_fit_help_lists_every_parameter(capsys):
    code, out, _ = run(capsys, "fit", "--help")
    assert code == 0
    for name, spec in params.SPECS.items():
        if spec.text != "python":
            assert flag(name) in out, name
    flat = " ".join(out.split())
    assert "--scorer <str> What a score measures" in flat and "[default: auto]" in flat
    assert "--windows-per-epoch <int> Windows drawn afresh" in flat and "[default: 2048]" in flat


@pytest.mark.parametrize("verb", [("fit",), ("fleet", "fit"), ("evaluate",)], ids=" ".join)
def test_every_option_refuses_a_bad_value_as_the_estimator_does(capsys, tmp_path, verb):
    valued = {name for name, spec in params.SPECS.items() if spec.text not in ("python", "switch")}
    assert set(BAD) == valued  # a new parameter needs a bad value here
    series = np.sin(np.arange(300) / 3.0)
    where = {("fit",): ["-o", tmp_path / "out"], ("fleet", "fit"): ["-o", tmp_path / "out", "--series-column", "s"],
             ("evaluate",): ["--format", "ucr"]}[verb]
    for name, (text, value) in BAD.items():
        with pytest.raises(ParameterError) as info:
            LSTMAutoencoder(**{"verbose": 0, name: value}).fit(series)
        expected = str(info.value)
        assert expected.startswith(name), expected
        # the data file does not exist: the option must be refused before the data is looked at
        message = _error(capsys, *verb, tmp_path / "nowhere.csv", *where, flag(name), text)
        assert message == flag(name) + expected[len(name):], (name, message, expected)


@pytest.mark.parametrize(
    ("args", "message"),
    [  # the contract, written out by hand
        (["--batch-size", "0"], "--batch-size must be an integer >= 1, got 0."),
        (["--epochs", "many"], "--epochs must be an integer >= 1, got 'many'."),
        (["--scorer", "distance"], "--scorer must be one of ['auto', 'reconstruction', 'latent', 'neighbours', 'input', 'combined'], got 'distance'."),
        (["--windows-per-epoch", "0"], "--windows-per-epoch must be None or an integer >= 1, got 0."),
        (["--seed", "-1"], "--random-state must be None or an integer >= 0, got -1."),
        (["--units", "64,99999"], "--units must be in [1, 4096], got [64, 99999] (every entry is one layer's width); e.g. 32 or (64, 16)."),
        (["--timesteps", "5", "--score-stride", "6"],  # a rule between two parameters: the estimator's message as it is
         "score_stride=6 is larger than timesteps=5: scoring windows would skip timesteps; use score_stride <= 5 or 'auto'."),
        (["--scorer", "latent", "--architecture", "sequence"],
         "scorer='latent' compares window embeddings, which only the 'repeat' design has (architecture='sequence' has none); "
         "use architecture='repeat' or scorer='reconstruction'."),
    ],
)
def test_option_messages(capsys, tmp_path, args, message):
    assert _error(capsys, "fit", tmp_path / "nowhere.csv", "-o", tmp_path / "m.safetensors", *args) == message


def test_words_and_none_are_read_from_text():
    given = {"timesteps": "AUTO", "threshold": "Pot", "windows_per_epoch": "none", "windows_per_series": "None",
             "contamination": "none", "units": "16, 4", "validation_split": "0", "shuffle": False}
    assert EstimatorOptions(given).params() == {
        "timesteps": "auto", "threshold": "pot", "windows_per_epoch": None, "windows_per_series": None,
        "contamination": None, "units": [16, 4], "validation_split": 0.0, "shuffle": False,
    }


# ------------------------------------------------------------------ --params FILE
def test_params_file_json_and_toml_and_options_override_it(tmp_path):
    toml = tmp_path / "p.toml"
    toml.write_text('epochs = 3\nscorer = "reconstruction"\nunits = [8, 4]\nwindows_per_epoch = "none"\n'
                    '[trainer_kwargs]\nprecision = "64-true"\n')
    chosen = EstimatorOptions({"epochs": "5"}, str(toml)).params(trainer_kwargs={"devices": 1})
    assert chosen == {"epochs": 5, "scorer": "reconstruction", "units": [8, 4], "windows_per_epoch": None,
                      "trainer_kwargs": {"precision": "64-true", "devices": 1}}
    as_json = tmp_path / "p.JSON"
    as_json.write_text(json.dumps({"epochs": 3, "random_state": 7, "shuffle": False}))
    assert read_params(str(as_json)) == {"epochs": 3, "random_state": 7, "shuffle": False}
    assert read_params('{"epochs": 2}') == {"epochs": 2}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("p.toml", "epoch = 5\n", r"^--params {p} names unknown estimator parameter\(s\) epoch=5; did you mean epochs\? Known: "),
        ("p.json", '{"epochs": 0}', r"^--params {p}: epochs must be an integer >= 1, got 0\.$"),
        ("p.toml", 'scorer = "distance"\n', r"^--params {p}: scorer must be one of .*got 'distance'\.$"),
        ("p.toml", "epochs = \n", r"^--params {p} is not valid TOML \("),
        ("p.json", "{epochs: 5}", r"^--params {p} is not valid JSON \("),
        ("p.json", "[5]", r"^--params {p} must be a JSON object \(or a TOML table\) of parameter names and values such as"),
        ("p.yaml", "epochs: 5\n", r"^--params '{p}': give a \.json or \.toml file"),
        (None, None, r"^--params: no such file: {p}; check the path"),
    ],
)
def test_params_file_errors_are_one_line(capsys, tmp_path, name, content, message):
    import re

    path = tmp_path / (name or "missing.toml")
    if content is not None:
        path.write_text(content)
    for verb in (["fit", tmp_path / "nowhere.csv", "-o", tmp_path / "m.safetensors"],
                 ["fleet", "fit", tmp_path / "nowhere.csv", "-o", tmp_path / "f", "--series-column", "s"]):
        got = _error(capsys, *verb, "--params", path)
        assert re.search(message.format(p=re.escape(str(path))), got), got


# ------------------------------------------------------------------ end to end: scoring by reconstruction error alone
def test_fit_scorer_reconstruction_end_to_end(capsys, tmp_path):
    rng = np.random.default_rng(0)
    values = np.sin(2 * np.pi * np.arange(240) / 12) + 0.05 * rng.standard_normal(240)
    values[200:206] = 1.5  # a flat stretch the model has not seen
    data = tmp_path / "series.csv"
    pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=240, freq="h"), "value": values}).to_csv(data, index=False)
    settings = tmp_path / "settings.toml"
    settings.write_text('units = [16]\nepochs = 9\nwindows_per_epoch = 128\n')
    model_path = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "fit", data, "-o", model_path, "--scorer", "reconstruction", "--timesteps", "12",
                       "--units", "4", "--epochs", "2", "--no-shuffle", "--aggregation", "timestep", "--seed", "0",
                       "--params", settings, "--quiet")
    assert code == 0, err
    model = LSTMAutoencoder.load(model_path)
    chosen = model.get_params()
    assert chosen["scorer"] == "reconstruction" and chosen["aggregation"] == "timestep" and chosen["shuffle"] is False
    assert chosen["epochs"] == 2 and chosen["units"] in (4, (4,), [4])  # the options win over the file
    assert chosen["windows_per_epoch"] == 128  # the file's, where no option was given
    assert len(model.history_["loss"]) <= 2
    code, out, err = run(capsys, "score", data, "-m", model_path)
    assert code == 0, err
    table = pd.read_csv(StringIO(out))
    frame = pd.read_csv(data, parse_dates=["timestamp"]).set_index("timestamp")
    np.testing.assert_allclose(table["score"].to_numpy(), model.anomaly_score(frame), rtol=1e-12)
    # scoring by reconstruction error: with aggregation='timestep' and normalized errors, a timestep's score
    # is its squared error in the scaled units over the feature's training level, averaged over the windows
    recon = model.reconstruct(frame)
    scaled_error = ((frame["value"].to_numpy() - recon["value"].to_numpy()) / model.scaler_scale_[0]) ** 2
    assert np.corrcoef(scaled_error, table["score"].to_numpy())[0, 1] > 0.9


# ------------------------------------------------------------------ errors are fast: nothing heavy imported
def test_bad_input_is_refused_without_importing_torch_or_lightning(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model, but a file that exists")
    data = tmp_path / "ok.csv"
    data.write_text("value\n" + "\n".join(str(i % 7) for i in range(60)) + "\n")
    missing = tmp_path / "nope.csv"
    cases = [
        ["fit", missing, "-o", tmp_path / "m.safetensors"],
        ["fit", data, "-o", tmp_path / "m.safetensors", "--timesteps", "0"],
        ["fit", data, "-o", tmp_path / "m.safetensors", "--scorer", "nope"],
        ["fit", data, "-o", tmp_path / "m.safetensors", "--missing", "drop"],
        ["fit", data, "-o", tmp_path, "--epochs", "1"],
        ["fit", data, "-o", tmp_path / "m.safetensors", "--resume"],
        ["fit", data, "-o", tmp_path / "m.safetensors", "--params", tmp_path / "none.toml"],
        ["score", data, "-m", tmp_path / "nope.safetensors"],
        ["score", missing, "-m", junk],
        ["score", data, "-m", junk, "--duplicates", "last"],
        ["detect", missing, "-m", junk],
        ["detect", data, "-m", junk, "--min-gap", "0"],
        ["detect", data, "-m", junk, "--threshold", "-1"],
        ["encode", data, "-m", junk, "-o", tmp_path / "e.xlsx"],
        ["encode", data, "-m", junk, "-o", tmp_path / "e.npy", "--stride", "0"],
        ["reconstruct", missing, "-m", junk],
        ["explain", "-m", tmp_path / "nope.safetensors"],
        ["explain", missing],
        ["explain", "--length", "100", "--timesteps", "0"],
        ["report", missing, "-m", junk, "-o", tmp_path / "r.html"],
        ["evaluate", tmp_path / "nope", "--format", "ucr"],
        ["evaluate", data, "--format", "labelled-csv", "--epochs", "0"],
        ["fleet", "fit", missing, "--series-column", "s", "-o", tmp_path / "f"],
        ["fleet", "fit", data, "--series-column", "s", "-o", tmp_path / "f", "--timesteps", "ten"],
        ["fleet", "score", data, "-m", tmp_path, "-o", tmp_path / "s"],
        ["fleet", "detect", missing, "-m", tmp_path],
    ]
    script = textwrap.dedent(
        """
        import json, sys
        from lstmae.cli.app import main
        cases = json.loads(sys.argv[1])
        codes = [main(case) for case in cases]
        heavy = sorted(name for name in ("torch", "lightning", "lightning.pytorch", "lstmae.estimator") if name in sys.modules)
        print(json.dumps({"codes": codes, "heavy": heavy}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script, json.dumps([[str(a) for a in case] for case in cases])],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert found["codes"] == [2] * len(cases), list(zip(found["codes"], errors))
    assert len(errors) == len(cases) and all(line.startswith("lstmae: error: ") for line in errors), errors
    assert found["heavy"] == [], found["heavy"]


# ------------------------------------------------------------------ lstmae --help: whole first sentences
def test_top_level_help_shows_each_command_first_sentence(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    flat = " ".join(out.split())
    for sentence in (  # written out by hand from the commands' docstrings
        "fit Train an autoencoder on DATA (or its first part, --train-end) and save it.",
        "detect Find anomalous intervals of a series, or anomalous samples of a panel (one row each, with its id), "
        "and print them as a table (with --series-column: one table per series).",
        "explain Explain timesteps, features, samples, batches, units, return_sequences, RepeatVector, "
        "TimeDistributed and unroll with your own numbers, layer by layer.",
        "fleet One model per series of a long table (a --series-column names each row's series): fit, score and "
        "detect many series at once, on local processes or a Ray cluster.",
    ):
        assert sentence in flat, sentence
    assert "..." not in out.split("Commands:")[1]  # click's mark of a summary cut short
    code, out, _ = run(capsys, "fleet", "--help")
    assert "fit Fit one model per series of DATA; exit 3 if some series failed (the others are fitted)." in " ".join(out.split())
    assert "..." not in out.split("Commands:")[1]


@pytest.mark.parametrize(
    ("doc", "sentence"),
    [
        ("Do this, e.g. that. Then more.", "Do this, e.g. that."),
        ("One line\n    wrapped here.\n\n    A second paragraph.", "One line wrapped here."),
        ("No period at all", "No period at all"),
        ("Version 1.5 is out. Yes.", "Version 1.5 is out."),
    ],
)
def test_first_sentence(doc, sentence):
    assert first_sentence(doc) == sentence
