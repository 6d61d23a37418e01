"""Panels: each sample scored against the training samples, `detect` one row per sample with its id, named features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstmae import LSTMAutoencoder
from lstmae.errors import DataError, ParameterError

#: Small and seeded, with the default ("combined") panel score.
SMALL = dict(units=6, epochs=2, batch_size=32, random_state=0, verbose=0)


@pytest.fixture(scope="module")
def combined_panel(panel):
    return LSTMAutoencoder(**SMALL).fit(panel)


def nearest_loop(queries: np.ndarray, reference: np.ndarray, skip_same_index: bool = False) -> np.ndarray:
    """Slow reference: Euclidean distance from each query row to its nearest reference row."""
    out = np.empty(len(queries))
    for i, q in enumerate(queries):
        best = np.inf
        for j, r in enumerate(reference):
            if skip_same_index and i == j:
                continue
            best = min(best, float(np.sqrt(((q - r) ** 2).sum())))
        out[i] = best
    return out


def scaled_flat(model: LSTMAutoencoder, values: np.ndarray) -> np.ndarray:
    """Samples (S, T, F) in the model's scaled units, flattened to (S, T*F), by hand."""
    return ((values - model.scaler_mean_) / model.scaler_scale_).reshape(len(values), -1)


def test_input_level_is_the_mean_leave_one_out_distance_of_the_training_samples(combined_panel, panel):
    expected = nearest_loop(scaled_flat(combined_panel, panel), scaled_flat(combined_panel, panel), skip_same_index=True).mean()
    assert combined_panel.scoring_state_.part("input").level == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("weights", [None, (1.0, 0.5, 2.0)])  # the default, and one where every term counts
def test_panel_score_weighs_reconstruction_latent_and_input_distance(combined_panel, panel, weights, monkeypatch):
    import dataclasses

    from lstmae.scoring.combination import PANEL_WEIGHTS

    w = tuple(PANEL_WEIGHTS.values()) if weights is None else weights
    if weights is not None:  # the fitted weights, as a model fitted with that weights table holds them
        fitted = dict(zip(PANEL_WEIGHTS, weights))
        monkeypatch.setattr(combined_panel, "scoring_states_", {None: dataclasses.replace(combined_panel.scoring_state_, weights=fitted)})
    rng = np.random.default_rng(1)
    new = panel[:10] + rng.normal(0, 0.3, size=panel[:10].shape)
    state = combined_panel.scoring_state_
    levels = (state.part("reconstruction").level, state.part("latent").level)
    nearest = nearest_loop(scaled_flat(combined_panel, new), scaled_flat(combined_panel, panel))
    model = combined_panel
    reconstruction = model.set_params(scorer="reconstruction").anomaly_score(new)
    latent = model.set_params(scorer="latent").anomaly_score(new)
    model.set_params(scorer="auto")
    expected = (
        w[0] * reconstruction / levels[0] + w[1] * latent / levels[1] + w[2] * nearest / state.part("input").level
    )
    np.testing.assert_allclose(model.anomaly_score(new), expected, rtol=1e-4)


def test_a_training_sample_is_its_own_nearest_neighbour_when_scored_again(combined_panel, panel):
    state = combined_panel.scoring_state_
    near = state.part("input").sample_values(state.scale(panel), seen=None)
    np.testing.assert_allclose(near, 0.0, atol=1e-3)


def test_the_threshold_comes_from_leave_one_out_training_scores(panel):
    from lstmae.params import n_train
    from lstmae.scoring.combination import PANEL_WEIGHTS

    w = tuple(PANEL_WEIGHTS.values())

    model = LSTMAutoencoder(**SMALL, contamination=0.5).fit(panel)
    state = model.scoring_state_
    # The training samples as the threshold saw them: each latent and input distance skips the sample itself.
    embeddings = model.encode(panel)
    trained_on = embeddings[: n_train(len(panel), model.validation_split)]  # the latent reference
    latent = nearest_loop(embeddings, trained_on, skip_same_index=True)
    near = nearest_loop(scaled_flat(model, panel), scaled_flat(model, panel), skip_same_index=True)
    reconstruction = model.set_params(scorer="reconstruction").anomaly_score(panel)
    model.set_params(scorer="auto")
    levels = (state.part("reconstruction").level, state.part("latent").level, state.part("input").level)
    training = w[0] * reconstruction / levels[0] + w[1] * latent / levels[1] + w[2] * near / levels[2]
    assert model.threshold_ == pytest.approx(np.quantile(training, 0.5, method="higher"), rel=1e-4)


