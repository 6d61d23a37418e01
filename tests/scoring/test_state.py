"""Tests for lstmae.scoring.state: the scoring state built in one pass equals separate, obvious passes.

The reference below runs each quantity through `lstmae.scoring.inference` on its own,
the way the estimator did before the one-pass state (feature levels, latent
reference, held-out levels, threshold scores): the one pass must give the same bits.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import naive
from lstmae import LSTMAutoencoder
from lstmae.scoring import combination, inference
from lstmae.data.scaling import transform
from lstmae.errors import ParameterError
from lstmae.scoring.neighbours import STD_FLOOR
from lstmae.scoring.aggregation import centred_mean
from lstmae.scoring.combination import PANEL_WEIGHTS
from lstmae.scoring.latent import nearest_distances
from lstmae.scoring.parts.reconstruction import ERROR_FLOOR, FEATURE_LEVEL_FLOOR
from lstmae.scoring.state import ScoringSettings, fit_state
from lstmae.scoring.thresholds import auto_threshold


def latent_distances(network, scaled, is_panel, stride, reference, exclude=None):
    """Each window's (sample's) latent distance merged onto timesteps (n, 1), or per sample (S, 1, 1), by a plain loop."""
    T = network.config.timesteps
    if is_panel:
        z = inference.embeddings(network, scaled, True, 1)
        at = None if exclude is None else (torch.arange(len(z)), *exclude)
        return nearest_distances(z, reference, at).double().numpy()[:, None, None]
    starts = naive.window_starts(scaled.shape[0], T, stride)
    z = torch.cat([inference.embeddings(network, scaled[s : s + T], False, 1) for s in starts])
    at = None if exclude is None else (torch.tensor(starts), *exclude)
    d = nearest_distances(z, reference, at).double().numpy()
    return np.asarray(naive.timestep_means(scaled.shape[0], starts, [[[v]] * T for v in d]))  # (n, 1)


def aggregate(errors, distances, is_panel, aggregation, T, neighbours=None, features="mean"):
    """(reconstruction, latent, neighbours) per timestep or sample, as the parts' values are documented: the
    reconstruction the mean over features, or their maximum (``features="max"``)."""
    spread = lambda v: None if v is None else (v.reshape(-1) if is_panel or aggregation != "window" else centred_mean(v.reshape(-1), T))  # noqa: E731
    per = errors.mean(axis=1) if is_panel else (centred_mean(errors, T) if aggregation == "window" else errors)
    return (per.max(axis=1) if features == "max" else per.mean(axis=1)), spread(distances), spread(neighbours)


def spread_of(rows: torch.Tensor) -> float:
    """The root mean squared distance of rows (M, D) to their mean."""
    rows = rows.double()
    return float((rows - rows.mean(dim=0)).pow(2).sum(dim=1).mean().sqrt())


def separate_passes(network, values, is_panel, scaler, settings, validation_split):
    """(feature levels, reference, score levels, threshold) of the "auto" rule, one quantity per pass."""
    scaled = torch.from_numpy(transform(values, *scaler))
    T, n = settings.timesteps, scaled.shape[0]
    raw = inference.merged(network, scaled, is_panel, settings.score_stride).errors
    per = raw.reshape(-1, raw.shape[-1]).mean(axis=0)
    levels = np.maximum(per + FEATURE_LEVEL_FLOOR * per.max(), ERROR_FLOOR)
    if is_panel:
        cut = int(n * (1 - validation_split))
        fit_part, held, positions, radius = scaled[:cut], scaled[cut:], torch.arange(cut), 1
    else:
        cut = int((n - T + 1) * (1 - validation_split))
        fit_part, held = scaled[: cut + T - 1], scaled[cut:]
        positions, radius = torch.arange(fit_part.shape[0] - T + 1), T  # every window: below the cap here
    reference = inference.embeddings(network, fit_part, is_panel, 1)
    norm = lambda errors: errors / levels if settings.normalize_errors else errors  # noqa: E731
    near = not is_panel and settings.scorer == "combined"
    # the combined score of a series of several features: the maximum over features (both features here are continuous:
    # the nearest-window part compares both)
    features = "max" if near and values.shape[-1] > 1 else "mean"

    L = T // 2  # the nearest-window part: windows of half the network's, against the training windows of L steps
    neighbour_starts = list(range(fit_part.shape[0] - L + 1))  # every one: below the cap here

    def neighbour_loop(part, exclusion):  # the merged nearest-window distances of a part's L-step windows, by loops
        starts = naive.window_starts(part.shape[0], L, settings.score_stride)
        d = naive.nearest_window_loop(part.tolist(), starts, neighbour_starts, L, STD_FLOOR, exclusion,
                                      reference_series=fit_part.tolist())
        return np.asarray(naive.timestep_means(part.shape[0], starts, [[[v]] * L for v in d]))  # (n, 1)

    stride = settings.score_stride
    held_errors = inference.merged(network, held, is_panel, stride).errors
    rec, lat, nb = aggregate(norm(held_errors), latent_distances(network, held, is_panel, stride, reference), is_panel,
                             settings.aggregation, T, neighbour_loop(held, None) if near else None, features)
    # each level at least 1% of its part's scale: the latent reference's spread, [0, 2] for the nearest windows
    score_levels = (max(float(rec.mean()), ERROR_FLOOR), max(float(lat.mean()), 0.01 * spread_of(reference)))
    neighbour_level = max(float(nb.mean()), 0.01) if near else None
    train_errors = inference.merged(network, scaled, is_panel, stride).errors
    rec, lat, nb = aggregate(norm(train_errors), latent_distances(network, scaled, is_panel, stride, reference, (positions, radius)),
                             is_panel, settings.aggregation, T, neighbour_loop(scaled, radius) if near else None, features)
    if settings.scorer == "latent":
        scores = lat
    elif is_panel:  # each sample against the other training samples, in input space
        samples = scaled.reshape(n, -1)
        close = nearest_distances(samples, samples, (torch.arange(n), torch.arange(n), 1)).double().numpy()
        w = PANEL_WEIGHTS
        scores = w["latent"] * lat / score_levels[1] + w["input"] * close / max(float(close.mean()), 0.01 * spread_of(samples))
    else:
        w = combination.SERIES_WEIGHTS["univariate" if values.shape[-1] == 1 else "multivariate"]
        scores = rec / score_levels[0] + w["latent"] * lat / score_levels[1]
        if near:
            scores = scores + w["neighbours"] * nb / neighbour_level
    return levels, reference, score_levels, auto_threshold(scores)


@pytest.mark.parametrize("is_panel", [False, True])
@pytest.mark.parametrize("scorer, aggregation", [("combined", "window"), ("latent", "timestep")])
def test_one_pass_equals_separate_passes(is_panel, scorer, aggregation, make_sine, monkeypatch):
    rng = np.random.default_rng(0)
    if is_panel:
        values = np.sin(np.arange(10)[None, :, None] / 2 + rng.uniform(0, 6, (60, 1, 1))) + 0.05 * rng.standard_normal((60, 10, 2))
    else:
        values = np.stack([make_sine(300, 15), np.cos(np.arange(300) / 4)], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LSTMAutoencoder(timesteps=10, units=4, epochs=1, random_state=0, verbose=0).fit(values)
    monkeypatch.setattr(inference, "CHUNK_VALUES", 10 * 16 * 7)  # 7 windows a chunk: many chunks, a ragged last one
    monkeypatch.setitem(combination.SERIES_WEIGHTS, "multivariate",  # this 2-feature series: a neighbour part too
                        {"reconstruction": 1.0, "latent": 2.0, "neighbours": 1.0})
    settings = ScoringSettings(scorer, aggregation, 3, 10, True)
    scaler = (model.scaler_mean_, model.scaler_scale_)
    calls = []
    run = inference.run
    monkeypatch.setattr(inference, "run", lambda *a: calls.append(1) or run(*a))
    state = fit_state(model.module_, values, is_panel, scaler, settings, 0.2, "auto", None)
    assert len(calls) == 1  # one pass over the training data
    levels, reference, score_levels, threshold = separate_passes(model.module_, values, is_panel, scaler, settings, 0.2)
    np.testing.assert_array_equal(state.part("reconstruction").feature_levels, levels)
    assert torch.equal(state.part("latent").reference, reference)
    assert (state.part("reconstruction").level, state.part("latent").level) == score_levels
    if is_panel or scorer != "combined":
        assert state.threshold == threshold
    else:  # with the nearest-window part, computed in float32, against a loop in float64
        assert state.threshold == pytest.approx(threshold, rel=1e-6)
        assert state.part("neighbours").level > 0 and state.part("neighbours").series.shape == (int((300 - 10 + 1) * 0.8) + 10 - 1, 2)
    assert state.settings == settings


def test_reconstruction_scorer_keeps_no_reference(make_sine):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LSTMAutoencoder(timesteps=10, units=4, epochs=1, scorer="reconstruction", random_state=0, verbose=0)
        model.fit(make_sine(200, 10))
    assert model.scoring_state_.part("latent") is None and model.scoring_state_.part("reconstruction").level is None
    assert not hasattr(model, "latent_reference_") and not hasattr(model, "score_levels_")
    with pytest.raises(ParameterError, match=r"scorer='latent' needs the training embeddings"):
        model.set_params(scorer="latent").anomaly_score(make_sine(200, 10))
