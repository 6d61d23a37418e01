"""The training edge: scored data that contains the training data is scored as the threshold saw it.

`lstmae.scoring.seen` finds the training windows in scored data by their rows'
fingerprints; the parts then skip their trivial matches. Checked against loops
(the fingerprints, the rows seen) and against what the threshold was fitted
from (its rule: 1.25 x the highest training score).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from lstmae import LSTMAutoencoder
from lstmae.scoring.seen import UNSEEN, TrainingRows, row_hashes, sample_hashes, window_hashes

MASK = (1 << 64) - 1


def polynomial_loop(rows: list[int], start: int, length: int) -> int:
    """The window's sum of row hash x base^k (k = 0 .. length-1) modulo 2^64, in Python integers, before mixing."""
    from lstmae.scoring import seen

    base = int(seen._BASE)
    return sum(rows[start + k] * pow(base, k, 1 << 64) for k in range(length)) & MASK


def test_window_fingerprints_are_the_polynomial_of_their_rows():
    """The prefix-sum form (with the base's inverse) equals the direct polynomial, for every start and length."""
    from lstmae.scoring import seen

    g = torch.Generator().manual_seed(0)
    rows = row_hashes(torch.randn(40, 3, generator=g))
    as_ints = [int(h) for h in rows]
    for length in (1, 2, 7, 40):
        starts = np.arange(40 - length + 1)
        expected = np.array([polynomial_loop(as_ints, s, length) for s in starts], dtype=np.uint64)
        with np.errstate(over="ignore"):
            mixed = seen._mix(expected ^ np.uint64(length))
        np.testing.assert_array_equal(window_hashes(rows, starts, length), mixed)
    panel = rows.reshape(8, 5)
    np.testing.assert_array_equal(sample_hashes(panel), window_hashes(rows, np.arange(0, 40, 5), 5))


def test_a_one_bit_change_changes_the_fingerprint_and_equal_rows_share_it():
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(1))
    changed = x.clone()
    changed[7, 1] = torch.nextafter(changed[7, 1], torch.tensor(10.0))
    a, b = row_hashes(x), row_hashes(changed)
    assert (a != b).sum() == 1 and a[7] != b[7]
    assert window_hashes(a, np.array([3]), 6)[0] != window_hashes(b, np.array([3]), 6)[0]  # covers row 7
    assert window_hashes(a, np.array([8]), 6)[0] == window_hashes(b, np.array([8]), 6)[0]  # does not
    swapped = x[[1, 0, *range(2, 20)]]
    assert window_hashes(row_hashes(swapped), np.array([0]), 2)[0] != window_hashes(a, np.array([0]), 2)[0]  # order counts


def test_training_windows_are_found_wherever_they_sit():
    """Found: the training window at its own start, shifted by any offset in the scored data; not found: new rows."""
    g = torch.Generator().manual_seed(2)
    training = torch.randn(100, 2, generator=g)
    rows = TrainingRows.of(training)
    new = torch.randn(30, 2, generator=g)
    scored = torch.cat([new[:13], training[40:70], new[13:]])  # training rows 40..69 at 13..42
    where = torch.arange(0, len(scored) - 5 + 1)
    at = rows.locate(scored).at(where, 5)
    expected = [s + 27 if 13 <= s and s + 5 <= 43 else UNSEEN for s in where.tolist()]
    assert at.tolist() == expected
    assert rows.locate(new).at(torch.arange(26), 5) is None  # nothing seen: None, scored as new data
    mask = rows.seen_rows(scored, 5)
    np.testing.assert_array_equal(mask, (np.arange(len(scored)) >= 13) & (np.arange(len(scored)) < 43))


def test_a_panel_finds_its_training_samples():
    g = torch.Generator().manual_seed(3)
    training = torch.randn(12, 6, 2, generator=g)
    rows = TrainingRows.of(training)
    scored = torch.cat([training[[4, 9]], torch.randn(3, 6, 2, generator=g)])
    assert rows.locate(scored).at(torch.arange(5), 6).tolist() == [4, 9, UNSEEN, UNSEEN, UNSEEN]
    np.testing.assert_array_equal(rows.seen_rows(scored, 6), [True, True, False, False, False])


