"""Tests for `lstmae.LSTMAutoencoder`, the scikit-learn style estimator.

Numbers are checked against slow, obviously-correct references: every
stride-1 window is pushed through ``model.module_`` on its own in a Python
loop and the per-timestep averages are accumulated by hand; intervals are found
by walking the scores one timestep at a time; the scaler is checked against
``numpy.mean`` / ``numpy.std``. Small models come from ``conftest.py``; the few
acceptance tests that train real models for longer are marked ``slow``.
"""

from __future__ import annotations

import copy

import math
import re

import numpy as np
import pandas as pd
import naive
import pytest
import torch
from sklearn.base import clone

import lstmae
import lstmae.estimator as estimator_module
import lstmae.scoring.inference as inference_module
from lstmae import (
    DataError,
    FeatureMismatchError,
    LSTMAutoencoder,
    ModelFileError,
    NotFittedError,
    ParameterError,
)
from lstmae.config import NetworkConfig

FITTED_ATTRIBUTES = [
    "module_",
    "config_",
    "timesteps_",
    "n_features_in_",
    "scaler_mean_",
    "scaler_scale_",
    "threshold_",
    "history_",
    "input_kind_",
    "seed_",
    "timesteps_reason_",
    "fit_seconds_",
]


# ---------------------------------------------------------------------------
# Slow references
# ---------------------------------------------------------------------------
def canonical(X) -> np.ndarray:
    """The input as float64 ``(n, F)`` (series) or ``(S, T, F)`` (panel), by hand."""
    array = np.asarray(X.to_numpy() if isinstance(X, (pd.DataFrame, pd.Series)) else X, dtype=np.float64)
    return array[:, None] if array.ndim == 1 else array


def scaled(model, X) -> np.ndarray:
    """``(x - mean) / scale`` in float32, the units the network works in."""
    return ((canonical(X) - model.scaler_mean_) / model.scaler_scale_).astype(np.float32)


def network_on(model, window: np.ndarray) -> np.ndarray:
    """One window ``(T, F)`` through the network alone -> reconstruction ``(T, F)``, float64."""
    with torch.no_grad():
        return model.module_(torch.from_numpy(np.ascontiguousarray(window)[None]))[0].double().numpy()


