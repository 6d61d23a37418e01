"""Diagnostics: identity and mean collapse are flagged; a working bottleneck model is not."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from lstmae import LSTMAutoencoder
from lstmae.diagnostics import (
    COLLAPSE_WARNING_RATIO,
    IDENTITY_WARNING_RATIO,
    NOISE_EXPLAINED_WARNING,
    Diagnostics,
    diagnose,
    unlike_inputs,
)
from lstmae.errors import DegenerateModelWarning


@pytest.fixture(scope="module")
def sine_windows() -> torch.Tensor:
    t = torch.arange(200 * 40, dtype=torch.float32).reshape(200, 40, 1)
    return torch.sin(2 * torch.pi * t / 40 + torch.arange(200).reshape(200, 1, 1) * 0.1)


def test_unlike_inputs_keep_shape_values_and_scale(sine_windows):
    inputs = unlike_inputs(sine_windows, seed=0)
    assert set(inputs) == {"shuffled", "reversed", "noise"}
    for tensor in inputs.values():
        assert tensor.shape == sine_windows.shape
    # shuffling permutes each window's own values; reversal is exact
    torch.testing.assert_close(inputs["shuffled"].sort(dim=1).values, sine_windows.sort(dim=1).values)
    assert not torch.equal(inputs["shuffled"], sine_windows)
    torch.testing.assert_close(inputs["reversed"], sine_windows.flip(1))
    assert abs(float(inputs["noise"].std()) - float(sine_windows.std())) < 0.05


def test_a_copying_function_is_identity_like(sine_windows):
    # Reconstructs anything almost perfectly: the definition of the identity failure.
    result = diagnose(lambda w: w * 0.99, sine_windows, "sequence")
    assert result.identity_ratio < IDENTITY_WARNING_RATIO
    assert result.noise_explained > 0.9
    assert len(result.warnings) == 1 and result.warnings[0].startswith("identity-like model")
    assert 'architecture="repeat"' in result.warnings[0]


def test_predicting_the_window_mean_is_mean_collapse_not_identity(sine_windows):
    result = diagnose(lambda w: w.mean(dim=1, keepdim=True).expand_as(w), sine_windows, "repeat")
    assert result.collapse_ratio == pytest.approx(1.0, rel=1e-5)
    assert result.collapse_ratio > COLLAPSE_WARNING_RATIO
    assert len(result.warnings) == 1 and result.warnings[0].startswith("mean-collapse")


def test_a_model_of_the_sine_only_is_quiet(sine_windows):
    # "Reconstructs" by projecting on the training signal: perfect on sines, useless on anything else.
    basis = sine_windows[:, :, 0]
    u, _, _ = torch.linalg.svd(basis.T, full_matrices=False)
    projector = u[:, :2] @ u[:, :2].T  # (T, T): the 2-D subspace of shifted sines

    def project(w: torch.Tensor) -> torch.Tensor:
        return (w[:, :, 0] @ projector).unsqueeze(-1)

    result = diagnose(project, sine_windows, "repeat")
    assert result.identity_ratio > 100
    assert result.noise_explained < 0.2
    assert result.collapse_ratio < 0.01
    assert result.warnings == []


def test_round_trip_through_a_dict(sine_windows):
    result = diagnose(lambda w: w * 0.5, sine_windows, "repeat", seed=3)
    assert Diagnostics.from_dict(result.to_dict()) == result


@pytest.fixture(scope="module")
def noisy_sine() -> np.ndarray:
    t = np.arange(3000)
    return np.sin(2 * np.pi * t / 40) + 0.05 * np.random.default_rng(0).normal(size=t.size)


@pytest.mark.slow
def test_fitted_sequence_model_with_units_at_least_features_is_flagged(noisy_sine):
    with pytest.warns(DegenerateModelWarning, match="identity-like model"):
        model = LSTMAutoencoder(architecture="sequence", units=8, timesteps=40, epochs=15, random_state=0, verbose=0).fit(
            noisy_sine
        )
    assert model.diagnostics_["noise_explained"] > NOISE_EXPLAINED_WARNING
    assert any(w.startswith("identity-like") for w in model.diagnostics_["warnings"])


@pytest.mark.slow
def test_fitted_repeat_model_is_not_flagged(noisy_sine):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateModelWarning)
        model = LSTMAutoencoder(units=16, timesteps=40, epochs=15, random_state=0, verbose=0).fit(noisy_sine)
    d = model.diagnostics_
    assert d["warnings"] == []
    assert d["identity_ratio"] > 10 and d["noise_explained"] < 0 and d["collapse_ratio"] < 0.2


def test_fitted_on_white_noise_is_mean_collapse(tmp_path):
    noise = np.random.default_rng(1).normal(size=1500)
    with pytest.warns(DegenerateModelWarning, match="mean-collapse"):
        model = LSTMAutoencoder(units=4, timesteps=20, epochs=2, random_state=0, verbose=0).fit(noise)
    assert model.diagnostics_["collapse_ratio"] > COLLAPSE_WARNING_RATIO
    # the diagnostics travel with the saved model
    model.save(tmp_path / "m.safetensors")
    assert LSTMAutoencoder.load(tmp_path / "m.safetensors").diagnostics_ == model.diagnostics_


def test_flat_windows_give_no_warning():
    flat = torch.full((50, 20, 2), 3.0)
    result = diagnose(lambda w: w + 1e-3, flat, "repeat")
    assert result.collapse_ratio == 0.0
    assert result.warnings == []


def test_early_stopping_is_read_from_the_history():
    from lstmae.diagnostics import describe_early_stop, early_stop

    losses = [0.5, 0.3, 0.2, 0.25, 0.26, 0.27]
    assert early_stop({"loss": losses, "val_loss": losses}, epochs=6) is None  # every epoch ran
    assert early_stop({"loss": losses[:3]}, epochs=20) is None  # no validation: nothing to stop on
    stop = early_stop({"loss": losses, "val_loss": losses}, epochs=20)
    assert stop == {"stopped_epoch": 6, "epochs": 20, "best_epoch": 3, "best_val_loss": 0.2}
    assert describe_early_stop(stop) == "early stopping ended training at epoch 6 of 20 (best val_loss 0.2 at epoch 3)"


def test_collapse_advice_never_asks_for_more_epochs_after_early_stopping(sine_windows):
    collapse = lambda w: w.mean(dim=1, keepdim=True).expand_as(w)  # noqa: E731
    assert "train longer (epochs)" in diagnose(collapse, sine_windows, "repeat").warnings[0]
    stop = {"stopped_epoch": 14, "epochs": 20, "best_epoch": 9, "best_val_loss": 0.0123}
    advice = diagnose(collapse, sine_windows, "repeat", early_stopped=stop).warnings[0]
    assert "train longer" not in advice and "epochs)" not in advice
    assert "early stopping ended training at epoch 14 of 20 (best val_loss 0.0123 at epoch 9), so more epochs would not help" in advice


def test_a_fit_that_stopped_early_says_so_and_keeps_it_after_loading(tmp_path):
    noise = np.random.default_rng(1).normal(size=1500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LSTMAutoencoder(units=4, timesteps=20, epochs=40, patience=1, random_state=0, verbose=0).fit(noise)
    stop = model.early_stopping_
    assert stop is not None and stop["stopped_epoch"] == len(model.history_["val_loss"]) < 40
    assert stop["best_val_loss"] == min(model.history_["val_loss"])
    assert all("train longer" not in message for message in model.diagnostics_["warnings"])
    model.save(tmp_path / "m.safetensors")
    assert LSTMAutoencoder.load(tmp_path / "m.safetensors").early_stopping_ == stop


def test_a_series_too_short_to_learn_from_is_warned_about_with_the_numbers():
    """Issue 23 item 3: 20 rows at timesteps 5 leave 14 training windows (10% held out)."""
    from lstmae.diagnostics import MIN_TRAINING_WINDOWS

    short = np.sin(np.arange(20) / 3)
    with pytest.warns(DegenerateModelWarning, match=r"too little data: only 14 training windows \(20 timesteps, windows of "
                      r"timesteps=5, 10% held out\), too few to learn what is normal from.*give at least 40 timesteps"):
        model = LSTMAutoencoder(timesteps=5, units=2, epochs=1, random_state=0, verbose=0).fit(short)
    assert model.diagnostics_["warnings"][0].startswith("too little data: only 14 training windows")
    assert MIN_TRAINING_WINDOWS == 32 and -(-32 // 0.9) + 5 - 1 == 40  # where "at least 40" comes from
    long = np.sin(np.arange(400) / 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LSTMAutoencoder(timesteps=5, units=2, epochs=1, random_state=0, verbose=0).fit(long)
    assert not any("too little data" in str(w.message) for w in caught)


def test_a_panel_of_few_samples_is_warned_about():
    panel = np.sin(np.arange(8)[None, :, None] / 2 + np.linspace(0, 6, 20)[:, None, None])
    with pytest.warns(DegenerateModelWarning, match=r"too little data: only 18 training samples \(20 samples, 10% held out\)"):
        LSTMAutoencoder(units=2, epochs=1, random_state=0, verbose=0).fit(panel)
