"""Input-space nearest-neighbour distances against loops, and the "neighbours" part of the estimator's score."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lstmae.scoring.neighbours as neighbours_module
from lstmae import LSTMAutoencoder
from lstmae.errors import ParameterError
from lstmae.scoring.neighbours import STD_FLOOR, nearest_window_distances, part_length, reference_windows, znormalised
from naive import centred_mean_loop, nearest_window_loop, timestep_means, window_starts
from searchpaths import search_path



@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 6),  # T
    st.integers(1, 3),  # F
    st.integers(0, 10_000),  # seed
    st.booleans(),  # exclusion
    st.integers(1, 3),  # reference stride
    st.booleans(),  # windows of part_length(T) steps (the library's) or of T
)
@pytest.mark.parametrize("path", ["C", "torch"])
def test_nearest_window_distances_match_the_loop(path, timesteps, features, seed, exclude, stride, half):
    rng = np.random.default_rng(seed)
    series = rng.normal(size=(30, features)).astype(np.float32)
    series[5:12, 0] = 0.3  # a flat stretch: the std floor, not a blown-up noise
    series[14:20] += np.linspace(0, 0.01, 6, dtype=np.float32)[:, None]  # nearly flat
    length = part_length(timesteps) if half else timesteps
    reference_part = torch.from_numpy(series[:20])
    reference = reference_windows(reference_part, length, stride)
    reference_starts = window_starts(20, length, stride)  # every stride-th and the last
    assert reference.shape == (len(reference_starts), length * features)
    query_starts = window_starts(30, length, 2)
    windows = torch.from_numpy(series).unfold(0, length, 1)[query_starts].transpose(1, 2)
    positions = (torch.tensor(query_starts), torch.tensor(reference_starts), timesteps) if exclude else None
    with search_path(path):
        got = nearest_window_distances(windows, neighbours_module.WindowReference.of(reference, length), positions)
    expected = nearest_window_loop(series.tolist(), query_starts, reference_starts, length, STD_FLOOR,
                                   timesteps if exclude else None)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=2e-3)


def test_the_compared_part_is_the_last_half_of_the_window():
    assert [part_length(t) for t in (1, 2, 3, 4, 5, 100, 101)] == [1, 2, 2, 2, 2, 50, 50]


def test_distances_do_not_depend_on_the_chunk_and_are_zero_for_a_training_window(monkeypatch):
    g = torch.Generator().manual_seed(0)
    series = torch.randn(200, 2, generator=g)
    reference = reference_windows(series[:120], 8)
    windows = series.unfold(0, 8, 1).transpose(1, 2)  # (193, 8, 2)
    with search_path("torch"):
        whole = nearest_window_distances(windows, reference)
        monkeypatch.setattr(neighbours_module, "CHUNK", 7)
        torch.testing.assert_close(nearest_window_distances(windows, reference), whole)
    with search_path("C"):
        torch.testing.assert_close(nearest_window_distances(windows, reference), whole)  # the C search agrees
    assert float(whole[:113].max()) < 1e-3  # each training window is its own nearest neighbour
    assert float(whole[150:].min()) > 0.1


def test_znormalised_windows_have_zero_mean_and_unit_std_unless_flat():
    g = torch.Generator().manual_seed(1)
    windows = torch.randn(5, 12, 3, generator=g)
    windows[0, :, 1] = 7.0  # flat: all zeros after normalising
    windows[1, :, 2] = 2.0 + 0.01 * torch.arange(12)  # std 0.035, under the floor: divided by the floor
    z = znormalised(windows)
    torch.testing.assert_close(z.mean(dim=1), torch.zeros(5, 3), atol=1e-5, rtol=0)
    assert float(z[0, :, 1].abs().max()) == 0.0
    std = windows[1, :, 2].std(unbiased=False)
    torch.testing.assert_close(z[1, :, 2], (windows[1, :, 2] - windows[1, :, 2].mean()) / STD_FLOOR)
    assert std < STD_FLOOR
    others = z.pow(2).mean(dim=1)
    others[0, 1] = others[1, 2] = 1.0
    torch.testing.assert_close(others, torch.ones(5, 3), atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def odd_cycle() -> tuple[np.ndarray, int]:
    """A noisy sine of period 25 with one cycle, in the test part, at 1.5x the frequency (the same amplitude)."""
    rng = np.random.default_rng(0)
    t = np.arange(2000, dtype=np.float64)
    x = np.sin(2 * np.pi * t / 25)
    x[1500:1525] = np.sin(2 * np.pi * np.arange(25) / 25 * 1.5)
    return x + 0.02 * rng.normal(size=t.size), 1000


@pytest.mark.parametrize("path", ["C", "torch"])
def test_a_prepared_reference_gives_the_same_bits(path):
    g = torch.Generator().manual_seed(3)
    series = torch.randn(300, 2, generator=g)
    reference = reference_windows(series[:200], 12, 2)
    windows = series.unfold(0, 12, 1).transpose(1, 2)[::5]
    prepared = neighbours_module.WindowReference.of(reference, 12)
    with search_path(path):
        assert torch.equal(nearest_window_distances(windows, prepared), nearest_window_distances(windows, reference))


def neighbours_model(x: np.ndarray, train_end: int) -> LSTMAutoencoder:
    """scorer="neighbours", T = 10, score stride 3, aggregation "window", fitted on x[:train_end]."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LSTMAutoencoder(timesteps=10, units=4, epochs=1, score_stride=3, scorer="neighbours", random_state=0,
                               verbose=0, aggregation="window").fit(x[:train_end])  # the loop's centred mean