def encode_one(model, window: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.module_.encode(torch.from_numpy(np.ascontiguousarray(window)[None]))[0].numpy()


def reference_series(model, X, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Every ``stride``-th window (and the last) one at a time; each timestep averages over the windows covering it.

    Returns the per-timestep, per-feature squared error (scaled units) and the
    reconstruction in the input's units, both ``(n, F)``.
    """
    values = scaled(model, X)
    n, features = values.shape
    T = model.timesteps_
    error_sum = np.zeros((n, features))
    recon_sum = np.zeros((n, features))
    count = np.zeros(n)
    for start in naive.window_starts(n, T, stride):
        window = values[start : start + T]
        output = network_on(model, window)
        for k in range(T):
            t = start + k
            for f in range(features):
                error_sum[t, f] += (output[k, f] - float(window[k, f])) ** 2
                recon_sum[t, f] += output[k, f]
            count[t] += 1
    errors = error_sum / count[:, None]
    recon = recon_sum / count[:, None] * model.scaler_scale_ + model.scaler_mean_
    return errors, recon


def reference_panel(model, X) -> tuple[np.ndarray, np.ndarray]:
    """Each sample alone: per-feature mean squared error over its timesteps ``(S, F)``, reconstruction ``(S, T, F)``."""
    values = scaled(model, X)
    errors, recons = [], []
    for sample in values:
        output = network_on(model, sample)
        errors.append(((output - sample.astype(np.float64)) ** 2).mean(axis=0))
        recons.append(output * model.scaler_scale_ + model.scaler_mean_)
    return np.array(errors), np.array(recons)


def reference_intervals(scores: np.ndarray, threshold: float, min_gap: int) -> list[tuple[int, int]]:
    """Runs of scores strictly above ``threshold``, one timestep at a time; merge runs separated by < min_gap normal steps."""
    runs: list[list[int]] = []
    for t, score in enumerate(scores):
        if score > threshold:
            if runs and runs[-1][1] == t - 1:
                runs[-1][1] = t
            else:
                runs.append([t, t])
    merged: list[list[int]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] - 1 < min_gap:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def validation_loss(model, X, validation_split: float) -> float:
    """Mean squared error of the current weights on the validation windows: the last fraction of the windows."""
    values = scaled(model, X)
    starts = naive.window_starts(len(values), model.timesteps_, model.stride)
    n_train = int(len(starts) * (1 - validation_split))
    windows = torch.from_numpy(np.stack([values[s : s + model.timesteps_] for s in starts[n_train:]]))
    with torch.no_grad():
        return float((model.module_(windows) - windows).pow(2).mean())


# ---------------------------------------------------------------------------
# 1. Estimator contract
# ---------------------------------------------------------------------------
def test_defaults_are_the_documented_ones():
    params = LSTMAutoencoder().get_params()
    assert params == {
        "timesteps": "auto",
        "stride": 1,
        "frame": "auto",
        "units": 32,
        "architecture": "repeat",
        "batch_size": 64,
        "epochs": 30,
        "validation_split": 0.1,
        "learning_rate": 1e-3,
        "patience": 5,
        "shuffle": True,
        "windows_per_epoch": 2048,
        "windows_per_series": "auto",
        "series_scaling": "series",
        "score_stride": "auto",
        "aggregation": "peak",
        "scorer": "auto",
        "normalize_errors": True,
        "threshold": "auto",
        "contamination": None,
        "random_state": None,
        "device": "auto",
        "verbose": 1,
        "trainer_kwargs": None,
    }


def test_init_stores_params_unchanged_and_validates_nothing():
    units = [7, 3]
    # Invalid values too: scikit-learn estimators validate in fit, not __init__.
    model = LSTMAutoencoder(timesteps=0, units=units, architecture="foo", epochs=-4, device="tpu")
    params = model.get_params()
    assert params["units"] is units  # the very object, not a copy or a tuple
    assert (params["timesteps"], params["architecture"], params["epochs"], params["device"]) == (0, "foo", -4, "tpu")
    assert not [name for name in vars(model) if name.endswith("_")]


def test_set_params_returns_self_and_changes_params():
    model = LSTMAutoencoder()
    assert model.set_params(units=[5, 2], epochs=3, threshold=0.5) is model
    assert (model.units, model.epochs, model.threshold) == ([5, 2], 3, 0.5)
    with pytest.raises(ValueError, match="Invalid parameter"):
        model.set_params(not_a_param=1)


def test_clone_of_fitted_model_has_same_params_and_is_unfitted(fitted_frame):
    copy = clone(fitted_frame)
    assert copy is not fitted_frame
    assert copy.get_params() == fitted_frame.get_params()
    assert not [name for name in vars(copy) if name.endswith("_")]
    with pytest.raises(NotFittedError, match="not fitted yet"):
        copy.anomaly_score(np.zeros((20, 2)))


def test_fit_returns_self(series_1d, tiny):
    model = LSTMAutoencoder(timesteps=4, **{**tiny, "epochs": 1})
    assert model.fit(series_1d) is model


def test_fitted_attributes_end_in_underscore_and_hold_the_right_things(fitted_1d, series_1d):
    missing = [name for name in FITTED_ATTRIBUTES if not hasattr(fitted_1d, name)]
    assert not missing
    new = {name for name in vars(fitted_1d) if name not in fitted_1d.get_params()}
    assert new and all(name.endswith("_") for name in new), sorted(new)
    assert isinstance(fitted_1d.module_, torch.nn.Module)
    assert fitted_1d.config_ == NetworkConfig(n_features=1, timesteps=6, units=(6,), architecture="repeat")
    assert fitted_1d.timesteps_ == 6 and fitted_1d.n_features_in_ == 1
    assert fitted_1d.input_kind_ == "series"
    assert fitted_1d.seed_ == 0  # random_state=0
    assert fitted_1d.fit_seconds_ > 0
    assert not hasattr(fitted_1d, "feature_names_in_")  # only for DataFrame input
    # The scaler is the per-feature mean and (population) standard deviation.
    np.testing.assert_allclose(fitted_1d.scaler_mean_, [np.mean(series_1d)], rtol=1e-12)
    np.testing.assert_allclose(fitted_1d.scaler_scale_, [np.std(series_1d)], rtol=1e-12)


def test_scaler_is_per_feature(fitted_frame, frame_2f):
    values = frame_2f.to_numpy()
    np.testing.assert_allclose(fitted_frame.scaler_mean_, values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(fitted_frame.scaler_scale_, values.std(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(fitted_frame.feature_names_in_, ["temp", "load"])


def test_auto_threshold_is_a_margin_above_the_largest_training_score(fitted_1d, series_1d):
    from lstmae.scoring.thresholds import AUTO_THRESHOLD_MARGIN

    scores = fitted_1d.anomaly_score(series_1d)
    assert fitted_1d.threshold_ == scores.max() * AUTO_THRESHOLD_MARGIN
    # Strictly above the threshold is anomalous: the training data has no interval.
    assert len(fitted_1d.detect(series_1d)) == 0


UNFITTED_CALLS = {
    "encode": lambda m, x, tmp: m.encode(x),
    "reconstruct": lambda m, x, tmp: m.reconstruct(x),
    "anomaly_score": lambda m, x, tmp: m.anomaly_score(x),
    "score_samples": lambda m, x, tmp: m.score_samples(x),
    "detect": lambda m, x, tmp: m.detect(x),
    "save": lambda m, x, tmp: m.save(tmp / "model.safetensors"),
}


@pytest.mark.parametrize("method", sorted(UNFITTED_CALLS))
def test_methods_before_fit_raise_not_fitted(method, tmp_path):
    model = LSTMAutoencoder(timesteps=4)
    with pytest.raises(NotFittedError, match=r"not fitted yet; call fit\(X\) first or load a model"):
        UNFITTED_CALLS[method](model, np.arange(20.0), tmp_path)
    assert not (tmp_path / "model.safetensors").exists()


def test_not_fitted_error_is_raised_before_looking_at_the_data():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        LSTMAutoencoder().anomaly_score("not data at all")


def test_not_fitted_error_has_scikit_learn_bases():
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)


def test_explain_without_data_before_fit_raises():
    with pytest.raises(NotFittedError, match=r"explain\(\) needs data or a fitted model"):
        LSTMAutoencoder().explain()


INVALID = [
    ("timesteps", 0),
    ("timesteps", 1),
    ("timesteps", "x"),
    ("timesteps", True),
    ("timesteps", 2.5),
    ("stride", 0),
    ("stride", 1.0),
    ("units", 0),
    ("units", []),
    ("units", "a"),
    ("units", [3, 0]),
    ("units", [3, 5000]),
    ("architecture", "foo"),
    ("batch_size", 0),
    ("epochs", 0),
    ("validation_split", 1.0),
    ("validation_split", -0.1),
    ("learning_rate", 0),
    ("learning_rate", -1e-3),
    ("patience", 0),
    ("shuffle", "yes"),
    ("shuffle", 1),
    ("threshold", -1),
    ("threshold", "x"),
    ("threshold", float("nan")),
    ("threshold", float("inf")),
    ("random_state", -1),
    ("random_state", 1.5),
    ("device", "tpu"),
    ("device", 0),
    ("verbose", -1),
    ("score_stride", 0),
    ("score_stride", "fast"),
    ("score_stride", 2.0),
]


@pytest.mark.parametrize(("name", "value"), INVALID, ids=[f"{n}={v!r}" for n, v in INVALID])
def test_invalid_parameter_raises_parameter_error_naming_it(name, value, series_1d):
    model = LSTMAutoencoder(**{"timesteps": 4, "epochs": 1, "verbose": 0, name: value})
    # The message names the parameter and shows the value it got.
    with pytest.raises(ParameterError, match=rf"{name}\b.*{re.escape(repr(value))}"):
        model.fit(series_1d)
    assert not hasattr(model, "module_")


def test_stride_larger_than_timesteps_raises(series_1d):
    with pytest.raises(ParameterError, match=r"stride=6 is larger than timesteps=5"):
        LSTMAutoencoder(timesteps=5, stride=6, verbose=0).fit(series_1d)


def test_boundary_parameter_values_are_accepted(series_1d):
    model = LSTMAutoencoder(
        timesteps=2, stride=2, units=[3], validation_split=0.0, threshold=0.25, patience=1,
        shuffle=False, epochs=1, batch_size=1000, random_state=0, verbose=0,
    ).fit(series_1d)
    assert model.timesteps_ == 2
    assert model.threshold_ == 0.25  # a number is used as given
    assert set(model.history_) == {"loss", "mae"}


def test_parameter_error_is_a_value_error():
    assert issubclass(ParameterError, ValueError) and issubclass(DataError, ValueError)


# ---------------------------------------------------------------------------
# 2. The seed scenario
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seed_panel() -> np.ndarray:
    """(2000, 40, 1): sines of period 20 with random phase and small noise."""
    rng = np.random.default_rng(2000)
    t = np.arange(40)
    phase = rng.uniform(0, 2 * np.pi, size=(2000, 1))
    return (np.sin(2 * np.pi * t / 20 + phase) + 0.05 * rng.standard_normal((2000, 40)))[..., None]


@pytest.fixture(scope="module")
def seed_model(seed_panel):
    return LSTMAutoencoder(
        timesteps=40, units=100, architecture="repeat", batch_size=32, epochs=3, random_state=0, verbose=0
    ).fit(seed_panel)


@pytest.mark.slow
def test_seed_scenario_shapes(seed_model, seed_panel):
    encoded = seed_model.encode(seed_panel)
    assert encoded.shape == (2000, 100) and encoded.dtype == np.float32
    assert seed_model.reconstruct(seed_panel).shape == (2000, 40, 1)
    scores = seed_model.anomaly_score(seed_panel)
    assert scores.shape == (2000,) and np.isfinite(scores).all()
    assert seed_model.input_kind_ == "panel" and seed_model.timesteps_ == 40
    assert "(batch, 40, 1)" in seed_model.explain()


@pytest.mark.slow
def test_seed_scenario_unseen_plateau_scores_far_above_the_median(seed_model, seed_panel):
    scores = seed_model.anomaly_score(seed_panel)
    odd = seed_panel[:3].copy()
    odd[:, 10:30, 0] = 1.5  # a plateau no training sequence has
    odd_scores = seed_model.anomaly_score(odd)
    assert (odd_scores > 10 * np.median(scores)).all(), (odd_scores, np.median(scores))
    assert (odd_scores > seed_model.threshold_).all()
    assert sorted(seed_model.detect(odd)["sample"]) == [0, 1, 2]  # samples 0..2: one row each, never one interval


@pytest.mark.slow
def test_seed_scenario_sequence_architecture_encodes_every_step(seed_panel):
    # Shapes do not depend on training length: one epoch is enough here.
    model = LSTMAutoencoder(
        timesteps=40, units=100, architecture="sequence", batch_size=32, epochs=1, random_state=0, verbose=0
    ).fit(seed_panel)
    assert model.encode(seed_panel).shape == (2000, 40, 100)
    assert model.reconstruct(seed_panel).shape == (2000, 40, 1)


# ---------------------------------------------------------------------------
# 3. Sine acceptance
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_sine_flat_stretch_is_detected(make_sine):
    x = make_sine(5000, 50, noise=0.05, seed=0)
    flat = slice(3500, 3560)  # 60 steps, more than a period, in the second half
    x[flat] = 0.0
    model = LSTMAutoencoder(units=32, batch_size=64, epochs=10, random_state=0, verbose=0).fit(x[:2500])
    assert abs(model.timesteps_ - 50) <= 2  # "auto" found the period
    scores = model.anomaly_score(x)
    assert scores.shape == (5000,) and np.isfinite(scores).all()
    outside = np.r_[scores[: flat.start], scores[flat.stop :]]
    assert scores[flat].mean() > 5 * np.median(outside), (scores[flat].mean(), np.median(outside))

    table = model.detect(x)
    T = model.timesteps_
    overlaps = (table["start"] <= flat.stop - 1) & (table["end"] >= flat.start)
    assert overlaps.sum() == 1, table
    hit = table[overlaps].iloc[0]
    # A window cannot localise more finely than its length, and aggregation="window"
    # averages over another window centred on each timestep: at most 1.5 T either side.
    assert hit["start"] >= flat.start - 3 * T // 2 and hit["end"] <= flat.stop - 1 + 3 * T // 2, table
    false_intervals = table[~overlaps]
    assert len(false_intervals) == 0, false_intervals


# ---------------------------------------------------------------------------
# 4. Layouts
# ---------------------------------------------------------------------------
def test_reconstruct_1d_gives_1d(fitted_1d, series_1d):
    out = fitted_1d.reconstruct(series_1d)
    assert isinstance(out, np.ndarray) and out.shape == (160,) and out.dtype == np.float64
    np.testing.assert_array_equal(fitted_1d.reconstruct(list(series_1d)), out)


def test_reconstruct_2d_gives_2d(fitted_frame, frame_2f):
    out = fitted_frame.reconstruct(frame_2f.to_numpy())
    assert isinstance(out, np.ndarray) and out.shape == (150, 2)


def test_reconstruct_dataframe_keeps_index_and_columns(fitted_frame, frame_2f):
    out = fitted_frame.reconstruct(frame_2f)
    assert isinstance(out, pd.DataFrame)
    pd.testing.assert_index_equal(out.index, frame_2f.index)
    assert list(out.columns) == ["temp", "load"]
    np.testing.assert_array_equal(out.to_numpy(), fitted_frame.reconstruct(frame_2f.to_numpy()))


def test_reconstruct_named_series_keeps_index_and_name(fitted_1d, series_1d, frame_2f):
    series = pd.Series(series_1d, index=pd.date_range("2024-01-01", periods=160, freq="min"), name="flow")
    out = fitted_1d.reconstruct(series)
    assert isinstance(out, pd.Series) and out.name == "flow"
    pd.testing.assert_index_equal(out.index, series.index)
    np.testing.assert_array_equal(out.to_numpy(), fitted_1d.reconstruct(series_1d))


def test_reconstruct_unnamed_series_stays_unnamed(fitted_1d, series_1d):
    out = fitted_1d.reconstruct(pd.Series(series_1d))
    assert out.name is None


def test_scores_every_timestep_first_and_last_included(fitted_1d, series_1d):
    scores = fitted_1d.anomaly_score(series_1d)
    assert scores.shape == (160,) and scores.dtype == np.float64
    assert np.isfinite(scores).all() and (scores >= 0).all()
    assert scores[0] > 0 and scores[-1] > 0
    np.testing.assert_array_equal(fitted_1d.anomaly_score(pd.Series(series_1d)), scores)


def test_per_feature_scores(fitted_frame, frame_2f):
    scores = fitted_frame.anomaly_score(frame_2f)
    per = fitted_frame.anomaly_score(frame_2f, per_feature=True)
    assert scores.shape == (150,) and per.shape == (150, 2)
    np.testing.assert_allclose(per.mean(axis=1), scores, rtol=1e-12)


def test_per_feature_scores_one_feature(fitted_1d, series_1d):
    per = fitted_1d.anomaly_score(series_1d, per_feature=True)
    assert per.shape == (160, 1)
    np.testing.assert_array_equal(per[:, 0], fitted_1d.anomaly_score(series_1d))


def test_panel_layouts(fitted_panel, panel):
    assert fitted_panel.anomaly_score(panel).shape == (48,)
    assert fitted_panel.anomaly_score(panel, per_feature=True).shape == (48, 2)
    assert fitted_panel.reconstruct(panel).shape == (48, 8, 2)
    assert fitted_panel.encode(panel).shape == (48, 6)


def test_score_samples_is_minus_anomaly_score(fitted_frame, frame_2f, fitted_panel, panel):
    np.testing.assert_array_equal(fitted_frame.score_samples(frame_2f), -fitted_frame.anomaly_score(frame_2f))
    np.testing.assert_array_equal(fitted_panel.score_samples(panel), -fitted_panel.anomaly_score(panel))


def test_detect_columns_with_and_without_time_index(fitted_frame, frame_2f):
    with_time = fitted_frame.detect(frame_2f, threshold=0.0)
    assert list(with_time.columns) == [
        "start", "end", "start_time", "end_time", "length", "peak_score", "mean_score", "severity", "top_features",
    ]
    without = fitted_frame.detect(frame_2f.to_numpy(), threshold=0.0)
    assert list(without.columns) == ["start", "end", "length", "peak_score", "mean_score", "severity", "top_features"]
    # threshold 0: every timestep has a positive score -> one interval covering everything
    assert with_time[["start", "end", "length"]].values.tolist() == [[0, 149, 150]]
    assert with_time["start_time"].iloc[0] == frame_2f.index[0]
    assert with_time["end_time"].iloc[0] == frame_2f.index[-1]
    assert math.isinf(with_time["severity"].iloc[0])


def test_detect_empty_table_has_the_columns(fitted_frame, frame_2f):
    table = fitted_frame.detect(frame_2f, threshold=1e9)
    assert len(table) == 0
    assert {"start", "end", "start_time", "end_time", "severity"} <= set(table.columns)


@pytest.fixture(scope="module")
def spiky(series_1d) -> np.ndarray:
    """`series_1d` with two spikes and a shifted stretch: something to detect."""
    x = series_1d.copy()
    x[40] += 3.0
    x[52] -= 3.0
    x[100:112] += 1.5
    return x


@pytest.mark.parametrize("quantile", [0.5, 0.8, 0.95])
@pytest.mark.parametrize("min_gap", [1, 3, 6, 25])
def test_detect_matches_a_timestep_by_timestep_walk(fitted_1d, spiky, quantile, min_gap):
    scores = fitted_1d.anomaly_score(spiky)
    threshold = float(np.quantile(scores, quantile))
    table = fitted_1d.detect(spiky, threshold=threshold, min_gap=min_gap)
    expected = reference_intervals(scores, threshold, min_gap)
    assert list(zip(table["start"], table["end"])) == expected
    for row, (start, end) in zip(table.itertuples(), expected):
        part = scores[start : end + 1]
        assert row.length == end - start + 1
        assert row.peak_score == pytest.approx(part.max(), rel=1e-12)
        assert row.mean_score == pytest.approx(part.mean(), rel=1e-12)
        assert row.severity == pytest.approx(part.max() / threshold, rel=1e-12)


def test_detect_defaults_are_threshold_and_window_length(fitted_1d, spiky):
    scores = fitted_1d.anomaly_score(spiky)
    assert scores.max() > fitted_1d.threshold_  # the spikes are above the training maximum
    table = fitted_1d.detect(spiky)
    expected = reference_intervals(scores, fitted_1d.threshold_, fitted_1d.timesteps_)
    assert expected and list(zip(table["start"], table["end"])) == expected


def test_detect_on_panel_reports_samples_without_merging(fitted_panel, panel):
    scores = fitted_panel.anomaly_score(panel)
    threshold = float(np.median(scores))
    table = fitted_panel.detect(panel, threshold=threshold)
    # One row per sample above the threshold (the panel API of issue 16: samples, not intervals).
    assert sorted(table["sample"]) == [i for i in range(len(scores)) if scores[i] > threshold]
    assert "start_time" not in table.columns


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": -0.5}, r"threshold must be a finite number >= 0, got -0\.5"),
        ({"threshold": float("nan")}, r"threshold must be a finite number >= 0, got nan"),
        ({"threshold": "high"}, r"threshold must be a finite number >= 0, got 'high'"),
        ({"min_gap": 0}, r"min_gap must be an integer >= 1, got 0"),
        ({"min_gap": 2.5}, r"min_gap must be an integer >= 1, got 2\.5"),
    ],
)
def test_detect_rejects_bad_arguments(fitted_1d, series_1d, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        fitted_1d.detect(series_1d, **kwargs)


def test_encode_rejects_bad_stride(fitted_1d, series_1d):
    with pytest.raises(ParameterError, match=r"stride must be an integer >= 1, got 0"):
        fitted_1d.encode(series_1d, stride=0)


# ---------------------------------------------------------------------------
# 5. Merging correctness against the window-by-window loop
# ---------------------------------------------------------------------------
def per_timestep(model, score_stride=1):
    """The fitted model, scoring every stride-1 (or strided) window, without the window aggregation."""
    return copy.copy(model).set_params(
        score_stride=score_stride, aggregation="timestep", scorer="reconstruction", normalize_errors=False
    )


@pytest.mark.parametrize("fixture", ["fitted_1d", "fitted_frame", "fitted_sequence"])
def test_scores_and_reconstruction_match_the_window_loop(fixture, request):
    model = per_timestep(request.getfixturevalue(fixture))
    X = request.getfixturevalue("frame_2f" if fixture == "fitted_frame" else "series_1d")
    errors, recon = reference_series(model, X)
    np.testing.assert_allclose(model.anomaly_score(X), errors.mean(axis=1), rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(model.anomaly_score(X, per_feature=True), errors, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(canonical(model.reconstruct(X)), recon, rtol=1e-5, atol=1e-9)


def test_window_aggregation_is_the_centred_mean_of_timestep_scores(fitted_frame, frame_2f):
    model = copy.copy(fitted_frame).set_params(score_stride=1, scorer="reconstruction", normalize_errors=False)
    errors, _ = reference_series(model, frame_2f)
    T = model.timesteps_
    want = np.array([naive.centred_mean_loop(list(errors[:, f]), T) for f in range(errors.shape[1])]).T
    np.testing.assert_allclose(model.set_params(aggregation="window").anomaly_score(frame_2f, per_feature=True), want, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(model.anomaly_score(frame_2f), want.mean(axis=1), rtol=1e-5, atol=1e-12)


def test_peak_aggregation_gives_each_timestep_its_most_anomalous_window(fitted_frame, frame_2f):
    model = copy.copy(fitted_frame).set_params(score_stride=1, scorer="reconstruction", normalize_errors=False)
    errors, _ = reference_series(model, frame_2f)
    T, n = model.timesteps_, len(errors)
    window_means = np.array(naive.centred_mean_loop(list(errors.mean(axis=1)), T))  # the mean of the stretch at each s
    want = np.empty(n)
    for t in range(n):  # the highest mean among the stretches [s - T // 2, s - T // 2 + T) that hold t
        want[t] = max(window_means[s] for s in range(n) if s - T // 2 <= t < s - T // 2 + T)
    np.testing.assert_allclose(model.set_params(aggregation="peak").anomaly_score(frame_2f), want, rtol=1e-5, atol=1e-12)
    # The per-feature scores stay the centred means (what top_features ranks).
    per = np.array([naive.centred_mean_loop(list(errors[:, f]), T) for f in range(errors.shape[1])]).T
    np.testing.assert_allclose(model.anomaly_score(frame_2f, per_feature=True), per, rtol=1e-5, atol=1e-12)
    assert want.max() == pytest.approx(window_means.max()) and (want >= window_means - 1e-12).all()


def test_peak_aggregation_of_the_combined_score_and_its_threshold(series_1d):
    model = LSTMAutoencoder(timesteps=12, units=4, epochs=2, random_state=0, verbose=0, aggregation="peak").fit(series_1d[:200])
    window = copy.copy(model).set_params(aggregation="window").anomaly_score(series_1d)
    T = model.timesteps_
    want = [max(window[max(0, t - (T - 1 - T // 2)) : t + T // 2 + 1]) for t in range(len(window))]
    np.testing.assert_allclose(model.anomaly_score(series_1d), want, rtol=1e-12)
    assert model.threshold_ == pytest.approx(1.25 * model.anomaly_score(series_1d[:200]).max())


def test_merging_is_the_same_across_inference_chunks(fitted_frame, frame_2f, monkeypatch):
    fitted_frame = per_timestep(fitted_frame)
    errors, recon = reference_series(fitted_frame, frame_2f)
    # 1200 values per chunk -> 1200 // (7 * 4 * 8 units) = 5 windows per chunk, 144 windows: 29 chunks, a ragged last one.
    monkeypatch.setattr(inference_module, "CHUNK_VALUES", 1200)
    np.testing.assert_allclose(fitted_frame.anomaly_score(frame_2f, per_feature=True), errors, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(fitted_frame.reconstruct(frame_2f).to_numpy(), recon, rtol=1e-5, atol=1e-9)


def test_panel_scores_and_reconstruction_match_the_sample_loop(fitted_panel, panel, monkeypatch):
    errors, recon = reference_panel(fitted_panel, panel)
    np.testing.assert_allclose(fitted_panel.anomaly_score(panel), errors.mean(axis=1), rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(fitted_panel.anomaly_score(panel, per_feature=True), errors, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(fitted_panel.reconstruct(panel), recon, rtol=1e-5, atol=1e-9)
    monkeypatch.setattr(inference_module, "CHUNK_VALUES", 600)  # 600 // (8 * 4 * 6 units) = 3 samples per chunk
    np.testing.assert_allclose(fitted_panel.anomaly_score(panel), errors.mean(axis=1), rtol=1e-5, atol=1e-12)


def test_panel_encode_matches_one_sample_at_a_time(fitted_panel, panel):
    values = scaled(fitted_panel, panel)
    expected = np.stack([encode_one(fitted_panel, sample) for sample in values])
    np.testing.assert_allclose(fitted_panel.encode(panel), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("score_stride", [2, 3, 7])
def test_strided_scores_match_the_strided_window_loop(fitted_frame, frame_2f, score_stride, monkeypatch):
    """Every timestep (first and last included) is the exact mean over the strided windows covering it."""
    model = per_timestep(copy.deepcopy(fitted_frame), score_stride)
    errors, recon = reference_series(model, frame_2f, stride=score_stride)
    scores = model.anomaly_score(frame_2f, per_feature=True).to_numpy()  # a DataFrame for DataFrame input
    assert scores.shape == (150, 2) and np.isfinite(scores).all()
    np.testing.assert_allclose(scores, errors, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(model.reconstruct(frame_2f).to_numpy(), recon, rtol=1e-5, atol=1e-9)
    monkeypatch.setattr(inference_module, "CHUNK_VALUES", 1200)  # 5 windows per chunk
    np.testing.assert_allclose(model.anomaly_score(frame_2f, per_feature=True), errors, rtol=1e-5, atol=1e-12)
    # and the stride matters: stride 1 averages over other windows
    assert not np.allclose(scores, per_timestep(fitted_frame).anomaly_score(frame_2f, per_feature=True), rtol=1e-6, atol=0)


def test_score_stride_auto_is_an_eighth_of_the_window(fitted_1d, series_1d):
    auto = copy.deepcopy(fitted_1d).set_params(score_stride="auto")
    explicit = copy.deepcopy(fitted_1d).set_params(score_stride=max(1, fitted_1d.timesteps_ // 8))
    np.testing.assert_array_equal(auto.anomaly_score(series_1d), explicit.anomaly_score(series_1d))


def test_score_stride_does_not_change_panel_scores(fitted_panel, panel):
    strided = copy.deepcopy(fitted_panel).set_params(score_stride=3)
    np.testing.assert_array_equal(strided.anomaly_score(panel), fitted_panel.anomaly_score(panel))


def test_score_stride_larger_than_timesteps_raises(series_1d, fitted_1d):
    with pytest.raises(ParameterError, match=r"score_stride=6 is larger than timesteps=5"):
        LSTMAutoencoder(timesteps=5, score_stride=6, verbose=0).fit(series_1d)
    model = copy.deepcopy(fitted_1d).set_params(score_stride=fitted_1d.timesteps_ + 1)
    with pytest.raises(ParameterError, match=rf"score_stride must be .*timesteps={fitted_1d.timesteps_}.*got 7"):
        model.anomaly_score(series_1d)


@pytest.mark.parametrize("stride", [None, 1, 3, 7, 10])
def test_encode_windows_start_where_window_starts_says(fitted_frame, frame_2f, stride):
    step = fitted_frame.stride if stride is None else stride  # default: the model's stride (2)
    T = fitted_frame.timesteps_
    starts = lstmae.window_starts(150, T, step)
    assert list(starts) == naive.window_starts(150, T, step)
    values = scaled(fitted_frame, frame_2f)
    expected = np.stack([encode_one(fitted_frame, values[s : s + T]) for s in starts])
    encoded = fitted_frame.encode(frame_2f) if stride is None else fitted_frame.encode(frame_2f, stride=stride)
    assert encoded.shape == (len(starts), 4)
    np.testing.assert_allclose(encoded, expected, rtol=1e-5, atol=1e-6)


def test_sequence_encode_gives_every_step(fitted_sequence, series_1d):
    T = fitted_sequence.timesteps_
    starts = lstmae.window_starts(160, T, 4)
    values = scaled(fitted_sequence, series_1d)
    expected = np.stack([encode_one(fitted_sequence, values[s : s + T]) for s in starts])
    encoded = fitted_sequence.encode(series_1d, stride=4)
    assert encoded.shape == (len(starts), T, 3)
    np.testing.assert_allclose(encoded, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# 6. Feature and shape mismatches
# ---------------------------------------------------------------------------
SCORING = {
    "anomaly_score": lambda m, x: m.anomaly_score(x),
    "reconstruct": lambda m, x: m.reconstruct(x),
    "encode": lambda m, x: m.encode(x),
    "detect": lambda m, x: m.detect(x),
    "score_samples": lambda m, x: m.score_samples(x),
}


@pytest.mark.parametrize("method", sorted(SCORING))
def test_different_feature_count_raises(method, fitted_1d):
    with pytest.raises(FeatureMismatchError, match=r"X has 2 feature\(s\) but the model was fitted on 1"):
        SCORING[method](fitted_1d, np.zeros((30, 2)))


@pytest.mark.parametrize("columns", [["temp", "humidity"], ["load", "temp"]])
def test_different_column_names_raise(fitted_frame, frame_2f, columns):
    renamed = frame_2f.copy()
    renamed.columns = columns
    with pytest.raises(
        FeatureMismatchError, match=re.escape(f"X has columns {columns} but the model was fitted on ['temp', 'load']")
    ):
        fitted_frame.anomaly_score(renamed)


@pytest.mark.parametrize("method", sorted(SCORING))
def test_panel_with_other_sample_length_raises(method, fitted_panel, panel):
    with pytest.raises(
        FeatureMismatchError, match=r"3-D input has 9 timesteps per sample but the model was fitted with timesteps=8"
    ):
        SCORING[method](fitted_panel, np.zeros((4, 9, 2)))


@pytest.mark.parametrize("method", sorted(SCORING))
def test_series_shorter_than_timesteps_raises(method, fitted_1d, series_1d):
    with pytest.raises(DataError, match=r"the series has 5 timesteps, fewer than the model's timesteps=6") as info:
        SCORING[method](fitted_1d, series_1d[:5])
    assert not isinstance(info.value, FeatureMismatchError)


def test_series_exactly_one_window_long_is_scored(fitted_1d, series_1d):
    fitted_1d = per_timestep(fitted_1d)
    errors, _ = reference_series(fitted_1d, series_1d[:6])
    np.testing.assert_allclose(fitted_1d.anomaly_score(series_1d[:6]), errors.mean(axis=1), rtol=1e-5)


def test_fit_with_panel_length_other_than_timesteps_raises(panel):
    with pytest.raises(DataError, match=r"3-D input has 8 timesteps per sample but timesteps=5"):
        LSTMAutoencoder(timesteps=5, verbose=0).fit(panel)


def test_fit_on_series_shorter_than_timesteps_raises(series_1d):
    with pytest.raises(DataError, match=r"the series has 4 timesteps, fewer than timesteps=6"):
        LSTMAutoencoder(timesteps=6, verbose=0).fit(series_1d[:4])


def test_fit_with_no_training_window_left_raises(series_1d):
    # 6 timesteps, T=6: one window; validation_split=0.1 keeps int(1 * 0.9) = 0 to train on.
    with pytest.raises(DataError, match=r"only 1 training window\(s\) and validation_split=0.1 leaves none to train on"):
        LSTMAutoencoder(timesteps=6, verbose=0).fit(series_1d[:6])


def test_fit_rejects_non_finite_data(series_1d):
    bad = series_1d.copy()
    bad[7] = np.nan
    with pytest.raises(DataError, match=r"missing value \(NaN\) at position \(7,\)"):
        LSTMAutoencoder(timesteps=4, verbose=0).fit(bad)


# ---------------------------------------------------------------------------
# 7. Determinism
# ---------------------------------------------------------------------------
def test_same_seed_gives_bit_identical_scores_other_seed_does_not(series_1d, fitted_1d, tiny):
    again = LSTMAutoencoder(timesteps=6, **tiny).fit(series_1d)
    assert np.array_equal(again.anomaly_score(series_1d), fitted_1d.anomaly_score(series_1d))
    assert again.history_ == fitted_1d.history_
    other = LSTMAutoencoder(timesteps=6, **{**tiny, "random_state": 1}).fit(series_1d)
    assert not np.array_equal(other.anomaly_score(series_1d), fitted_1d.anomaly_score(series_1d))


def test_unseeded_fit_records_a_seed_that_reproduces_it(series_1d, tiny):
    params = {**tiny, "random_state": None, "epochs": 1}
    first = LSTMAutoencoder(timesteps=5, **params).fit(series_1d)
    assert isinstance(first.seed_, int) and 0 <= first.seed_ < 2**63
    replay = LSTMAutoencoder(timesteps=5, **{**params, "random_state": first.seed_}).fit(series_1d)
    assert np.array_equal(replay.anomaly_score(series_1d), first.anomaly_score(series_1d))


def test_fit_does_not_touch_the_global_torch_rng(series_1d, tiny):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    LSTMAutoencoder(timesteps=5, **{**tiny, "epochs": 1}).fit(series_1d)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------------------
# 8. Save / load
# ---------------------------------------------------------------------------
def assert_same_model(loaded, model, X):
    assert np.array_equal(loaded.anomaly_score(X), model.anomaly_score(X))
    np.testing.assert_array_equal(canonical(loaded.reconstruct(X)), canonical(model.reconstruct(X)))
    assert np.array_equal(loaded.encode(X), model.encode(X))
    assert loaded.threshold_ == model.threshold_
    assert loaded.history_ == model.history_
    expected_params = {**model.get_params(), "device": "auto"}
    assert loaded.get_params() == expected_params
    for name in ["timesteps_", "n_features_in_", "input_kind_", "seed_", "config_", "timesteps_reason_"]:
        assert getattr(loaded, name) == getattr(model, name), name
    np.testing.assert_array_equal(loaded.scaler_mean_, model.scaler_mean_)
    np.testing.assert_array_equal(loaded.scaler_scale_, model.scaler_scale_)


@pytest.mark.parametrize(
    ("fixture", "data"),
    [("fitted_1d", "series_1d"), ("fitted_frame", "frame_2f"), ("fitted_panel", "panel"), ("fitted_sequence", "series_1d")],
)
def test_save_load_round_trip_is_bit_identical(fixture, data, request, tmp_path):
    model, X = request.getfixturevalue(fixture), request.getfixturevalue(data)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = LSTMAutoencoder.load(path)
    assert_same_model(loaded, model, X)
    if isinstance(X, pd.DataFrame):
        pd.testing.assert_frame_equal(loaded.reconstruct(X), model.reconstruct(X))
        np.testing.assert_array_equal(loaded.feature_names_in_, ["temp", "load"])
    else:
        assert not hasattr(loaded, "feature_names_in_")


def test_loaded_dataframe_model_still_checks_column_names(fitted_frame, frame_2f, tmp_path):
    fitted_frame.save(tmp_path / "m.safetensors")
    loaded = LSTMAutoencoder.load(tmp_path / "m.safetensors")
    with pytest.raises(FeatureMismatchError, match=r"X has columns \['a', 'b'\]"):
        loaded.anomaly_score(frame_2f.set_axis(["a", "b"], axis=1))


def test_load_sets_the_requested_device(fitted_1d, tmp_path):
    fitted_1d.save(tmp_path / "m.safetensors")
    loaded = LSTMAutoencoder.load(tmp_path / "m.safetensors", device="cpu")
    assert loaded.get_params()["device"] == "cpu"
    assert next(loaded.module_.parameters()).device.type == "cpu"


def test_tuple_units_survive_a_round_trip(series_1d, tiny, tmp_path):
    model = LSTMAutoencoder(timesteps=5, **{**tiny, "units": (8, 4), "epochs": 1}).fit(series_1d)
    model.save(tmp_path / "m.safetensors")
    loaded = LSTMAutoencoder.load(tmp_path / "m.safetensors")
    assert loaded.get_params()["units"] == (8, 4)


def test_load_missing_file_raises(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(ModelFileError, match=re.escape(f"no model file at {str(missing)!r}")):
        LSTMAutoencoder.load(missing)


def test_load_a_file_that_is_not_a_model_raises(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("hello, not a model")
    with pytest.raises(ModelFileError, match=r"is not a readable lstmae model"):
        LSTMAutoencoder.load(path)


def test_save_before_fit_raises(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        LSTMAutoencoder().save(tmp_path / "m.safetensors")


# ---------------------------------------------------------------------------
# 9. Validation and early stopping
# ---------------------------------------------------------------------------
def test_history_has_train_and_validation_metrics_per_epoch(fitted_1d, series_1d):
    history = fitted_1d.history_
    assert set(history) == {"loss", "mae", "val_loss", "val_mae"}
    assert all(len(values) == 2 for values in history.values())  # epochs=2, patience 5: no early stop
    assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for values in history.values() for v in values)
    # The returned weights are the best epoch's: their validation loss is the smallest one recorded.
    assert validation_loss(fitted_1d, series_1d, 0.1) == pytest.approx(min(history["val_loss"]), rel=1e-5)


def test_panel_validation_samples_are_the_last_ones(fitted_panel, panel):
    # 48 samples, validation_split=0.1: int(48 * 0.9) = 43 train, the last 5 validate.
    values = torch.from_numpy(scaled(fitted_panel, panel)[43:])
    with torch.no_grad():
        loss = float((fitted_panel.module_(values) - values).pow(2).mean())
    assert loss == pytest.approx(min(fitted_panel.history_["val_loss"]), rel=1e-5)


def test_no_validation_keys_without_validation(series_1d, tiny):
    model = LSTMAutoencoder(timesteps=5, validation_split=0.0, **tiny).fit(series_1d)
    assert set(model.history_) == {"loss", "mae"}
    assert len(model.history_["loss"]) == 2


def expected_epochs(val_losses: list[float], patience: int, max_epochs: int) -> int:
    """Epochs Keras/Lightning early stopping runs for: stop after ``patience`` epochs without a strictly lower loss."""
    best, waited = math.inf, 0
    for epoch, value in enumerate(val_losses, start=1):
        if value < best:
            best, waited = value, 0
        else:
            waited += 1
            if waited >= patience:
                return epoch
    return max_epochs


@pytest.mark.parametrize("patience", [1, 2])
def test_early_stopping_stops_and_restores_the_best_epoch(patience):
    # White noise with a huge learning rate: the validation loss bounces, it cannot improve for 30 epochs in a row.
    x = np.random.default_rng(0).standard_normal(200)
    model = LSTMAutoencoder(
        timesteps=5, units=4, epochs=30, patience=patience, learning_rate=1.0, validation_split=0.2,
        random_state=0, verbose=0,
    ).fit(x)
    history = model.history_
    epochs_run = len(history["loss"])
    assert epochs_run < 30
    assert all(len(values) == epochs_run for values in history.values())
    assert epochs_run == expected_epochs(history["val_loss"], patience, 30)
    restored = validation_loss(model, x, 0.2)
    assert restored == pytest.approx(min(history["val_loss"]), rel=1e-5)
    # The last epoch is never the best when training stopped early: restoring made a difference.
    assert history["val_loss"][-1] > min(history["val_loss"])
    assert restored < history["val_loss"][-1] - 1e-6


# ---------------------------------------------------------------------------
# 11. explain
# ---------------------------------------------------------------------------
def test_explain_fitted_shows_layer_shapes(fitted_frame, fitted_1d):
    text = fitted_frame.explain()
    assert "(batch, 7, 2)" in text  # encoder input: T=7, F=2
    assert "(batch, 7, 4)" in text  # the repeated latent vector of size 4
    assert "LSTM(8" in text and "LSTM(4" in text
    assert "(batch, 6, 1)" in fitted_1d.explain()


def test_explain_with_data_before_fit(frame_2f):
    text = LSTMAutoencoder(timesteps=10, units=16).explain(frame_2f)
    assert "(batch, 10, 2)" in text
    assert "150 timesteps x 2 features -> 141 windows" in text  # 150 - 10 + 1 stride-1 windows


# ---------------------------------------------------------------------------
# 12. timesteps="auto"
# ---------------------------------------------------------------------------
def test_auto_timesteps_on_a_panel_is_the_sample_length(fitted_panel):
    assert fitted_panel.timesteps == "auto"  # the parameter is untouched
    assert fitted_panel.timesteps_ == 8
    assert "length of each sample" in fitted_panel.timesteps_reason_
    assert fitted_panel.input_kind_ == "panel"


def test_auto_timesteps_finds_the_period_of_a_sine(make_sine):
    x = make_sine(400, 48, noise=0.1, seed=5)
    model = LSTMAutoencoder(units=4, epochs=1, batch_size=128, random_state=0, verbose=0).fit(x)
    assert abs(model.timesteps_ - 48) <= 2
    found = re.search(r"period of the data is (\d+)", model.timesteps_reason_)
    assert found, model.timesteps_reason_
    assert abs(int(found.group(1)) - 48) <= 2


@pytest.mark.parametrize("gap, shown", [(0, "0"), (1.5, "1.5"), (True, "True")])
def test_detect_refuses_a_bad_min_gap_with_the_tables_message(fitted_1d, series_1d, gap, shown):
    with pytest.raises(ParameterError, match=rf"^min_gap must be an integer >= 1, got {re.escape(shown)}\.$"):
        fitted_1d.detect(series_1d, min_gap=gap)