def test_the_input_reference_keeps_evenly_spaced_samples_of_a_large_panel(panel, monkeypatch):
    import lstmae.scoring.parts.inputs as state_module

    monkeypatch.setattr(state_module, "INPUT_REFERENCE_MAX_VALUES", 12 * 16)  # 12 samples of 8 x 2 values
    model = LSTMAutoencoder(**SMALL).fit(panel)
    kept = np.round(np.linspace(0, len(panel) - 1, 12)).astype(int)
    np.testing.assert_allclose(model.scoring_state_.part("input").reference.numpy(), scaled_flat(model, panel[kept]), atol=1e-5)
    # Leave-one-out: a kept sample skips itself, the others have no copy of themselves to skip.
    reference = scaled_flat(model, panel[kept])
    expected = []
    for i, sample in enumerate(scaled_flat(model, panel)):
        others = [r for j, r in zip(kept, reference) if j != i]
        expected.append(nearest_loop(sample[None], np.array(others))[0])
    assert model.scoring_state_.part("input").level == pytest.approx(np.mean(expected), rel=1e-4)


def test_the_reconstruction_scorer_keeps_no_input_reference(panel):
    model = LSTMAutoencoder(**{**SMALL, "scorer": "reconstruction"}).fit(panel)
    assert model.scoring_state_.part("input") is None
    expected = (model.reconstruct(panel) - panel) ** 2 / model.scaler_scale_**2 / model.feature_levels_
    np.testing.assert_allclose(model.anomaly_score(panel), expected.mean(axis=(1, 2)), rtol=1e-4)


def test_save_and_load_keep_the_input_reference(combined_panel, panel, tmp_path):
    path = combined_panel.save(tmp_path / "panel.safetensors")
    loaded = LSTMAutoencoder.load(path, device="cpu")
    assert loaded.scoring_state_.part("input").level == combined_panel.scoring_state_.part("input").level
    np.testing.assert_array_equal(loaded.anomaly_score(panel[:5]), combined_panel.anomaly_score(panel[:5]))


# ------------------------------------------------------------------ detect
def test_detect_on_a_panel_gives_one_row_per_anomalous_sample_most_anomalous_first(combined_panel, panel):
    scores = combined_panel.anomaly_score(panel)
    threshold = float(np.quantile(scores, 0.75))
    table = combined_panel.detect(panel, threshold=threshold)
    above = [i for i in range(len(scores)) if scores[i] > threshold]
    assert sorted(table["sample"]) == above  # neighbours are never merged
    assert list(table["score"]) == sorted(table["score"], reverse=True)
    np.testing.assert_allclose(table["score"], scores[table["sample"]])
    np.testing.assert_allclose(table["severity"], scores[table["sample"]] / threshold)
    assert list(table.columns) == ["sample", "score", "severity", "top_features"]
    assert table["top_features"].str.match(r"^[01] \(\d+%\), [01] \(\d+%\)$").all()


def test_neighbouring_anomalous_samples_stay_separate_rows(combined_panel, panel):
    odd = panel[:3].copy()
    odd[:, 2:6, 0] = 6.0  # a plateau no training sample has, in three consecutive samples
    table = combined_panel.detect(odd)
    assert sorted(table["sample"]) == [0, 1, 2]
    assert "start" not in table.columns and "end" not in table.columns


def test_detect_on_a_panel_refuses_min_gap(combined_panel, panel):
    with pytest.raises(ParameterError, match=r"min_gap=3 merges nearby timesteps of a long series.*leave min_gap out"):
        combined_panel.detect(panel, min_gap=3)


def test_detect_with_nothing_above_the_threshold_is_an_empty_table(combined_panel, panel):
    table = combined_panel.detect(panel, threshold=1e12)
    assert len(table) == 0 and list(table.columns) == ["sample", "score", "severity", "top_features"]