def test_the_fingerprints_survive_their_tensor():
    rows = TrainingRows.of(torch.randn(50, 1))
    back = TrainingRows.from_tensor(rows.tensor())
    np.testing.assert_array_equal(back.hashes, rows.hashes)
    with pytest.raises(ValueError, match="int64"):
        TrainingRows.from_tensor(torch.zeros(3))


@pytest.fixture(scope="module")
def noisy_model() -> tuple[LSTMAutoencoder, np.ndarray, int]:
    """A noisy sine (no anomaly), fitted on its first 800 points with the combined score (every part)."""
    rng = np.random.default_rng(0)
    t = np.arange(1600)
    x = np.sin(2 * np.pi * t / 40) + 0.3 * rng.normal(size=t.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LSTMAutoencoder(timesteps=20, units=(8, 4), epochs=3, scorer="combined", random_state=0,
                                verbose=0).fit(x[:800])
    return model, x, 800


def test_the_training_data_scores_as_the_threshold_saw_it(noisy_model):
    """The threshold is 1.25 x the highest training score, leave-self-out: scoring the training data gives it back."""
    model, x, train_end = noisy_model
    assert model.get_params()["threshold"] == "auto" and model.contamination is None  # the 1.25 x max rule
    scores = model.anomaly_score(x[:train_end])
    assert np.isclose(1.25 * scores.max(), model.threshold_, rtol=1e-6)
    whole = model.anomaly_score(x)
    np.testing.assert_allclose(whole[:train_end - 40], scores[:train_end - 40], rtol=1e-9)  # the same inside a longer series


def test_no_step_where_the_training_data_ends(noisy_model):
    """On a stationary signal the scores after the training span are on the level of those before it; without
    the fingerprints (a model that never matched them) the training span scores several times lower."""
    model, x, train_end = noisy_model
    scores = model.anomaly_score(x)
    ratio = np.median(scores[train_end + 20:]) / np.median(scores[:train_end - 20])
    assert 0.67 < ratio < 1.5
    state = model.scoring_state_
    blind = dataclasses.replace(state, training=None)
    old, _ = blind.score(model.module_, x[:, None], False)
    assert np.median(old[train_end + 20:]) / np.median(old[:train_end - 20]) > 2  # the step this rule removes
    np.testing.assert_allclose(old[train_end + 20:], scores[train_end + 20:], rtol=1e-9)  # new data: the same scores
    np.testing.assert_array_equal(model.seen_in_training(x), np.arange(len(x)) < train_end)


def test_a_stream_over_the_training_data_equals_the_batch(noisy_model):
    model, x, train_end = noisy_model
    stream = model.stream()
    parts = [stream.update(x[i : i + 37]) for i in range(0, len(x), 37)] + [stream.flush()]
    streamed = np.concatenate([part["score"].to_numpy() for part in parts])
    np.testing.assert_allclose(streamed, model.anomaly_score(x), rtol=1e-9, atol=0)


def test_a_saved_model_keeps_its_fingerprints(noisy_model, tmp_path):
    model, x, train_end = noisy_model
    loaded = LSTMAutoencoder.load(model.save(tmp_path / "model.safetensors"))
    np.testing.assert_array_equal(loaded.anomaly_score(x), model.anomaly_score(x))
    np.testing.assert_array_equal(loaded.seen_in_training(x), np.arange(len(x)) < train_end)


def test_a_panel_scores_its_training_samples_leave_one_out():
    """The input-space part of a training sample is its distance to the nearest OTHER training sample (a loop)."""
    rng = np.random.default_rng(4)
    panel = rng.normal(size=(40, 6, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LSTMAutoencoder(units=4, epochs=1, scorer="input", random_state=0, verbose=0).fit(panel)
    scaled = (panel - model.scaler_mean_) / model.scaler_scale_
    flat = scaled.reshape(40, -1)
    loop = [min(np.sqrt(((flat[i] - flat[j]) ** 2).sum()) for j in range(40) if j != i) for i in range(40)]
    np.testing.assert_allclose(model.anomaly_score(panel[[3, 17]]), np.asarray(loop)[[3, 17]], rtol=1e-4)  # the part alone
    np.testing.assert_array_equal(model.seen_in_training(panel[[3, 17]]), [True, True])
    fresh = rng.normal(size=(2, 6, 2))
    assert not model.seen_in_training(fresh).any()