def neighbours_loop_score(model: LSTMAutoencoder, x: np.ndarray, train_end: int, length: int,
                          reference_stride: int) -> tuple[np.ndarray, list[int]]:
    """(the centred mean over T = 10 of the merged loop distances of x's windows of ``length`` steps (every 3rd and
    the last) to the fit part's windows of ``length`` steps (every ``reference_stride``-th and the last), their starts)."""
    scaled = ((x - model.scaler_mean_[0]) / model.scaler_scale_[0])[:, None].tolist()
    fit_part = int((train_end - 10 + 1) * 0.9) + 10 - 1  # the windows before the validation split
    reference_starts = window_starts(fit_part, length, reference_stride)
    starts = window_starts(len(x), length, 3)
    plain = nearest_window_loop(scaled, starts, reference_starts, length, STD_FLOOR, reference_series=scaled[:fit_part])
    skipping = nearest_window_loop(scaled, starts, reference_starts, length, STD_FLOOR, 10, reference_series=scaled[:fit_part])
    # A window inside x[:train_end] is the training window at its own start: it skips the reference windows
    # starting within T = 10 of it, as the threshold's pass did; the others are compared with every one.
    distances = [skip if start + length <= train_end else near for start, near, skip in zip(starts, plain, skipping)]
    merged = timestep_means(len(x), starts, [[[d]] * length for d in distances])
    return np.asarray(centred_mean_loop([m[0] for m in merged], 10)), reference_starts


@pytest.mark.parametrize("cap", [None, 50])
def test_the_neighbours_scorer_is_the_merged_loop_distance(odd_cycle, cap, monkeypatch):
    """anomaly_score with scorer="neighbours" = the centred mean over T of the mean, over the windows of
    L = T // 2 steps covering each step (every score_stride-th and the last), of the loop's nearest distance to the
    fit part's windows of L steps: every window, or with more than NEIGHBOUR_REFERENCE_MAX of them every
    ceil(windows / max)-th and the last; the windows of the training data skip their trivial matches."""
    import lstmae.scoring.parts.neighbours

    if cap is not None:
        monkeypatch.setattr(lstmae.scoring.parts.neighbours, "NEIGHBOUR_REFERENCE_MAX", cap)
    x, train_end = odd_cycle
    x = x[:1200]
    model = neighbours_model(x, train_end)
    scores = model.anomaly_score(x)
    fit_part = int((train_end - 10 + 1) * 0.9) + 10 - 1  # the windows before the validation split
    stride = 1 if cap is None else -(-(fit_part - 5 + 1) // cap)
    expected, reference_starts = neighbours_loop_score(model, x, train_end, 5, stride)  # windows of L = 5 steps
    assert model.scoring_state_.part("neighbours").prepared.rows.shape[0] == len(reference_starts) <= (cap or len(reference_starts)) + 1  # and the last
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)


