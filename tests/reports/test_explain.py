"""Tests for lstmae.reports.explain: every number in the walk is checked against an independent source.

Window counts against a plain Python loop, parameter counts and shapes against
the real torch module, Keras counts against the published Keras formulas.
"""

from __future__ import annotations

import math
import re

import numpy as np
import naive
import pytest
import torch

from lstmae.config import NetworkConfig
from lstmae.data.windows import window_starts
from lstmae.errors import ParameterError
from lstmae.reports.explain import Explanation, LayerRow, explain_shapes, max_coverage
from lstmae.backends.network import LSTMAutoencoder, count_parameters

SEED = dict(n_timesteps=2000, timesteps=40, n_features=1, units=100, batch_size=32)


def reference_n_windows(n_timesteps: int, timesteps: int, stride: int) -> int:
    """Count windows one by one: a grid of starts, plus one window ending on the last timestep."""
    count, start, last_start = 0, 0, None
    while start + timesteps <= n_timesteps:
        count, last_start = count + 1, start
        start += stride
    if last_start is not None and last_start + timesteps < n_timesteps:
        count += 1  # the extra window that ends on the last timestep
    return count


def reference_coverage(n_timesteps: int, timesteps: int, stride: int) -> int:
    """Most windows over one timestep, by counting every timestep of every window."""
    counts = [0] * n_timesteps
    for start in window_starts(n_timesteps, timesteps, stride):
        for t in range(start, start + timesteps):
            counts[t] += 1
    return max(counts)


def keras_lstm(n_inputs: int, units: int) -> int:
    """Keras's LSTM parameter count: 4 gates x (kernel + recurrent kernel + one bias)."""
    return 4 * (n_inputs * units + units * units + units)


def torch_layers(model: LSTMAutoencoder) -> list[torch.nn.Module]:
    """The real modules in the order explain lists them (RepeatVector has no module)."""
    return [*model.encoder.layers, *model.decoder.layers, model.output_layer]


def without_repeat(rows: list[LayerRow]) -> list[LayerRow]:
    return [row for row in rows if row.name != "repeat"]


# ---------------------------------------------------------------------------
# The seed case: 2000 timesteps, windows of 40, one feature, LSTM(100), repeat design


@pytest.fixture(scope="module")
def seed() -> Explanation:
    return explain_shapes(**SEED)


def test_seed_window_and_batch_counts(seed):
    assert seed.n_windows == reference_n_windows(2000, 40, 1) == 1961
    assert (seed.n_train, seed.n_val) == (1961, 0)
    assert seed.batches_per_epoch == math.ceil(1961 / 32) == 62
    assert "2000 timesteps x 1 feature -> 1961 windows of 40 timesteps" in seed.text
    assert "array (samples=1961, timesteps=40, features=1)" in seed.text
    assert "up to 40 windows" in seed.text
    assert "averages" in seed.text


def test_seed_layers(seed):
    assert [row.name for row in seed.layers] == [
        "encoder LSTM 1", "repeat", "decoder LSTM 1", "output",
    ]
    assert [row.keras for row in seed.layers] == [
        "LSTM(100)", "RepeatVector(40)", "LSTM(100, return_sequences=True)",
        "TimeDistributed(Dense(1))",
    ]
    assert [(row.input_shape, row.output_shape) for row in seed.layers] == [
        (("batch", 40, 1), ("batch", 100)),
        (("batch", 100), ("batch", 40, 100)),
        (("batch", 40, 100), ("batch", 40, 100)),
        (("batch", 40, 100), ("batch", 40, 1)),
    ]
    for shapes in (
        "(batch, 40, 1) -> (batch, 100)",
        "(batch, 100) -> (batch, 40, 100)",
        "(batch, 40, 100) -> (batch, 40, 100)",
        "(batch, 40, 100) -> (batch, 40, 1)",
    ):
        assert shapes in seed.text


def test_seed_keras_params_are_the_published_numbers(seed):
    # Keras model.summary() prints 40800 / 0 / 80400 / 101 for this model.
    assert [row.keras_params for row in seed.layers] == [40800, 0, 80400, 101]
    assert [row.params for row in seed.layers] == [41200, 0, 80800, 101]
    table_total = re.search(r"^\s*total\s+(\d+)\s+(\d+)$", seed.text, re.MULTILINE)
    assert table_total is not None
    assert table_total.groups() == ("122101", "121301")


