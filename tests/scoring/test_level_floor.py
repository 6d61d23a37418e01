"""A floor under every part's level, relative to the scale of its values: clean signals give finite thresholds.

A clean or exactly repeating signal puts the held-out windows at distance ~0 from
the training ones; a level of ~0 would divide every later score by ~0 (NAB's
art_daily_no_noise gave a threshold of 1e12). Checked: the floors' values against
loops, the thresholds they give, the note that says so, and that they leave a
noisy signal's levels alone.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lstmae import LSTMAutoencoder
from lstmae.errors import DegenerateModelWarning
from lstmae.scoring.parts.base import LEVEL_SHARE
from lstmae.scoring.parts.reconstruction import ERROR_FLOOR


def fitted(x: np.ndarray, **params) -> tuple[LSTMAutoencoder, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LSTMAutoencoder(**{"timesteps": 20, "units": (8, 4), "epochs": 3, "scorer": "combined",
                                   "random_state": 0, "verbose": 0, **params}).fit(x)
    return model, [str(w.message) for w in caught if issubclass(w.category, DegenerateModelWarning)]


def spread_loop(rows: np.ndarray) -> float:
    """The root mean squared distance of rows (M, D) to their mean, by a loop."""
    centre = [sum(column) / len(rows) for column in zip(*rows.tolist())]
    return (sum(sum((a - c) ** 2 for a, c in zip(row, centre)) for row in rows.tolist()) / len(rows)) ** 0.5


def test_an_exactly_periodic_signal_gets_floored_levels_and_a_finite_threshold():
    x = np.sin(2 * np.pi * np.arange(800) / 20)  # no noise: every window has exact copies one period away
    model, messages = fitted(x)
    state = model.scoring_state_
    latent, neighbours = state.part("latent"), state.part("neighbours")
    assert neighbours.level == LEVEL_SHARE  # distances in [0, 2]: 1% of that scale
    reference = latent.reference.double().numpy()
    assert latent.level == pytest.approx(max(LEVEL_SHARE * spread_loop(reference), 1e-12), rel=1e-5)
    assert latent.clean and neighbours.clean and not state.part("reconstruction").clean  # measured ~0: noted
    assert np.isfinite(model.threshold_) and model.threshold_ < 1e4  # 1e8 and more without the floors
    note = [m for m in messages if m.startswith("clean signal")]
    assert len(note) == 1 and "latent and neighbours part(s)" in note[0]
    assert model.diagnostics_["warnings"][-1] == note[0]


def test_a_noisy_signal_keeps_its_measured_levels():
    rng = np.random.default_rng(0)
    x = np.sin(2 * np.pi * np.arange(800) / 20) + 0.3 * rng.normal(size=800)
    model, messages = fitted(x)
    for part in model.scoring_state_.parts:
        assert part.level > 2 * part.level_floor() and not part.clean, part.name
    assert not any(m.startswith("clean signal") for m in messages)


def test_a_feature_rebuilt_exactly_is_divided_by_the_error_floor_not_by_zero():
    """Training errors of ~0 (a signal rebuilt exactly): each feature's error level is ERROR_FLOOR (an RMS error of
    1% of the scaled std), so a later error of 0.01 scores 1, not 1e8; a real error level is kept as it is."""
    from lstmae.scoring.parts.reconstruction import Reconstruction
    from lstmae.scoring.parts.base import ScoringSettings

    part = Reconstruction()
    merged = np.zeros((100, 2))
    merged[:, 1] = 1e-10  # feature 0 rebuilt exactly, feature 1 almost
    part.fit_training(merged)
    np.testing.assert_array_equal(part.feature_levels, [ERROR_FLOOR, ERROR_FLOOR])
    settings = ScoringSettings("combined", "timestep", 1, 5, True)
    score, _ = part.values(np.full((3, 2), ERROR_FLOOR), False, settings)
    np.testing.assert_allclose(score, 1.0)
    noisy = np.full((100, 2), 0.5)
    part.fit_training(noisy)
    np.testing.assert_allclose(part.feature_levels, 0.5 * (1 + 1e-3))  # the relative floor only


def test_a_single_part_scorer_does_not_note_floors():
    """Only scorer="combined" divides by the levels: another scorer does not speak of them."""
    x = np.sin(2 * np.pi * np.arange(800) / 20)
    _, messages = fitted(x, scorer="neighbours")
    assert not any(m.startswith("clean signal") for m in messages)
