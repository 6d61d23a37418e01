"""A global model over a collection of series (`lstmae.data.collection`), against slow loops written by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import RandomSampler

import lstmae.training
from lstmae import LSTMAutoencoder
from lstmae.data.collection import is_collection, split
from lstmae.errors import DataError, FeatureMismatchError
from lstmae.training import EpochDraw

T = 8


def series_set(seed: int = 0) -> dict[str, np.ndarray]:
    """Three 2-feature series of different lengths and levels (so a window crossing series would show)."""
    rng = np.random.default_rng(seed)
    out = {}
    for number, (key, length) in enumerate((("a", 40), ("b", 61), ("c", 25))):
        t = np.arange(length)
        out[key] = np.column_stack([np.sin(t / 3 + number), np.cos(t / 4)]) * (number + 1) + 10 * number
        out[key] = out[key] + 0.05 * rng.standard_normal((length, 2))
    return out


def model(**options) -> LSTMAutoencoder:
    settings = dict(timesteps=T, units=4, epochs=1, batch_size=16, random_state=0, verbose=0, scorer="reconstruction")
    return LSTMAutoencoder(**{**settings, **options})


@pytest.fixture(scope="module")
def fitted() -> LSTMAutoencoder:
    with pytest.warns(Warning):  # the 1-epoch model is degenerate; fine here
        return model().fit(series_set())


def naive_windows(series: dict, stride: int, validation_split: float, pooled: bool = False) -> tuple[list, list]:
    """(training windows, held-out windows), built series by series with loops: scaled by the series' own
    mean and standard deviation (or the pooled ones), windows every ``stride`` and the last, the last share held out."""
    everything = np.concatenate(list(series.values()))
    train, held = [], []
    for values in series.values():
        source = everything if pooled else values
        scaled = (values - source.mean(axis=0)) / source.std(axis=0)
        starts = list(range(0, len(values) - T + 1, stride))
        if starts[-1] != len(values) - T:
            starts.append(len(values) - T)
        windows = [scaled[s : s + T] for s in starts]
        cut = int(len(windows) * (1 - validation_split))
        train += windows[:cut]
        held += windows[cut:]
    return train, held


@pytest.mark.parametrize(("stride", "pooled"), [(1, False), (3, False), (2, True)])
def test_training_windows_stay_inside_their_series(monkeypatch, stride, pooled):
    seen = {}
    real = lstmae.training.train

    def recording(net, train_set, val_set, plan):
        seen.update(train=train_set, val=val_set, plan=plan)
        return real(net, train_set, val_set, plan)

    monkeypatch.setattr(lstmae.training, "train", recording)
    data = series_set()
    with pytest.warns(Warning):
        model(stride=stride, series_scaling="global" if pooled else "series", validation_split=0.2).fit(data)
    train, held = naive_windows(data, stride, 0.2, pooled)
    got_train = seen["train"].__getitems__(list(range(len(seen["train"]))))
    got_held = seen["val"].__getitems__(list(range(len(seen["val"]))))
    assert got_train.shape == (len(train), T, 2) and got_held.shape == (len(held), T, 2)
    np.testing.assert_allclose(got_train.numpy(), np.stack(train), rtol=0, atol=2e-5)
    np.testing.assert_allclose(got_held.numpy(), np.stack(held), rtol=0, atol=2e-5)
    assert seen["plan"].groups == _train_counts(data, stride, 0.2)


def _train_counts(data: dict, stride: int, validation_split: float) -> list[int]:
    counts = []
    for values in data.values():
        starts = set(range(0, len(values) - T + 1, stride)) | {len(values) - T}
        counts.append(int(len(starts) * (1 - validation_split)))
    return counts


def test_each_epoch_draws_at_most_the_cap_from_every_series():
    sizes, cap = [50, 7, 300], 20
    sampler = EpochDraw(sizes, cap, torch.Generator().manual_seed(0))
    bounds = np.cumsum([0, *sizes])
    epochs = [list(sampler) for _ in range(3)]
    for drawn in epochs:
        assert len(drawn) == len(sampler) == 20 + 7 + 20
        assert len(set(drawn)) == len(drawn)  # without replacement within an epoch
        per_group = np.histogram(drawn, bins=bounds)[0]
        assert per_group.tolist() == [20, 7, 20]
    assert epochs[0] != epochs[1]  # drawn afresh


def test_one_group_draws_what_random_sampler_draws():
    ours = EpochDraw([100], 30, torch.Generator().manual_seed(4))
    theirs = RandomSampler(range(100), num_samples=30, generator=torch.Generator().manual_seed(4))
    for _ in range(3):
        assert list(ours) == list(theirs)


def test_windows_per_series_auto_shares_windows_per_epoch(monkeypatch):
    seen = {}
    real = lstmae.training.train
    monkeypatch.setattr(lstmae.training, "train", lambda net, a, b, plan: seen.setdefault("plan", plan) and real(net, a, b, plan))
    with pytest.warns(Warning):
        model(windows_per_epoch=30).fit(series_set())
    assert seen["plan"].max_windows == 10  # 30 shared by 3 series
    seen.clear()
    with pytest.warns(Warning):
        model(windows_per_series=4).fit(series_set())
    assert seen["plan"].max_windows == 4


def test_each_series_has_its_own_scaler_and_threshold(fitted):
    data = series_set()
    scores = fitted.anomaly_score(data)
    assert list(scores) == ["a", "b", "c"]
    for key, values in data.items():
        state = fitted.series_states_[key]
        np.testing.assert_allclose(state.scaler_mean, values.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(state.scaler_scale, values.std(axis=0), rtol=1e-9)
        assert scores[key].shape == (len(values),)
        # threshold "auto": 1.25 x the largest score of the series' own training data
        assert state.threshold == pytest.approx(1.25 * scores[key].max(), rel=1e-12)


def test_a_long_table_gives_one_table_in_the_input_row_order(fitted):
    data = series_set()
    by_key = fitted.anomaly_score(data)
    # the rows of the three series interleaved, as a table sorted by time would have them
    rows = [(key, i, *values[i]) for key, values in data.items() for i in range(len(values))]
    rows.sort(key=lambda row: (row[1], row[0]))
    table = pd.DataFrame(rows, columns=["sensor", "step", "x", "y"]).set_index("step")
    scores = fitted.anomaly_score(table, series_column="sensor")
    assert list(scores.columns) == ["sensor", "score"] and scores.index.equals(table.index)
    for position, (key, step, *_) in enumerate(rows):  # the slow way: row by row
        assert scores["sensor"].iloc[position] == key
        assert scores["score"].iloc[position] == by_key[key][step]
    rebuilt = fitted.reconstruct(table, series_column="sensor")
    assert list(rebuilt.columns) == ["sensor", "x", "y"] and rebuilt.index.equals(table.index)
    expected = fitted.reconstruct(data)
    for position, (key, step, *_) in enumerate(rows):
        np.testing.assert_array_equal(rebuilt[["x", "y"]].iloc[position].to_numpy(), expected[key][step])
    intervals = fitted.detect(table, series_column="sensor", threshold=0.0)
    assert intervals.columns[0] == "sensor" and set(intervals["sensor"]) == {"a", "b", "c"}
    embeddings = fitted.encode(table, series_column="sensor")
    assert {key: e.shape[0] for key, e in embeddings.items()} == {"a": 40 - T + 1, "b": 61 - T + 1, "c": 25 - T + 1}


def test_a_list_is_keyed_by_position_and_a_dict_by_its_keys():
    data = list(series_set().values())
    with pytest.warns(Warning):
        fitted = model().fit(data)
    assert list(fitted.series_states_) == [0, 1, 2]
    scores = fitted.anomaly_score(data)
    assert list(scores) == [0, 1, 2]
    with pytest.raises(DataError, match=r"series \['a'\] were not in the data this global model was fitted on"):
        fitted.anomaly_score({"a": data[0]})
    with pytest.raises(DataError, match="global model over 3 series; pass a collection"):
        fitted.anomaly_score(data[0])
    with pytest.raises(AttributeError, match="global model over 3 series.*series_states_"):
        fitted.threshold_


def test_a_single_series_model_scores_each_series_of_a_collection():
    data = series_set()
    with pytest.warns(Warning):
        single = model().fit(data["b"])
    scores = single.anomaly_score(data)
    for key, values in data.items():
        np.testing.assert_array_equal(scores[key], single.anomaly_score(values))


def test_every_model_holds_one_mapping_of_states(fitted):
    """A global model's states are keyed by series; a model of one series is the mapping with one entry, key None."""
    assert fitted.scoring_states_ is fitted.series_states_ and list(fitted.scoring_states_) == ["a", "b", "c"]
    with pytest.raises(AttributeError, match="global model over 3 series"):
        fitted.scoring_state_
    with pytest.warns(Warning):
        single = model().fit(series_set()["a"])
    assert list(single.scoring_states_) == [None] and single.scoring_states_[None] is single.scoring_state_
    assert not hasattr(single, "series_states_")
    # each series of the global model is scored on the plain path with its own state
    data = series_set()
    for key, values in data.items():
        expected, _ = fitted.scoring_states_[key].score(fitted.module_, values, False, fitted._settings())
        np.testing.assert_array_equal(fitted.anomaly_score(data)[key], expected)