def test_seed_warns_latent_not_smaller_than_window(seed):
    assert len(seed.warnings) == 1
    assert "100" in seed.warnings[0] and "40 x 1 = 40" in seed.warnings[0]
    assert "recurrence" in seed.warnings[0]
    assert "WARNING: weak bottleneck" in seed.text


def test_seed_text_explains_the_keras_words(seed):
    for section in ("1. DATA -> WINDOWS", "2. LAYERS", "3. WHAT THE KERAS WORDS MEAN",
                    "4. BOTTLENECK CHECK"):
        assert section in seed.text
    for word in ("units", "return_sequences", "RepeatVector", "TimeDistributed", "unroll",
                 "activation='tanh'", "standardised", "stride=1", "batch_size=32",
                 "validation_split=0"):
        assert word in seed.text
    assert str(seed) == seed.text


def test_seed_text_is_compact_and_plain(seed):
    lines = seed.text.splitlines()
    assert 40 <= len(lines) <= 70
    assert max(len(line) for line in lines) <= 100
    assert "[" not in seed.text.replace("[-1, 1]", "")  # no rich markup


# ---------------------------------------------------------------------------
# Parameter counts and shapes against the real torch module

CONFIGS = [
    (40, 1, (100,), "repeat"),
    (40, 1, (100,), "sequence"),
    (40, 3, (64, 16), "repeat"),
    (40, 3, (64, 16), "sequence"),
    (12, 2, (8, 4, 2), "repeat"),
    (5, 7, (3,), "sequence"),
]


@pytest.mark.parametrize("timesteps,n_features,units,architecture", CONFIGS)
def test_params_match_the_torch_module_layer_by_layer(timesteps, n_features, units, architecture):
    explanation = explain_shapes(
        timesteps=timesteps, n_features=n_features, units=units, architecture=architecture,
    )
    model = LSTMAutoencoder(NetworkConfig(n_features, timesteps, units, architecture))
    rows = without_repeat(explanation.layers)
    modules = torch_layers(model)
    assert len(rows) == len(modules)
    for row, module in zip(rows, modules):
        assert row.params == count_parameters(module), row.name
    assert sum(row.params for row in explanation.layers) == count_parameters(model)


@pytest.mark.parametrize("timesteps,n_features,units,architecture", CONFIGS)
def test_shapes_match_the_torch_module(timesteps, n_features, units, architecture):
    explanation = explain_shapes(
        timesteps=timesteps, n_features=n_features, units=units, architecture=architecture,
    )
    model = LSTMAutoencoder(NetworkConfig(n_features, timesteps, units, architecture))
    batch = 3
    seen: list[tuple[int, ...]] = []
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out: seen.append(tuple((out[0] if isinstance(out, tuple) else out).shape))
        )
        for module in torch_layers(model)
    ]
    x = torch.zeros(batch, timesteps, n_features)
    with torch.no_grad():
        latent = model.encode(x)
        # The network runs lstmae.backends.recurrence, which does not call the nn.LSTM modules;
        # the unoptimised path calls each module once, so its hooks see every shape.
        reference = naive.autoencoder_forward(model, x)
    for hook in hooks:
        hook.remove()
    with torch.no_grad():
        assert torch.allclose(model(x), reference, atol=1e-6)

    def concrete(shape: tuple) -> tuple[int, ...]:
        assert shape[0] == "batch"
        return (batch, *shape[1:])

    rows = explanation.layers
    n_encoder = len(units)
    # The last encoder row is what `encode` returns: (B, L) for repeat, (B, T, L) for sequence.
    assert concrete(rows[n_encoder - 1].output_shape) == tuple(latent.shape)
    # The reference forward pass hit every module once, in table order.
    forward = seen
    assert len(forward) == len(without_repeat(rows))
    for row, shape in zip(without_repeat(rows)[n_encoder:], forward[n_encoder:]):
        assert concrete(row.output_shape) == shape, row.name
    for row, shape in zip(without_repeat(rows)[: n_encoder - 1], forward):
        assert concrete(row.output_shape) == shape, row.name
    assert concrete(rows[-1].output_shape) == (batch, timesteps, n_features)
    # Every layer's input is the previous layer's output.
    assert rows[0].input_shape == ("batch", timesteps, n_features)
    for before, after in zip(rows, rows[1:]):
        assert after.input_shape == before.output_shape


