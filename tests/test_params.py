"""`lstmae.params`: the one parameter table, and the same message for the same bad value everywhere.

The same bad values go through the estimator (`fit`), `explain_shapes`,
``lstmae fit``, ``lstmae explain``, `evaluation.parse_params` and
``lstmae evaluate --params``; every one that takes the parameter must refuse
it with one identical message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pytest

from lstmae import params
from lstmae.cli.app import main
from lstmae.errors import ParameterError
from lstmae.estimator import LSTMAutoencoder
from lstmae.evaluation.series import parse_params
from lstmae.reports.explain import explain_shapes

EXPLAIN_KEYS = {"timesteps", "units", "architecture", "stride", "batch_size", "validation_split", "frame"}
CLI_EXPLAIN_OPTIONS = {"--timesteps", "--units", "--architecture", "--batch-size", "--stride", "--validation-split", "--frame"}


@dataclass(frozen=True)
class Case:
    values: dict  # the estimator's keyword arguments
    cli: tuple[str, ...] | None = None  # the same values as options of `lstmae fit`, None: no option for them
    explains: bool = True  # explain_shapes takes these values (when it has all the names)

    @property
    def id(self) -> str:
        return ",".join(f"{k}={v!r}" for k, v in self.values.items())


CASES = [
    Case({"timesteps": 1}, ("--timesteps", "1")),
    Case({"timesteps": 0}, ("--timesteps", "0")),
    Case({"timesteps": -5}, ("--timesteps", "-5")),
    Case({"timesteps": 2.5}),
    Case({"timesteps": "ten"}, ("--timesteps", "ten")),
    Case({"units": 0}, ("--units", "0")),
    Case({"units": [3, 0]}, ("--units", "3,0")),
    Case({"units": [64, 99999]}, ("--units", "64,99999")),
    Case({"units": "a,b"}, ("--units", "a,b")),
    Case({"units": []}),
    Case({"architecture": "dense"}, ("--architecture", "dense")),
    Case({"stride": 0}, ("--stride", "0")),
    Case({"stride": -1}, ("--stride", "-1")),
    Case({"batch_size": 0}, ("--batch-size", "0")),
    Case({"batch_size": -32}, ("--batch-size", "-32")),
    Case({"epochs": 0}, ("--epochs", "0")),
    Case({"patience": 0}, ("--patience", "0")),
    Case({"validation_split": 1.0}, ("--validation-split", "1.0")),
    Case({"validation_split": 1.5}, ("--validation-split", "1.5")),
    Case({"validation_split": -0.1}, ("--validation-split", "-0.1")),
    Case({"learning_rate": 0.0}, ("--learning-rate", "0.0")),
    Case({"learning_rate": 20.0}, ("--learning-rate", "20.0")),
    Case({"threshold": -1.0}, ("--threshold", "-1")),
    Case({"threshold": float("nan")}, ("--threshold", "nan")),
    Case({"threshold": float("inf")}, ("--threshold", "inf")),
    Case({"threshold": "high"}, ("--threshold", "high")),
    Case({"contamination": 0.7}, ("--contamination", "0.7")),
    Case({"contamination": 0.0}, ("--contamination", "0.0")),
    Case({"random_state": -1}, ("--seed", "-1")),
    Case({"device": "tpu"}, ("--device", "tpu")),
    Case({"frame": 0}, ("--frame", "0")),
    Case({"score_stride": 0}, ("--score-stride", "0")),
    Case({"score_stride": "fast"}, ("--score-stride", "fast")),
    Case({"windows_per_epoch": 0}, ("--windows-per-epoch", "0")),
    Case({"windows_per_series": 0}, ("--windows-per-series", "0")),
    Case({"series_scaling": "pooled"}, ("--series-scaling", "pooled")),
    Case({"aggregation": "max"}, ("--aggregation", "max")),
    Case({"scorer": "distance"}, ("--scorer", "distance")),
    Case({"shuffle": "yes"}),  # a switch on the command line (--shuffle/--no-shuffle): no bad value to give
    Case({"normalize_errors": 1}),
    Case({"verbose": -1}, ("--verbose", "-1")),
    Case({"random_state": 2.5}, ("--random-state", "2.5")),
    # rules between parameters
    Case({"contamination": 0.1, "threshold": "pot"}, ("--contamination", "0.1", "--threshold", "pot")),
    Case({"scorer": "latent", "architecture": "sequence"}, ("--scorer", "latent", "--architecture", "sequence")),
    Case({"timesteps": 5, "stride": 6}, ("--timesteps", "5", "--stride", "6"), explains=False),
    Case({"timesteps": 5, "score_stride": 6}, ("--timesteps", "5", "--score-stride", "6")),
    Case({"timesteps": 120, "frame": 7}, ("--timesteps", "120", "--frame", "7")),
]


def _message(call) -> str:
    with pytest.raises(ParameterError) as info:
        call()
    return str(info.value)


def _cli_error(capsys, *args: str) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("lstmae: error: "), err
    return lines[0][len("lstmae: error: "):]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_same_bad_value_same_message_everywhere(case, capsys, tmp_path):
    series = np.sin(np.arange(300) / 3.0)
    expected = _message(lambda: LSTMAutoencoder(**{"verbose": 0, **case.values}).fit(series))
    # The message names each parameter and shows the value received.
    for name, value in case.values.items():
        assert re.search(rf"\b{name}\b", expected), expected
        assert repr(value) in expected, expected

    messages = {"estimator": expected, "table": _message(lambda: params.validate({**LSTMAutoencoder().get_params(), **case.values}))}
    messages["evaluate"] = _message(lambda: parse_params(json.dumps(case.values)))
    if case.explains and set(case.values) <= EXPLAIN_KEYS:
        shapes = {"timesteps": 40, "n_features": 1, "units": 8, **case.values}
        messages["explain_shapes"] = _message(lambda: explain_shapes(**shapes))
    # One bad value given as an option: the same message, naming the option (--batch-size for batch_size);
    # a rule between several parameters: the estimator's message as it is.
    cli_expected = expected
    if len(case.values) == 1:
        (name,) = case.values
        assert expected.startswith(name), expected
        cli_expected = "--" + name.replace("_", "-") + expected[len(name):]
    if case.cli is not None:  # (each command line costs typer ~0.3 s to build: only where there is an option)
        messages["lstmae evaluate"] = _cli_error(
            capsys, "evaluate", tmp_path / "nowhere", "--format", "ucr", "--params", json.dumps(case.values)
        )
        messages["lstmae fit"] = _cli_error(capsys, "fit", tmp_path / "nowhere.csv", "-o", tmp_path / "m.safetensors", *case.cli)
        if case.explains and set(case.cli[::2]) <= CLI_EXPLAIN_OPTIONS:
            messages["lstmae explain"] = _cli_error(capsys, "explain", "--length", "1000", *case.cli)
    for where, message in messages.items():
        wanted = cli_expected if where in ("lstmae fit", "lstmae explain") else expected
        assert message == wanted, (where, message, wanted)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [  # written out by hand: the contract, not a copy of the code's output
        ("timesteps", 1, "timesteps must be >= 2 (a window of at least two steps), got 1."),
        ("timesteps", "x", "timesteps must be 'auto' or an integer >= 2, got 'x'."),
        ("timesteps", True, "timesteps must be 'auto' or an integer >= 2, got True."),
        ("stride", 0, "stride must be an integer >= 1, got 0."),
        ("frame", 0, "frame must be 'auto' or an integer >= 1, got 0."),
        ("units", (), "units must be a positive integer or a non-empty sequence of them (e.g. 32 or (64, 16)), got ()."),
        ("units", [64, 5000], "units must be in [1, 4096], got [64, 5000] (every entry is one layer's width); e.g. 32 or (64, 16)."),
        ("architecture", "dense", "architecture must be one of ['repeat', 'sequence'], got 'dense'."),
        ("validation_split", 1.0, "validation_split must be in [0, 1), got 1.0; e.g. 0.2 holds out the last 20% of windows, 0 none."),
        ("threshold", -1.0, "threshold must be 'auto', 'pot' or a finite number >= 0, got -1.0."),
        ("contamination", 0.7, "contamination must be None or in (0, 0.5], got 0.7."),
        ("windows_per_epoch", 0, "windows_per_epoch must be None or an integer >= 1, got 0."),
        ("random_state", 2**63, f"random_state must be None or an integer >= 0, got {2**63}."),
        ("shuffle", 1, "shuffle must be True or False, got 1."),
        ("device", "cuda:x", "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'cuda:x'."),
        ("verbose", -1, "verbose must be an integer >= 0, got -1."),
    ],
)
def test_messages(name, value, message):
    with pytest.raises(ParameterError) as info:
        params.check(name, value)
    assert str(info.value) == message


def test_the_table_covers_every_estimator_parameter():
    # A new estimator parameter needs a row here (e.g. trainer_kwargs from issue 13, item 5).
    assert set(params.PARAMETERS) == set(LSTMAutoencoder().get_params())


def test_defaults_and_boundaries_pass():
    defaults = LSTMAutoencoder().get_params()
    assert params.validate(defaults)["units"] == (32,)
    boundaries = {"timesteps": 2, "units": (1, 4096), "validation_split": 0.0, "learning_rate": 10, "threshold": 0, "random_state": 2**63 - 1, "verbose": 0, "device": "cuda:1",
                  "windows_per_epoch": None, "shuffle": np.bool_(False), "stride": 2, "frame": 2}
    checked = params.validate({**defaults, **boundaries})
    assert checked["units"] == (1, 4096) and all(type(u) is int for u in checked["units"])
    params.validate({**defaults, "contamination": 0.5})
    assert params.validate({"units": np.int64(3)})["units"] == (3,)


def test_aggregations_are_the_scorers():
    from lstmae.scoring.aggregation import AGGREGATIONS

    assert params.AGGREGATIONS == AGGREGATIONS


@pytest.mark.parametrize("timesteps", range(2, 400))
def test_auto_frame_is_the_smallest_divisor_within_the_step_limit(timesteps):
    naive = min(k for k in range(1, timesteps + 1) if timesteps % k == 0 and timesteps // k <= params.MAX_LSTM_STEPS)
    assert params.resolve_frame("auto", timesteps) == naive
    assert params.resolve_frame(naive, timesteps) == naive


def test_explain_shapes_takes_frame_auto_as_the_estimator_does():
    assert "is read as (40, 3)" in " ".join(explain_shapes(timesteps=120, n_features=1, units=8, frame="auto").text.split())
    with pytest.raises(ParameterError, match=r"timesteps='auto' is found from the data"):
        explain_shapes(timesteps="auto", n_features=1, units=8)


@pytest.mark.parametrize(
    ("n", "split", "expected"),
    [(10, 0.1, 9), (10, 0.25, 7), (3, 0.5, 1), (5, 0.0, 5), (1, 0.5, 0), (2000, 0.2, 1600), (7, 0.3, 4)],
)
def test_n_train_is_keras_validation_split(n, split, expected):
    # Keras keeps the first int(n * (1 - split)) for training (7 * 0.7 = 4.8999...: 4).
    assert params.n_train(n, split) == expected