def test_save_and_load_keep_every_series_state(fitted, tmp_path):
    path = fitted.save(tmp_path / "global.safetensors")
    loaded = LSTMAutoencoder.load(path, device="cpu")
    data = series_set()
    before, after = fitted.anomaly_score(data), loaded.anomaly_score(data)
    assert list(after) == list(before)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
        assert loaded.series_states_[key].threshold == fitted.series_states_[key].threshold


def test_bad_collections_say_what_is_wrong():
    data = series_set()
    with pytest.raises(DataError, match=r"series 'c': the series has 25 timesteps, fewer than timesteps=30"):
        model(timesteps=30).fit(data)
    with pytest.raises(FeatureMismatchError, match=r"series 'b': has features 1, but series 'a': has 2"):
        model().fit({"a": data["a"], "b": data["b"][:, 0]})
    with pytest.raises(DataError, match="series_column 'sensor' not found"):
        model().fit(pd.DataFrame({"x": range(50)}), series_column="sensor")
    with pytest.raises(DataError, match="series key 1.5; series keys must be str or int"):
        model().fit({1.5: data["a"]})


def test_what_counts_as_a_collection():
    assert is_collection([np.zeros(5), np.zeros(5)]) and is_collection({"a": [1.0, 2.0]})
    assert not is_collection([[1.0, 2.0], [3.0, 4.0]]) and not is_collection(np.zeros((3, 4)))
    assert split(np.zeros(10)).layout == "one"