def test_a_file_saved_before_the_half_window_part_keeps_the_whole_window(odd_cycle, tmp_path):
    """A model file without "neighbour_length_" (saved when the part compared whole windows) scores as then:
    whole windows of T steps against the training windows of T steps, as the loop computes it."""
    from lstmae.persistence.model_file import load_model, save_model

    x, train_end = odd_cycle
    x = x[:1200]
    model = neighbours_model(x, train_end)
    path = model.save(tmp_path / "model.safetensors")
    tensors, info = load_model(path)

    # The document as format 1 wrote it before the half window: flat fields, no "neighbour_length_".
    fitted = dict(info["fitted"])
    parts = {entry["name"]: entry for entry in fitted.pop("parts")}
    weights = fitted.pop("weights")
    fitted.update(neighbour_level_=parts["neighbours"]["level"], score_levels_=None, input_level=None,
                  combined_weights_=[weights["latent"], weights["neighbours"]])
    old_tensors = {name.replace("part.reconstruction.feature_levels", "scoring.feature_levels")
                   .replace("part.neighbours.series", "scoring.neighbour_reference"): tensor for name, tensor in tensors.items()}
    document = {k: v for k, v in info.items() if not k.startswith("format") and k not in ("lstmae_version", "tensors_sha256")}
    save_model(tmp_path / "old.safetensors", old_tensors, {**document, "fitted": fitted, "format_version": 1})
    old = LSTMAutoencoder.load(tmp_path / "old.safetensors")
    assert old.scoring_state_.part("neighbours").prepared.length == 10 and model.scoring_state_.part("neighbours").prepared.length == 5
    expected, _ = neighbours_loop_score(model, x, train_end, 10, 1)  # whole windows of T = 10 steps
    np.testing.assert_allclose(old.anomaly_score(x), expected, rtol=1e-4, atol=1e-4)


def test_the_default_score_finds_one_odd_cycle(odd_cycle):
    x, train_end = odd_cycle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LSTMAutoencoder(timesteps=25, units=8, epochs=3, random_state=0, verbose=0).fit(x[:train_end])
    assert model.scoring_state_.part("neighbours") is not None and model.scoring_state_.part("neighbours").level > 0
    scores = model.anomaly_score(x)
    test = scores[train_end:]
    assert 1500 - 25 <= train_end + int(np.argmax(test)) < 1525 + 25
    near = model.set_params(scorer="neighbours").anomaly_score(x)[train_end:]
    outside = np.r_[near[: 1500 - 50 - train_end], near[1525 + 50 - train_end :]]
    assert near[1500 - train_end : 1525 - train_end].mean() > 3 * outside.max()


def test_neighbours_scorer_refuses_a_panel_and_needs_its_reference(make_sine):
    panel = np.sin(np.arange(10)[None, :, None] / 2 + np.linspace(0, 6, 40)[:, None, None])
    with pytest.raises(ParameterError, match=r"scorer='neighbours' compares windows of a series .* 3-D input"):
        LSTMAutoencoder(units=4, epochs=1, scorer="neighbours", verbose=0).fit(panel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LSTMAutoencoder(timesteps=10, units=4, epochs=1, scorer="latent", verbose=0).fit(make_sine(200, 10))
    assert model.scoring_state_.part("neighbours") is None
    with pytest.raises(ParameterError, match=r"scorer='neighbours' needs the training windows"):
        model.set_params(scorer="neighbours").anomaly_score(make_sine(200, 10))


def test_the_weights_are_fitted_by_the_number_of_features(make_sine):
    from lstmae.scoring.combination import SERIES_WEIGHTS

    x = make_sine(300, 15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = LSTMAutoencoder(timesteps=15, units=4, epochs=1, random_state=0, verbose=0).fit(x)
        two = LSTMAutoencoder(timesteps=15, units=4, epochs=1, random_state=0, verbose=0).fit(np.stack([x, x[::-1]], axis=1))
    assert one.scoring_state_.weights == SERIES_WEIGHTS["univariate"]
    assert two.scoring_state_.weights == SERIES_WEIGHTS["multivariate"]
    # no nearest-window weight: no reference is kept (and the part costs nothing)
    assert (two.scoring_state_.part("neighbours") is None) == (SERIES_WEIGHTS["multivariate"]["neighbours"] == 0)
    assert one.scoring_state_.part("neighbours").series.shape == (int((300 - 15 + 1) * 0.9) + 15 - 1, 1)
