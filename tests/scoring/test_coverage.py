"""The nearest-window part weighs as much as the training windows cover held-out ones (issue 25, NAB).

On a short training prefix of a drifting or noisy series even normal held-out
windows find no close training window: that part's held-out level is high and
it ranks nothing, so the weights table's nearest-window weight is scaled down
(`lstmae.scoring.combination.coverage`). Checked: the scaling against its
definition by hand, that a model fitted with the table's row applies it from
the level it measured (and scores with it, saved and loaded), that a periodic
signal keeps the full weight, and that weights given explicitly are kept.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lstmae import LSTMAutoencoder
from lstmae.scoring.combination import NEIGHBOUR_COVERAGE, SERIES_WEIGHTS, coverage, covered_weights


@pytest.mark.parametrize("level, kept", [(0.0, 1.0), (0.2, 1.0), (0.3, 1.0), (0.375, 0.5), (0.42, 0.2), (0.45, 0.0), (1.5, 0.0)])
def test_coverage_is_one_below_the_first_value_zero_above_the_second_and_linear_between(level, kept):
    assert NEIGHBOUR_COVERAGE == (0.3, 0.45)
    assert coverage(level) == pytest.approx(kept, abs=1e-12)


def test_covered_weights_scale_only_the_nearest_window_part():
    weights = {"reconstruction": 1.0, "latent": 0.25, "neighbours": 4.0}
    assert covered_weights(weights, {"reconstruction": 2.0, "latent": 0.5, "neighbours": 0.4}) == pytest.approx(
        {"reconstruction": 1.0, "latent": 0.25, "neighbours": 4.0 * (0.45 - 0.4) / 0.15})
    assert covered_weights({"reconstruction": 1.0, "latent": 0.25}, {"reconstruction": 2.0, "latent": 0.5}) == {
        "reconstruction": 1.0, "latent": 0.25}  # no nearest-window part: nothing to scale
    assert weights == {"reconstruction": 1.0, "latent": 0.25, "neighbours": 4.0}  # not changed in place


def fit(x: np.ndarray, **params) -> LSTMAutoencoder:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LSTMAutoencoder(**{"timesteps": 24, "units": 4, "epochs": 1, "random_state": 0, "verbose": 0, **params}).fit(x)


def test_a_noisy_walk_gets_a_smaller_weight_and_a_periodic_signal_the_full_one(tmp_path):
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.standard_normal(1500))  # a short prefix of a drift: held-out windows match nothing well
    model = fit(walk)
    state = model.scoring_state_
    level = state.part("neighbours").level
    table = SERIES_WEIGHTS["univariate"]["neighbours"]
    assert level > NEIGHBOUR_COVERAGE[0]  # the case this is for
    assert state.weights["neighbours"] == pytest.approx(table * coverage(level), rel=1e-12) and state.weights["neighbours"] < table
    # the score is the sum with that weight, and a saved model keeps it
    loaded = LSTMAutoencoder.load(model.save(tmp_path / "walk.safetensors"))
    assert loaded.scoring_state_.weights == state.weights
    np.testing.assert_array_equal(loaded.anomaly_score(walk), model.anomaly_score(walk))

    t = np.arange(1500)
    sine = np.sin(2 * np.pi * t / 24) + 0.01 * rng.standard_normal(1500)
    periodic = fit(sine).scoring_state_
    assert periodic.part("neighbours").level < NEIGHBOUR_COVERAGE[0]
    assert periodic.weights["neighbours"] == table


def test_the_weight_scales_the_nearest_window_term_of_the_score():
    rng = np.random.default_rng(1)
    walk = np.cumsum(rng.standard_normal(1200))
    model = fit(walk, aggregation="window")
    state = model.scoring_state_
    recon = model.set_params(scorer="reconstruction").anomaly_score(walk)
    latent = model.set_params(scorer="latent").anomaly_score(walk)
    near = model.set_params(scorer="neighbours").anomaly_score(walk)
    model.set_params(scorer="combined")
    levels, weights = state.levels, state.weights
    expected = (recon / levels["reconstruction"] + weights["latent"] * latent / levels["latent"]
                + SERIES_WEIGHTS["univariate"]["neighbours"] * coverage(levels["neighbours"]) * near / levels["neighbours"])
    np.testing.assert_allclose(model.anomaly_score(walk), expected, rtol=1e-9)


def test_weights_given_explicitly_are_kept():
    from lstmae.scoring.state import fit_state

    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.standard_normal(1500))
    model = fit(walk)
    assert model.scoring_state_.weights["neighbours"] < SERIES_WEIGHTS["univariate"]["neighbours"]
    given = {"reconstruction": 1.0, "latent": 0.25, "neighbours": 4.0}
    scaler = (model.scaler_mean_, model.scaler_scale_)
    state = fit_state(model.module_, walk.reshape(-1, 1), False, scaler, model._settings(), model.validation_split,
                      model.threshold, model.contamination, weights=given)
    assert state.weights == given