@pytest.mark.parametrize("timesteps,n_features,units,architecture", CONFIGS)
def test_keras_params_follow_the_keras_formulas(timesteps, n_features, units, architecture):
    explanation = explain_shapes(
        timesteps=timesteps, n_features=n_features, units=units, architecture=architecture,
    )
    for row in explanation.layers:
        if row.name == "repeat":
            assert row.keras_params == 0
        elif row.name == "output":
            inputs = row.input_shape[-1]
            assert row.keras_params == n_features * inputs + n_features
        else:
            inputs, hidden = row.input_shape[-1], row.output_shape[-1]
            assert row.keras_params == keras_lstm(inputs, hidden)
            # PyTorch's second bias vector: 4 gates x units more.
            assert row.params - row.keras_params == 4 * hidden


def test_keras_dense_on_100_units():
    rows = explain_shapes(timesteps=40, n_features=1, units=100).layers
    assert rows[-1].keras == "TimeDistributed(Dense(1))"
    assert rows[-1].keras_params == 101


# ---------------------------------------------------------------------------
# Designs and stacked units


def test_sequence_design_warns_identity():
    explanation = explain_shapes(**{**SEED, "units": 100}, architecture="sequence")
    assert [row.keras for row in explanation.layers] == [
        "LSTM(100, return_sequences=True)", "LSTM(100, return_sequences=True)",
        "TimeDistributed(Dense(1))",
    ]
    assert explanation.layers[0].output_shape == ("batch", 40, 100)
    assert "(batch, 40, 1) -> (batch, 40, 100)" in explanation.text
    assert "RepeatVector(" not in explanation.text
    assert len(explanation.warnings) == 1
    assert "identity" in explanation.warnings[0]
    assert 'architecture="repeat"' in explanation.warnings[0]
    # With one feature no units can be smaller, so that advice must not be given.
    assert "units smaller than" not in explanation.warnings[0]
    assert "WARNING: no bottleneck" in explanation.text


def test_sequence_with_many_features_suggests_fewer_units():
    explanation = explain_shapes(timesteps=40, n_features=8, units=8, architecture="sequence")
    assert "units smaller than 8" in explanation.warnings[0]


def test_sequence_with_units_below_features_is_ok():
    explanation = explain_shapes(timesteps=40, n_features=8, units=(16, 4), architecture="sequence")
    assert explanation.warnings == []
    assert "WARNING" not in explanation.text
    assert "40 x 8 = 320 numbers -> 40 x 4 = 160 numbers" in explanation.text


@pytest.mark.parametrize("latent,warns", [(39, False), (40, True), (41, True)])
def test_repeat_warning_threshold(latent, warns):
    # A window of 20 timesteps x 2 features holds 40 numbers.
    explanation = explain_shapes(timesteps=20, n_features=2, units=(64, latent))
    assert bool(explanation.warnings) is warns
    assert ("WARNING" in explanation.text) is warns
    if not warns:
        assert "OK: bottleneck: a window of 20 x 2 = 40 numbers -> 39 latent numbers" in (
            explanation.text.replace("\n    ", " ")
        )


def test_stacked_units_repeat():
    explanation = explain_shapes(timesteps=40, n_features=3, units=(64, 16), n_timesteps=500)
    assert [(row.name, row.keras) for row in explanation.layers] == [
        ("encoder LSTM 1", "LSTM(64, return_sequences=True)"),
        ("encoder LSTM 2", "LSTM(16)"),
        ("repeat", "RepeatVector(40)"),
        ("decoder LSTM 1", "LSTM(16, return_sequences=True)"),
        ("decoder LSTM 2", "LSTM(64, return_sequences=True)"),
        ("output", "TimeDistributed(Dense(3))"),
    ]
    for shapes in (
        "(batch, 40, 3) -> (batch, 40, 64)",
        "(batch, 40, 64) -> (batch, 16)",
        "(batch, 16) -> (batch, 40, 16)",
        "(batch, 40, 16) -> (batch, 40, 64)",
        "(batch, 40, 64) -> (batch, 40, 3)",
    ):
        assert shapes in explanation.text
    assert explanation.warnings == []
    assert "units=(64, 16)" in explanation.text
    assert max(len(line) for line in explanation.text.splitlines()) <= 100


def test_big_model_table_moves_shapes_to_their_own_line():
    explanation = explain_shapes(
        timesteps=1000, n_features=12, units=(1024, 64), architecture="sequence",
        n_timesteps=10**9, stride=7,
    )
    lines = explanation.text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "(batch, 1000, 12) -> (batch, 1000, 1024)" in [line.strip() for line in lines]
    row = next(line for line in lines if line.strip().startswith("encoder 1"))
    assert row.split()[-2:] == ["4251648", "4247552"]