# ------------------------------------------------------- (id, time) frames
def long_frame(panel: np.ndarray, ids: list[str], names: list[str]) -> pd.DataFrame:
    """The panel as a long table: one row per (id, day), rows shuffled."""
    rows = []
    for sample, user in zip(panel, ids):
        for day, values in enumerate(sample):
            rows.append({"user": user, "day": day, **dict(zip(names, values))})
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=0)
    return frame.set_index(["user", "day"])


def test_a_frame_indexed_by_id_and_time_is_a_panel_in_order_of_first_appearance(panel):
    from lstmae.data.frames import prepare

    ids = [f"u{i:02d}" for i in range(len(panel))]
    frame = long_frame(panel, ids, ["clicks", "views"])
    data = prepare(frame)
    first_seen = list(dict.fromkeys(frame.index.get_level_values(0)))
    order = [ids.index(user) for user in first_seen]
    assert data.is_panel and data.columns == ["clicks", "views"] and list(data.index) == first_seen
    np.testing.assert_array_equal(data.values, panel[order])


def test_a_panel_frame_gives_scores_by_id_and_named_top_features(panel):
    ids = [f"u{i:02d}" for i in range(len(panel))]
    frame = long_frame(panel, ids, ["clicks", "views"])
    model = LSTMAutoencoder(**SMALL).fit(frame)
    assert list(model.feature_names_in_) == ["clicks", "views"]
    scores = model.anomaly_score(frame)
    assert isinstance(scores, pd.Series) and scores.index.name == "user"
    order = [ids.index(user) for user in scores.index]
    np.testing.assert_allclose(scores.to_numpy(), model.anomaly_score(panel[order]), rtol=1e-6)
    table = model.detect(frame, threshold=float(scores.median()))
    assert list(table.columns) == ["sample", "user", "score", "severity", "top_features"]  # the frame's id level name
    assert list(table["user"]) == [scores.index[i] for i in table["sample"]]
    assert table["top_features"].str.match(r"^(clicks|views) \(\d+%\), (clicks|views) \(\d+%\)$").all()


def test_a_panel_frame_needs_the_same_number_of_timesteps_per_id(panel):
    frame = long_frame(panel[:3], ["a", "b", "c"], ["clicks", "views"])
    frame = frame.drop(index=("b", 4))
    with pytest.raises(DataError, match=r"id 'b' has 7 rows but most ids have 8; every id needs the same number of timesteps"):
        LSTMAutoencoder(**SMALL).fit(frame)


def test_a_panel_frame_refuses_a_repeated_id_and_time(panel):
    frame = long_frame(panel[:2], ["a", "b"], ["clicks", "views"])
    frame = pd.concat([frame, frame.iloc[:1]])
    with pytest.raises(DataError, match=r"indexed by \(id, time\) but id '[ab]' has time \d more than once"):
        LSTMAutoencoder(**SMALL).fit(frame)


def test_encode_and_reconstruct_of_a_panel_frame_keep_its_ids_index_and_columns(panel):
    """Issue 23 item 7: pandas in, pandas out, named by the input's ids, index and columns."""
    ids = [f"u{i:02d}" for i in range(len(panel))]
    frame = long_frame(panel, ids, ["clicks", "views"]).sample(frac=1, random_state=3)  # rows in any order
    model = LSTMAutoencoder(**SMALL).fit(frame)
    rebuilt = model.reconstruct(frame)
    assert isinstance(rebuilt, pd.DataFrame) and rebuilt.index.equals(frame.index) and list(rebuilt.columns) == ["clicks", "views"]
    by_id = model.reconstruct(panel)  # the same samples as an array, in the array's order
    for user in ("u00", "u07"):
        rows = rebuilt.xs(user, level="user").sort_index()
        np.testing.assert_allclose(rows.to_numpy(), by_id[ids.index(user)], rtol=1e-6)
    embeddings = model.encode(frame)
    assert isinstance(embeddings, pd.DataFrame) and embeddings.index.name == "user"
    assert list(embeddings.columns) == [f"z{i}" for i in range(embeddings.shape[1])]
    np.testing.assert_allclose(embeddings.loc[ids].to_numpy(), model.encode(panel), rtol=1e-5, atol=1e-6)
