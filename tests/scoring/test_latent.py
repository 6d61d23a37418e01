"""Latent novelty: nearest-embedding distances against a loop, and the scorers of the estimator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lstmae.scoring.latent as latent_module
from lstmae import LSTMAutoencoder
from lstmae.errors import ParameterError
from lstmae.scoring.latent import nearest_distances
from lstmae.scoring.combination import SERIES_WEIGHTS
from searchpaths import search_path


def nearest_loop(queries, reference) -> list[float]:
    return [min(math.dist(q, r) for r in reference) for q in queries]



@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda dim: st.tuples(
            st.lists(st.lists(st.floats(-100, 100), min_size=dim, max_size=dim), min_size=0, max_size=20),
            st.lists(st.lists(st.floats(-100, 100), min_size=dim, max_size=dim), min_size=1, max_size=20),
        )
    )
)
@pytest.mark.parametrize("path", ["C", "torch"])
def test_nearest_distances_match_the_loop(path, pair):
    queries, reference = pair
    q = torch.tensor(queries, dtype=torch.float32).reshape(len(queries), len(reference[0]))
    r = torch.tensor(reference, dtype=torch.float32)
    with search_path(path):
        got = nearest_distances(q, r)
    assert got.shape == (len(queries),)
    np.testing.assert_allclose(got.numpy(), nearest_loop(q.tolist(), r.tolist()), rtol=1e-5, atol=1e-3)


def test_nearest_distances_chunks_give_the_same_result(monkeypatch):
    g = torch.Generator().manual_seed(0)
    q, r = torch.randn(50, 3, generator=g), torch.randn(7, 3, generator=g)
    with search_path("torch"):
        whole = nearest_distances(q, r)
        monkeypatch.setattr(latent_module, "CHUNK", 8)
        torch.testing.assert_close(nearest_distances(q, r), whole)
        assert float(nearest_distances(r, r).abs().max()) == 0.0  # a row's distance to itself is exactly 0
    with search_path("C"):
        torch.testing.assert_close(nearest_distances(q, r), whole)  # the C search: the same distances
        assert float(nearest_distances(r, r).abs().max()) == 0.0


@pytest.fixture(scope="module")
def plateau_series() -> tuple[np.ndarray, int]:
    t = np.arange(3000)
    x = np.sin(2 * np.pi * t / 30) + 0.05 * np.random.default_rng(0).normal(size=t.size)
    x[2400:2460] = 0.9  # a plateau never seen in training
    return x, 1500


@pytest.mark.parametrize("scorer", ["latent", "combined"])
def test_latent_scorers_find_an_unseen_plateau(plateau_series, scorer):
    x, train_end = plateau_series
    model = LSTMAutoencoder(timesteps=30, units=8, epochs=8, scorer=scorer, random_state=0, verbose=0).fit(x[:train_end])
    assert model.latent_reference_.shape[1] == 8
    assert len(model.score_levels_) == 2 and min(model.score_levels_) > 0
    scores = model.anomaly_score(x)
    assert scores.shape == (3000,) and np.isfinite(scores).all()
    inside = scores[2400:2460].mean()
    normal = scores[train_end:2300]
    assert inside > 2 * np.median(normal) and inside > normal.max()
    assert 2400 - 30 <= int(np.argmax(scores)) < 2460 + 30
    # per-feature scores stay the reconstruction's
    recon = model.set_params(scorer="reconstruction").anomaly_score(x, per_feature=True)
    np.testing.assert_allclose(model.set_params(scorer=scorer).anomaly_score(x, per_feature=True), recon)


def test_combined_score_is_the_sum_of_the_parts_over_their_levels(plateau_series, tmp_path):
    x, train_end = plateau_series
    model = LSTMAutoencoder(timesteps=30, units=8, epochs=4, scorer="combined", random_state=0, verbose=0).fit(x[:train_end])
    combined = model.anomaly_score(x)  # aggregation="peak": each timestep's most anomalous window of the sum
    model.set_params(aggregation="window")  # the parts and their sum at each window's centre
    recon = model.set_params(scorer="reconstruction").anomaly_score(x)
    latent = model.set_params(scorer="latent").anomaly_score(x)
    neighbours = model.set_params(scorer="neighbours").anomaly_score(x)
    model.set_params(scorer="combined")
    weight, neighbour_weight = SERIES_WEIGHTS["univariate"]["latent"], SERIES_WEIGHTS["univariate"]["neighbours"]
    level = model.scoring_state_.part("neighbours").level
    summed = recon / model.score_levels_[0] + weight * latent / model.score_levels_[1] + neighbour_weight * neighbours / level
    np.testing.assert_allclose(model.anomaly_score(x), summed, rtol=1e-9)
    T = model.timesteps_
    peaks = [summed[max(0, t - (T - 1 - T // 2)) : t + T // 2 + 1].max() for t in range(len(summed))]
    np.testing.assert_allclose(combined, peaks, rtol=1e-9)
    model.set_params(aggregation="peak")
    # the reference embeddings and levels are saved with the model
    model.save(tmp_path / "m.safetensors")
    loaded = LSTMAutoencoder.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded.anomaly_score(x), combined)


def test_latent_scorer_needs_the_repeat_design():
    with pytest.raises(ParameterError, match=r"scorer='latent' compares window embeddings, which only the 'repeat' design has"):
        LSTMAutoencoder(scorer="latent", architecture="sequence", verbose=0).fit(np.zeros(100))


def test_the_latent_reference_is_every_training_window_up_to_the_cap(monkeypatch, make_sine):
    """Every window of the fit part (the validation part held out) is encoded, whatever score_stride; above
    LATENT_REFERENCE_MAX windows, evenly spaced ones (and the last), as the loop over window starts gives."""
    import lstmae.scoring.parts.latent as state
    from lstmae.data.windows import window_starts

    x = make_sine(400, 20)
    params = dict(timesteps=20, units=4, epochs=1, validation_split=0.25, score_stride=5, random_state=0, verbose=0)
    model = LSTMAutoencoder(**params).fit(x)
    fit_windows = int((400 - 20 + 1) * 0.75)  # the first validation window is where the fit part's windows end
    reference = model.latent_reference_
    assert reference.shape == (fit_windows, 4)
    # The k-th embedding is window k's: encode the fit part's windows one at a time.
    expected = np.stack([model.encode(x[k : k + 20])[0] for k in (0, 7, fit_windows - 1)])
    np.testing.assert_allclose(reference[[0, 7, fit_windows - 1]].numpy(), expected, rtol=1e-5, atol=1e-6)

    monkeypatch.setattr(state, "LATENT_REFERENCE_MAX", 50)
    capped = LSTMAutoencoder(**params).fit(x).latent_reference_
    step = -(-fit_windows // 50)
    starts = window_starts(fit_windows + 20 - 1, 20, step)
    assert capped.shape == (len(starts), 4) and len(starts) <= 50 + 1
    np.testing.assert_allclose(capped.numpy(), reference[starts].numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("path", ["C", "torch"])
def test_ranked_candidates_give_the_exact_nearest_distance_on_realistic_embeddings(path):
    """Against torch's exact (non-matrix-product) cdist, on embedding-like rows offset from zero: exact
    for ordinary queries; beside a cluster of 100 near-duplicates (more than CANDIDATES ties), within the
    documented bound on the squared distance."""
    g = torch.Generator().manual_seed(1)
    reference = 3.0 + torch.randn(3000, 32, generator=g)
    reference[1000:1100] = reference[5] + 1e-4 * torch.randn(100, 32, generator=g)  # 100 near-ties
    queries = torch.cat([3.0 + torch.randn(400, 32, generator=g), reference[990:1010] + 1e-5])
    exact = torch.cdist(queries, reference, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values
    with search_path(path):
        got = nearest_distances(queries, reference)
    torch.testing.assert_close(got[:400], exact[:400], rtol=1e-5, atol=1e-6)
    centred = reference - reference.mean(dim=0)
    bound = 1e-6 * float(centred.pow(2).sum(dim=1).max())
    assert (got.pow(2) - exact.pow(2)).abs().max() <= bound
    assert (got >= exact - 1e-6).all()  # never below the true nearest distance


@pytest.mark.parametrize("path", ["C", "torch"])
def test_positions_exclude_the_overlapping_reference_rows_as_a_loop_does(path):
    with search_path(path):
        g = torch.Generator().manual_seed(2)
        reference, queries = torch.randn(60, 5, generator=g), torch.randn(25, 5, generator=g)
        reference_at = torch.arange(0, 120, 2)  # reference windows start every 2nd step
        query_at = torch.arange(25) * 5
        query_at[-1] = 10_000  # far from every reference row: nothing excluded
        got = nearest_distances(queries, reference, (query_at, reference_at, 7))
        for q, p, value in zip(queries, query_at.tolist(), got.tolist()):
            kept = [math.dist(q.tolist(), r.tolist()) for r, pr in zip(reference, reference_at.tolist()) if abs(p - pr) >= 7]
            assert value == pytest.approx(min(kept), rel=1e-5)
        # A training window is in the reference: excluded, its distance is to the nearest non-overlapping one.
        own = nearest_distances(reference[:3], reference, (reference_at[:3], reference_at, 7))
        assert (own > 0).all()
        # Nothing left to compare with: the plain nearest distance.
        alone = nearest_distances(reference[:2], reference[:4], (reference_at[:2], reference_at[:4], 1_000))
        torch.testing.assert_close(alone, torch.zeros(2))