def test_units_as_int_or_sequence_are_the_same_model():
    one = explain_shapes(timesteps=10, n_features=2, units=5)
    seq = explain_shapes(timesteps=10, n_features=2, units=[5])
    numpy_ints = explain_shapes(timesteps=np.int64(10), n_features=np.int32(2), units=(np.int64(5),))
    assert one.layers == seq.layers == numpy_ints.layers


# ---------------------------------------------------------------------------
# Data: windows, panels, split, batches


@pytest.mark.parametrize(
    "n_timesteps,timesteps,stride",
    [(2000, 40, 1), (40, 40, 1), (41, 40, 1), (100, 10, 3), (100, 10, 10), (101, 10, 10),
     (100, 7, 20), (9, 4, 2), (1000, 64, 16), (57, 5, 4)],
)
def test_window_count_and_overlap_against_loops(n_timesteps, timesteps, stride):
    explanation = explain_shapes(
        timesteps=timesteps, n_features=1, units=2, n_timesteps=n_timesteps, stride=stride,
    )
    expected = reference_n_windows(n_timesteps, timesteps, stride)
    assert explanation.n_windows == expected
    assert f"-> {expected} window" in explanation.text
    cover = reference_coverage(n_timesteps, timesteps, stride)
    assert max_coverage(n_timesteps, timesteps, stride) == cover
    if cover > 1:
        assert f"up to {cover} windows" in explanation.text
    else:
        assert "do not overlap" in explanation.text


def test_stride_wider_than_window_is_pointed_out():
    explanation = explain_shapes(timesteps=7, n_features=1, units=2, n_timesteps=100, stride=20)
    assert "belong to no window" in explanation.text


def test_panel_is_one_window_per_sample():
    explanation = explain_shapes(
        timesteps=40, n_features=1, units=100, n_samples=2000, stride=5,
    )
    assert explanation.n_windows == 2000
    assert (explanation.n_train, explanation.n_val, explanation.batches_per_epoch) == (2000, 0, 63)
    assert "2000 samples x 40 timesteps x 1 feature" in explanation.text
    assert "already one sequence" in explanation.text
    assert "array (samples=2000, timesteps=40, features=1)" in explanation.text
    assert "stride=5 is ignored" in explanation.text
    assert "overlap" in explanation.text and "up to" not in explanation.text


