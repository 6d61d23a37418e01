"""The combined score of a series of several features (issue 25 item 2): the maximum over features of the
reconstruction scores, the nearest windows over the continuous features only, weights 2 and 16 — against
loops and the formula by hand; and everything else (one feature, a part alone, old files) as before."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from lstmae import LSTMAutoencoder
from lstmae.data.scaling import transform
from lstmae.scoring import combination, inference
from lstmae.scoring.aggregation import centred_mean
from lstmae.scoring.neighbours import STD_FLOOR
from naive import centred_mean_loop, nearest_window_loop, timestep_means, window_starts

T, STRIDE, N, TRAIN_END = 10, 3, 600, 400
FIT_PART = int((TRAIN_END - T + 1) * 0.9) + T - 1  # the rows trained on (before the validation windows)
HELD_FROM = int((TRAIN_END - T + 1) * 0.9)  # the held-out rows' first (the first validation window)


def flagged_series() -> np.ndarray:
    """(N, 3): a noisy sine with one odd stretch, and two 0/1 command flags (one the other's complement)."""
    rng = np.random.default_rng(3)
    t = np.arange(N)
    telemetry = np.sin(t / 4.0) + 0.05 * rng.standard_normal(N)
    telemetry[470:480] = 0.3 * np.sin(t[470:480] / 1.3)
    flag = (np.sin(t / 23.0) > 0.2).astype(float)
    flag[500:505] = 1 - flag[500:505]
    return np.stack([telemetry, flag, 1 - flag], axis=1)


def fit(x: np.ndarray, **params) -> LSTMAutoencoder:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # aggregation="window": the loops below give each part at its window's centre (tests/test_estimator.py checks "peak")
        return LSTMAutoencoder(timesteps=T, units=4, epochs=1, score_stride=STRIDE, random_state=0, verbose=0,
                               **{"aggregation": "window", **params}).fit(x[:TRAIN_END])


@pytest.fixture(scope="module")
def flagged() -> tuple[LSTMAutoencoder, np.ndarray]:
    x = flagged_series()
    return fit(x), x


def scaled_of(model: LSTMAutoencoder, x: np.ndarray) -> np.ndarray:
    return transform(x, model.scaler_mean_, model.scaler_scale_).astype(np.float64)


def neighbours_loop(model: LSTMAutoencoder, x: np.ndarray, columns: list[int]) -> np.ndarray:
    """The nearest-window part by loops over ``columns`` of the scaled series: windows of L = T // 2 steps (every
    STRIDE-th and the last) against every fit-part window of L steps, training windows skipping those within T of
    them; merged onto timesteps and centred-meaned over T."""
    scaled = scaled_of(model, x)[:, columns].tolist()
    length = T // 2
    starts = window_starts(len(x), length, STRIDE)
    reference_starts = window_starts(FIT_PART, length, 1)
    plain = nearest_window_loop(scaled, starts, reference_starts, length, STD_FLOOR, reference_series=scaled[:FIT_PART])
    skipping = nearest_window_loop(scaled, starts, reference_starts, length, STD_FLOOR, T, reference_series=scaled[:FIT_PART])
    distances = [skip if start + length <= TRAIN_END else near for start, near, skip in zip(starts, plain, skipping)]
    merged = timestep_means(len(x), starts, [[[d]] * length for d in distances])
    return np.asarray(centred_mean_loop([m[0] for m in merged], T))


def test_the_nearest_window_part_compares_the_continuous_feature_alone(flagged):
    model, x = flagged
    part = model.scoring_state_.part("neighbours")
    assert part.columns == [0] and part.series.shape == (FIT_PART, 1)
    scores = model.set_params(scorer="neighbours").anomaly_score(x)
    model.set_params(scorer="combined")
    np.testing.assert_allclose(scores, neighbours_loop(model, x, [0]), rtol=1e-4, atol=1e-4)
    # all three features would give other distances: the test can tell them apart
    assert np.abs(scores - neighbours_loop(model, x, [0, 1, 2])).max() > 1e-2


def test_the_combined_score_is_the_max_over_features_plus_the_weighted_parts(flagged):
    model, x = flagged
    state = model.scoring_state_
    assert state.weights == {"reconstruction": 1.0, "latent": 2.0, "neighbours": 16.0}
    assert state.part("reconstruction").features == "max"
    per = model.anomaly_score(x, per_feature=True)  # (n, F), the per-feature reconstruction scores
    latent = model.set_params(scorer="latent").anomaly_score(x)
    near = model.set_params(scorer="neighbours").anomaly_score(x)
    model.set_params(scorer="combined")
    levels = state.levels
    expected = per.max(axis=1) / levels["reconstruction"] + 2.0 * latent / levels["latent"] + 16.0 * near / levels["neighbours"]
    np.testing.assert_allclose(model.anomaly_score(x), expected, rtol=1e-12)

    # the reconstruction level: the held-out mean of the per-timestep maximum over features, by hand
    held = torch.from_numpy(scaled_of(model, x[HELD_FROM:TRAIN_END]).astype(np.float32))
    errors = inference.merged(model.module_, held, False, STRIDE).errors / state.part("reconstruction").feature_levels
    per_held = centred_mean(errors, T)  # (n_held, F)
    assert levels["reconstruction"] == pytest.approx(float(per_held.max(axis=1).mean()), rel=1e-12)
    assert abs(levels["reconstruction"] - float(per_held.mean(axis=1).mean())) > 0.1 * levels["reconstruction"]


def test_one_feature_a_part_alone_and_a_panel_keep_the_mean_and_every_feature(flagged, make_sine):
    _, x = flagged
    one = fit(x[:, :1])
    assert one.scoring_state_.part("reconstruction").features == "mean"
    assert one.scoring_state_.part("neighbours").columns is None
    assert one.scoring_state_.weights == combination.SERIES_WEIGHTS["univariate"]

    alone = fit(x, scorer="reconstruction")
    assert alone.scoring_state_.part("reconstruction").features == "mean" and alone.scoring_state_.part("neighbours") is None
    np.testing.assert_array_equal(alone.anomaly_score(x), alone.anomaly_score(x, per_feature=True).mean(axis=1))

    panel = np.sin(np.arange(10)[None, :, None] / 2 + np.linspace(0, 6, 40)[:, None, None]) * np.ones((1, 1, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = LSTMAutoencoder(units=4, epochs=1, random_state=0, verbose=0).fit(panel)
    assert fitted.scoring_state_.part("reconstruction").features == "mean"


def test_a_saved_model_scores_the_same_bits(flagged, tmp_path):
    model, x = flagged
    loaded = LSTMAutoencoder.load(model.save(tmp_path / "model.safetensors"))
    assert loaded.scoring_state_.part("neighbours").columns == [0]
    assert loaded.scoring_state_.part("reconstruction").features == "max"
    np.testing.assert_array_equal(loaded.anomaly_score(x), model.anomaly_score(x))
    assert loaded.threshold_ == model.threshold_


def test_a_file_saved_before_the_options_scores_with_the_mean_and_every_feature(flagged, tmp_path, monkeypatch):
    """A model file without "features" / "columns" (written before them, its nearest-window reference of every
    feature) scores its parts as a model fitted without the options does: the mean, every feature."""
    from lstmae.persistence.model_file import load_model, save_model

    model, x = flagged
    tensors, info = load_model(model.save(tmp_path / "model.safetensors"))
    fitted = dict(info["fitted"])
    parts = []
    for entry in fitted["parts"]:
        entry = {key: value for key, value in entry.items() if key not in ("features", "columns")}
        parts.append(entry)
    fitted["parts"] = parts
    tensors = dict(tensors)
    tensors["part.neighbours.series"] = torch.from_numpy(transform(x[:FIT_PART], model.scaler_mean_, model.scaler_scale_))
    document = {k: v for k, v in info.items() if k not in ("lstmae_version", "tensors_sha256")}
    save_model(tmp_path / "old.safetensors", tensors, {**document, "fitted": fitted})
    old = LSTMAutoencoder.load(tmp_path / "old.safetensors")
    assert old.scoring_state_.part("neighbours").columns is None and old.scoring_state_.part("reconstruction").features == "mean"

    monkeypatch.setitem(combination.SERIES_OPTIONS, "multivariate", {})  # the same network, the parts as before
    plain = fit(x)
    assert plain.scoring_state_.part("reconstruction").features == "mean"
    for scorer in ("reconstruction", "latent", "neighbours"):
        np.testing.assert_array_equal(old.set_params(scorer=scorer).anomaly_score(x), plain.set_params(scorer=scorer).anomaly_score(x))
    near = old.anomaly_score(x)
    np.testing.assert_allclose(near, neighbours_loop(old, x, [0, 1, 2]), rtol=1e-4, atol=1e-4)
    old.set_params(scorer="combined")
    levels = old.scoring_state_.levels
    per = old.anomaly_score(x, per_feature=True)
    latent = plain.set_params(scorer="latent").anomaly_score(x)
    expected = per.mean(axis=1) / levels["reconstruction"] + 2.0 * latent / levels["latent"] + 16.0 * near / levels["neighbours"]
    np.testing.assert_allclose(old.anomaly_score(x), expected, rtol=1e-12)


@pytest.mark.parametrize("sizes", [[1], [7, 30, 2]])
def test_a_stream_equals_the_batch(flagged, sizes):
    model, x = flagged
    frame = pd.DataFrame(x, columns=["telemetry", "on", "off"])
    expected = np.asarray(model.anomaly_score(frame))
    scorer, outs, at, k = model.stream(), [], 0, 0
    while at < len(frame):
        outs.append(scorer.update(frame.iloc[at : at + sizes[k % len(sizes)]]))
        at, k = at + sizes[k % len(sizes)], k + 1
    outs.append(scorer.flush())
    got = pd.concat(outs)
    assert len(got) == len(frame)
    np.testing.assert_allclose(got["score"].to_numpy(), expected, rtol=1e-5)
