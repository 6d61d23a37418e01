"""Score parts as plug-ins: parts defined here, in the test suite only, are fitted, scored, streamed and saved
like the built-in ones, without any change to a library module (`lstmae.scoring.parts`)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

import naive
from lstmae import LSTMAutoencoder
from lstmae.errors import ModelFileError
from lstmae.scoring import combination, parts
from lstmae.scoring.parts import INPUT, NETWORK, ScorePart


class PeakError(ScorePart):
    """A NETWORK part: each window step's largest squared error over the features."""

    name = "peak_error"
    source = NETWORK

    def chunk_values(self, chunk, is_panel, self_match):
        return chunk.squared.max(axis=2, keepdims=True)  # (B, T, 1)


class Spread(ScorePart):
    """An INPUT part with windows of its own (a third of the model's): each window's range of the first feature,
    over the largest range seen in training (saved as a tensor, to show a part's own tensors round-trip)."""

    name = "spread"
    source = INPUT

    def __init__(self, scale: torch.Tensor | None = None) -> None:
        super().__init__()
        self.scale = scale

    def window_length(self, timesteps):
        return max(2, timesteps // 3)

    def fit_reference(self, data, embeddings):
        fitted = data.fitted[:, 0]
        self.scale = (fitted.max() - fitted.min()).reshape(1)

    def window_values(self, windows, where, self_match):
        first = windows[:, :, 0]
        return (first.max(dim=1).values - first.min(dim=1).values) / self.scale

    def tensors(self):
        return {"scale": self.scale}

    @classmethod
    def restore(cls, tensors, fields, settings):
        part = super().restore(tensors, fields, settings)
        part.scale = tensors["scale"]
        return part


@pytest.fixture
def plugged(monkeypatch):
    """Both toy parts registered and weighted into the univariate combined score; undone after the test."""
    for part in (PeakError, Spread):
        monkeypatch.setitem(parts.PARTS, part.name, part)
    weights = {**combination.SERIES_WEIGHTS["univariate"], "peak_error": 0.5, "spread": 2.0}
    monkeypatch.setitem(combination.SERIES_WEIGHTS, "univariate", weights)


@pytest.fixture
def series():
    rng = np.random.default_rng(3)
    x = np.sin(np.arange(700) / 4) + 0.05 * rng.standard_normal(700)
    x[560:570] += 1.5
    return x


def fit(series):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LSTMAutoencoder(timesteps=12, units=4, epochs=2, score_stride=2, random_state=0, verbose=0,
                               aggregation="window").fit(series[:400])  # the sum is checked at each window's centre


def test_a_plugged_part_is_fitted_and_weighed_into_the_score(plugged, series):
    model = fit(series)
    state = model.scoring_state_
    assert [part.name for part in state.parts] == ["reconstruction", "latent", "neighbours", "peak_error", "spread"]
    assert all(part.level > 0 for part in state.parts)
    # The score is the weighted sum of the parts over their levels; each toy part's values by a loop.
    scaled = state.scale(series[:, None]).numpy()[:, 0]
    T, stride, n = 12, 2, len(series)
    L = max(2, T // 3)
    starts = naive.window_starts(n, L, min(stride, L))
    spread = [(scaled[s : s + L].max() - scaled[s : s + L].min()) / float(state.part("spread").scale) for s in starts]
    spread = naive.centred_mean_loop([m[0] for m in naive.timestep_means(n, starts, [[[v]] * L for v in spread])], T)
    without = {name: weight for name, weight in state.weights.items() if name not in ("peak_error", "spread")}
    assert without == {"reconstruction": 1.0, "latent": 0.25, "neighbours": 4.0}  # the univariate defaults
    base = state.combination(state.settings)
    assert base.terms[-2:] == (("peak_error", 0.5), ("spread", 2.0))
    model.scoring_states_ = {None: dataclasses.replace(state, weights=without)}
    others = model.anomaly_score(series)
    model.scoring_states_ = {None: dataclasses.replace(state, weights={"reconstruction": 0.0, "peak_error": 1.0})}
    peak = model.anomaly_score(series)  # the toy network part over its level
    model.scoring_states_ = {None: state}
    expected = others + 0.5 * peak + 2.0 * np.ravel(spread) / state.part("spread").level
    np.testing.assert_allclose(model.anomaly_score(series), expected, rtol=1e-6)
    assert int(np.argmax(model.anomaly_score(series))) in range(550, 585)


def test_a_plugged_part_streams_as_batch_scores(plugged, series):
    model = fit(series)
    expected = model.anomaly_score(series)
    stream = model.stream()
    assert [grid[0] for grid in stream.grids] == ["network", "neighbours", "spread"]
    got, at, rng = [], 0, np.random.default_rng(0)
    while at < len(series):
        size = int(rng.integers(1, 40))
        got.append(stream.update(series[at : at + size])["score"].to_numpy())
        at += size
    got.append(stream.flush()["score"].to_numpy())
    np.testing.assert_allclose(np.concatenate(got), expected, rtol=1e-9, atol=1e-12)


def test_a_plugged_part_saves_and_loads_with_the_model(plugged, series, tmp_path, monkeypatch):
    model = fit(series)
    path = model.save(tmp_path / "plugged.safetensors")
    loaded = LSTMAutoencoder.load(path)
    assert torch.equal(loaded.scoring_state_.part("spread").scale, model.scoring_state_.part("spread").scale)
    np.testing.assert_array_equal(loaded.anomaly_score(series), model.anomaly_score(series))
    # A stream's saved state continues in a stream of the loaded model.
    stream = model.stream()
    stream.update(series[:300])
    again = loaded.stream().load_state_dict(stream.state_dict())
    np.testing.assert_array_equal(again.update(series[300:])["score"].to_numpy(), stream.update(series[300:])["score"].to_numpy())
    # Without the plug-in, the file names the part it needs.
    monkeypatch.delitem(parts.PARTS, "spread")
    with pytest.raises(ModelFileError, match=r"no score part is called 'spread'"):
        LSTMAutoencoder.load(path)


def test_a_part_name_cannot_be_taken_twice():
    class Other(ScorePart):
        name = "latent"

    from lstmae.errors import ParameterError

    with pytest.raises(ParameterError, match=r"a score part named 'latent' exists already"):
        parts.register(Other)