@pytest.mark.parametrize(
    "n,split", [(1961, 0.2), (2000, 0.2), (10, 0.1), (10, 0.9), (7, 0.5), (1000, 0.33), (3, 0.25)]
)
def test_validation_split_is_the_keras_split(n, split):
    arguments = dict(
        timesteps=4, n_features=1, units=2, n_samples=n, validation_split=split, batch_size=32,
    )
    # Keras: split_at = int(n * (1 - validation_split)); the tail validates.
    n_train = int(n * (1 - split))
    if n_train == 0:  # e.g. 10 * (1 - 0.9) is 0.999... in floating point, as in Keras
        with pytest.raises(ParameterError, match="leaves no training window"):
            explain_shapes(**arguments)
        return
    explanation = explain_shapes(**arguments)
    assert (explanation.n_train, explanation.n_val) == (n_train, n - n_train)
    assert explanation.n_train + explanation.n_val == n
    assert explanation.batches_per_epoch == -(-n_train // 32)


def test_seed_with_validation_split_text():
    explanation = explain_shapes(**SEED, validation_split=0.2)
    assert (explanation.n_train, explanation.n_val, explanation.batches_per_epoch) == (1568, 393, 49)
    flat = " ".join(explanation.text.split())
    assert "LAST 20% of the windows, taken before shuffling" in flat
    assert "int(1961*0.8) = 1568 train + 393 validation" in flat
    assert "the end of the series" in flat
    assert "ceil(1568/32) = 49 batches per epoch (the last holds 32)" in flat
    assert 'only their leading "batch" dimension' in flat


def test_tiny_split_that_leaves_no_validation_warns():
    explanation = explain_shapes(timesteps=4, n_features=1, units=2, n_samples=10,
                                 validation_split=1e-20)
    assert explanation.n_val == 0
    assert any("no validation" in warning for warning in explanation.warnings)


def test_model_alone_has_no_data_section():
    explanation = explain_shapes(timesteps=40, n_features=1, units=10, notes=["picked by hand"])
    assert (explanation.n_windows, explanation.n_train, explanation.n_val,
            explanation.batches_per_epoch) == (0, 0, 0, 0)
    assert "No data size given" in explanation.text
    assert "array (samples=" not in explanation.text
    assert "picked by hand" in explanation.text


def test_source_and_notes_are_printed_in_the_data_section():
    explanation = explain_shapes(
        **SEED, source="sensor.csv",
        notes=["timesteps=40 chosen automatically from the autocorrelation (period 40)."],
    )
    data = explanation.text.split("2. LAYERS")[0]
    assert "data: sensor.csv" in data
    assert "timesteps=40 chosen automatically" in data


# ---------------------------------------------------------------------------
# Validation: every ParameterError names the argument and the value


@pytest.mark.parametrize(
    "changes,match",
    [
        # The estimator's messages (one table, lstmae.params): timesteps >= 2 everywhere now.
        ({"timesteps": 0}, r"timesteps must be >= 2 \(a window of at least two steps\), got 0\."),
        ({"timesteps": 1}, r"timesteps must be >= 2 \(a window of at least two steps\), got 1\."),
        ({"timesteps": True}, "timesteps must be 'auto' or an integer >= 2, got True"),
        ({"timesteps": 2.5}, "timesteps must be 'auto' or an integer >= 2, got 2.5"),
        ({"n_features": 0}, "n_features must be an integer >= 1, got 0"),
        ({"n_features": "1"}, "n_features must be an integer >= 1, got '1'"),
        ({"units": 0}, r"units must be in \[1, 4096\], got 0 \(every entry is one layer's width\); e.g. 32 or \(64, 16\)\."),
        ({"units": (64, 5000)}, r"units must be in \[1, 4096\], got \(64, 5000\) \(every entry"),
        ({"units": ()}, r"units must be a positive integer or a non-empty sequence.*got \(\)"),
        ({"units": "100"}, "units must be a positive integer or a non-empty sequence.*got '100'"),
        ({"units": (64, 0)}, r"units must be in \[1, 4096\], got \(64, 0\)"),
        ({"units": (1.5,)}, r"units must be a positive integer or a non-empty sequence.*got \(1.5,\)"),
        ({"architecture": "lstm"},
         r"architecture must be one of \['repeat', 'sequence'\], got 'lstm'"),
        ({"n_timesteps": 39}, "n_timesteps must be an integer >= 40, got 39. A window needs 40"),
        ({"n_timesteps": None, "n_samples": 0}, "n_samples must be an integer >= 1, got 0"),
        ({"n_samples": 10}, "give at most one of n_timesteps .*got 2000.* and n_samples .*got 10"),
        ({"stride": 0}, "stride must be an integer >= 1, got 0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": -32}, "batch_size must be an integer >= 1, got -32"),
        ({"validation_split": 1.0}, r"validation_split must be in \[0, 1\), got 1.0; e.g. 0.2 holds out the last 20%"),
        ({"validation_split": -0.1}, r"validation_split must be in \[0, 1\), got -0.1"),
        ({"validation_split": float("nan")}, r"validation_split must be .*got nan"),
        ({"validation_split": True}, r"validation_split must be .*got True"),
        ({"validation_split": "0.2"}, r"validation_split must be .*got '0.2'"),
        ({"n_timesteps": None, "n_samples": 1, "validation_split": 0.5},
         r"validation_split=0.5 leaves no training window out of 1 \(int\(1\*\(1-valid"),
        ({"source": 3}, "source must be a string or None, got 3"),
        ({"notes": "one line"}, "notes must be a sequence of strings, got 'one line'"),
        ({"notes": ["ok", 2]}, r"notes must contain only strings, got \['ok', 2\]"),
    ],
)
def test_parameter_errors(changes, match):
    with pytest.raises(ParameterError, match=match):
        explain_shapes(**{**SEED, **changes})


def test_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        explain_shapes(40, 1, 100)  # type: ignore[misc]


def test_frame_walks_the_layers_in_lstm_steps():
    text = explain_shapes(timesteps=120, n_features=2, units=16, frame=4, n_timesteps=1000).text
    assert "each window (120, 2) is read as (30, 8)" in " ".join(text.split())  # the text wraps
    assert "(batch, 30, 8) -> (batch, 16)" in text  # the encoder reads 30 steps of 4 x 2 values
    assert "TimeDistributed(Dense(8))" in text
    with pytest.raises(ParameterError, match=r"frame=7 must divide timesteps=120"):
        explain_shapes(timesteps=120, n_features=2, units=16, frame=7)
