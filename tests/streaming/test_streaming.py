"""Tests for lstmae.streaming.scorer: a stream's scores against batch scoring of the same series.

The reference is `LSTMAutoencoder.anomaly_score` of the whole series (the slow,
obvious path: every window of the whole series at once); a provisional score is
batch scoring of the series received so far. Models are tiny and seeded.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd
import pytest

from lstmae import LSTMAutoencoder
from lstmae.data.cleaning import fill_missing
from lstmae.errors import DataError, FeatureMismatchError, LstmaeWarning, ParameterError

from conftest import sine

N = 260
RTOL = 1e-5


def _fit(values: np.ndarray, **params) -> LSTMAutoencoder:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LSTMAutoencoder(timesteps=12, units=4, epochs=1, random_state=0, verbose=0, **params).fit(values)


@pytest.fixture(scope="module")
def univariate() -> tuple[LSTMAutoencoder, np.ndarray]:
    x = sine(N, 15, seed=4)
    x[150:158] += 1.5  # an anomaly, so that intervals open and close
    return _fit(x[:140]), x


@pytest.fixture(scope="module")
def multivariate() -> tuple[LSTMAutoencoder, pd.DataFrame]:
    index = pd.date_range("2025-01-01", periods=N, freq="min")
    frame = pd.DataFrame({"a": sine(N, 15, seed=5), "b": 3 + 2 * sine(N, 9, seed=6, phase=1.0)}, index=index)
    frame.iloc[180:186, 1] -= 4.0
    return _fit(frame.iloc[:150]), frame


@contextlib.contextmanager
def scoring(model: LSTMAutoencoder, **params):
    """The shared model with other scoring parameters for one test."""
    before = {key: model.get_params()[key] for key in params}
    model.set_params(**params)
    try:
        yield model
    finally:
        model.set_params(**before)


def _feed(scorer, values, sizes):
    """Feed ``values`` (array or frame) in blocks of the given sizes (cycled), then flush; all outputs concatenated."""
    outs, i, k = [], 0, 0
    while i < len(values):
        size = sizes[k % len(sizes)]
        outs.append(scorer.update(values[i : i + size]))
        i, k = i + size, k + 1
    outs.append(scorer.flush())
    return pd.concat(outs)


def _random_sizes(seed: int) -> list[int]:
    return list(np.random.default_rng(seed).integers(1, 40, size=50))


@pytest.mark.parametrize("data", ["univariate", "multivariate"])
@pytest.mark.parametrize("sizes", [[1], "random"])
def test_stream_equals_batch_with_stride_1(data, sizes, request):
    model, values = request.getfixturevalue(data)
    with scoring(model, score_stride=1):
        expected = np.asarray(model.anomaly_score(values))
        got = _feed(model.stream(), values, _random_sizes(1) if sizes == "random" else sizes)
    assert len(got) == len(values)
    np.testing.assert_allclose(got["score"].to_numpy(), expected, rtol=RTOL)
    np.testing.assert_array_equal(got["anomaly"].to_numpy(), (expected > model.threshold_).astype(int))
    if isinstance(values, pd.DataFrame):
        assert got.index.equals(values.index.rename("time"))
    else:
        assert list(got.index) == list(range(len(values))) and got.index.name == "position"


@pytest.mark.parametrize("stride", [2, 5, 12])
@pytest.mark.parametrize("aggregation, scorer", [("window", "combined"), ("peak", "combined"), ("timestep", "reconstruction")])
def test_flushed_stream_equals_batch_with_any_stride(univariate, stride, aggregation, scorer):
    model, values = univariate
    with scoring(model, score_stride=stride, aggregation=aggregation, scorer=scorer):
        grids = model.stream().grids  # the network's windows; the nearest-window part's own (T // 2 steps)
        assert [(length, step) for _, length, step, _ in grids] == [(12, stride)] + (
            [(6, min(stride, 6))] if scorer in ("combined", "neighbours") else [])
        for length in (N, N - 7):  # the end window at n - T off the grid, or not
            expected = model.anomaly_score(values[:length])
            got = _feed(model.stream(), values[:length], _random_sizes(stride))
            np.testing.assert_allclose(got["score"].to_numpy(), expected, rtol=RTOL)


@pytest.mark.parametrize("stride, aggregation", [(1, "window"), (3, "window"), (3, "peak")])
def test_a_score_is_final_delay_points_after_its_point(univariate, stride, aggregation):
    model, values = univariate
    with scoring(model, score_stride=stride, aggregation=aggregation):
        scorer = model.stream()
        T = model.timesteps_
        assert scorer.delay == (T - 1 if stride == 1 else T) + (T - T // 2 - 1 if aggregation == "window" else T - 1)
        for i in range(80):
            final = scorer.update(values[i])
            assert list(final.index) == ([i - scorer.delay] if i >= scorer.delay else [])


@pytest.mark.parametrize("stride", [1, 4])
def test_provisional_scores_are_batch_scores_of_the_series_so_far(univariate, stride):
    model, values = univariate
    with scoring(model, score_stride=stride):
        scorer = model.stream()
        assert scorer.provisional().empty  # not one window yet
        for i, stop in enumerate((30, 31, 77, 78, 160)):
            scorer.update(values[scorer.rows : stop])
            early = scorer.provisional()
            assert early.name == "provisional_score"
            batch = model.anomaly_score(values[:stop])
            assert list(early.index) == list(range(stop - len(early), stop)) and len(early) == min(stop, scorer.delay)
            np.testing.assert_allclose(early.to_numpy(), batch[stop - len(early) :], rtol=RTOL)


def test_intervals_close_as_detect_finds_them(multivariate):
    model, frame = multivariate
    expected = model.detect(frame)
    assert len(expected) >= 1
    scorer, closed = model.stream(), []
    for i in range(0, len(frame), 7):
        scorer.update(frame.iloc[i : i + 7])
        closed.append(scorer.closed_intervals)
        for _, row in scorer.closed_intervals.iterrows():  # reported once min_gap normal points followed it
            assert scorer.scored - 1 >= row["end"] + scorer.min_gap
    scorer.flush()
    closed.append(scorer.closed_intervals)
    got = pd.concat([c for c in closed if len(c)], ignore_index=True)
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got[["start", "end", "length", "start_time", "end_time", "top_features"]],
                                  expected[["start", "end", "length", "start_time", "end_time", "top_features"]])
    np.testing.assert_allclose(got[["peak_score", "mean_score", "severity"]], expected[["peak_score", "mean_score", "severity"]], rtol=RTOL)


@pytest.mark.parametrize("cut", [5, 100, 200])
def test_restored_state_continues_the_same_stream(multivariate, cut, tmp_path):
    model, frame = multivariate
    gapped = frame.copy()
    gapped.iloc[cut - 3 : cut + 2, 0] = np.nan  # a gap held across the save
    blocks = [(i, min(i + 9, cut)) for i in range(0, cut, 9)] + [(i, i + 9) for i in range(cut, len(gapped), 9)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LstmaeWarning)
        uninterrupted = model.stream()
        whole = pd.concat([uninterrupted.update(gapped.iloc[a:b]) for a, b in blocks] + [uninterrupted.flush()])
        first, parts = model.stream(), []
        for a, b in blocks:
            if a == cut:  # a restarted monitor: the state on disk, a new stream
                first.save_state(tmp_path / "stream.safetensors")
                first = model.stream().load_state(tmp_path / "stream.safetensors")
            parts.append(first.update(gapped.iloc[a:b]))
        parts.append(first.flush())
    np.testing.assert_array_equal(pd.concat(parts)["score"].to_numpy(), whole["score"].to_numpy())
    assert pd.concat(parts).index.equals(whole.index)


def test_state_dict_holds_tensors_and_json_fields_only(univariate):
    import json

    import torch

    model, values = univariate
    scorer = model.stream()
    scorer.update(values[:50])
    state = scorer.state_dict()
    assert all(isinstance(t, torch.Tensor) for t in state["tensors"].values())
    json.dumps(state["fields"])  # plain JSON, nothing pickled
    other = model.stream().load_state_dict(state)
    np.testing.assert_array_equal(other.update(values[50:90])["score"], scorer.update(values[50:90])["score"])


def test_a_state_of_another_model_is_refused(univariate, multivariate):
    state = univariate[0].stream().state_dict()
    with pytest.raises(ParameterError, match="restore it into model.stream"):
        multivariate[0].stream().load_state_dict(state)


@pytest.mark.parametrize("version", [1, 2])  # 1: one (T,) count per position, no nearest-window grid; 2: parts unnamed
def test_a_state_saved_before_the_nearest_window_grid_is_refused_with_a_way_out(univariate, version):
    from lstmae.errors import ModelFileError
    from lstmae.streaming.scorer import STATE_VERSION

    state = univariate[0].stream().state_dict()
    state["fields"]["format_version"] = version
    with pytest.raises(ModelFileError, match=rf"state version {version}, this one reads {STATE_VERSION}\); start a new stream"):
        univariate[0].stream().load_state_dict(state)


def test_gaps_are_filled_as_batch_fills_them_once_the_next_value_arrives(multivariate):
    model, frame = multivariate
    gapped = frame.copy()
    gapped.iloc[0:2, 0] = np.nan  # leading gap: the first value
    gapped.iloc[40:44, 1] = np.nan
    gapped.iloc[42:47, 0] = np.nan  # overlapping gaps of two features
    gapped.iloc[-3:, 1] = np.nan  # trailing gap: the last value, at flush
    with pytest.warns(LstmaeWarning, match="filled 14 missing"):
        expected = model.anomaly_score(fill_missing(gapped))
    scorer = model.stream()
    with pytest.warns(LstmaeWarning, match="filled .* by linear interpolation in time") as caught:
        outs = [scorer.update(gapped.iloc[i : i + 1]) for i in range(len(gapped))]
        outs.append(scorer.flush())
    assert len([w for w in caught if issubclass(w.category, LstmaeWarning)]) == 4  # one per gap (2 in a, 2 in b)
    np.testing.assert_allclose(pd.concat(outs)["score"].to_numpy(), expected.to_numpy(), rtol=RTOL)


def test_a_point_in_a_gap_waits_for_the_next_value(univariate):
    model, values = univariate
    scorer = model.stream()
    scorer.update(values[:40])
    scorer.update([np.nan, np.nan])
    assert scorer.n == 40 and scorer.rows == 42
    with pytest.warns(LstmaeWarning, match="filled 2 missing"):
        scorer.update(values[42])
    assert scorer.n == 43


def test_missing_error_names_the_row(univariate):
    model, values = univariate
    scorer = model.stream(missing="error")
    scorer.update(values[:10])
    with pytest.raises(DataError, match=r"row 13 of the stream has a missing value in feature 0"):
        scorer.update([1.0, 2.0, np.nan])
    with pytest.raises(ParameterError, match="missing must be"):
        model.stream(missing="keep")


def test_non_numeric_value_is_an_error_naming_the_row(multivariate):
    model, frame = multivariate
    scorer = model.stream()
    scorer.update(frame.iloc[:5])
    bad = frame.iloc[5:8].astype(object)
    bad.iloc[1, 1] = "12,5"
    with pytest.raises(DataError, match=r"row 7 of the stream \(row 2 of this block\) has a non-numeric value '12,5' in column 'b'"):
        scorer.update(bad)
    with pytest.raises(DataError, match="infinite"):
        scorer.update(pd.DataFrame({"a": [np.inf], "b": [1.0]}, index=frame.index[5:6]))
    assert scorer.rows == 5  # nothing of a refused block was taken


def test_out_of_order_timestamps_are_refused_and_the_stream_goes_on(multivariate):
    model, frame = multivariate
    scorer = model.stream()
    first = scorer.update(frame.iloc[:20])
    with pytest.raises(DataError, match=r"row 21 of the stream has timestamp 2025-01-01 00:18:00, not after the previous one \(2025-01-01 00:19:00\); a stream cannot re-sort"):
        scorer.update(frame.iloc[18:19])
    with pytest.raises(DataError, match="not after the previous one"):
        scorer.update(frame.iloc[[21, 20]])
    with pytest.raises(DataError, match="has no timestamps but the stream started with datetime timestamps"):
        scorer.update(frame.iloc[20:21].to_numpy())
    got = pd.concat([first, _feed(scorer, frame.iloc[20:], [30])])  # the refused rows left no trace
    np.testing.assert_allclose(got["score"].to_numpy(), model.anomaly_score(frame).to_numpy(), rtol=RTOL)


def test_time_zones_and_numeric_timestamps_label_the_output(univariate):
    model, values = univariate
    stamps = pd.date_range("2025-03-30 00:00", periods=N, freq="15min", tz="Europe/Berlin")
    got = _feed(model.stream(), pd.Series(values, index=stamps), [50])
    assert got.index.equals(stamps.rename("time"))
    numbers = np.arange(N) * 0.5 + 100
    got = pd.concat([model.stream().update(values, timestamps=numbers)])
    np.testing.assert_array_equal(got.index.to_numpy(), numbers[: len(got)])


def test_wrong_shapes_and_models_are_refused(univariate, multivariate):
    model, values = univariate
    with pytest.raises(FeatureMismatchError, match="the block has 2 feature"):
        model.stream().update(np.ones((3, 2)))
    with pytest.raises(DataError, match="Panels of separate sequences"):
        model.stream().update(np.ones((2, 12, 1)))
    with pytest.raises(FeatureMismatchError, match=r"columns \['b', 'a'\]"):
        multivariate[0].stream().update(multivariate[1][["b", "a"]].iloc[:3])
    panel = np.sin(np.arange(12)[None, :, None] + np.arange(30)[:, None, None])
    with pytest.raises(DataError, match="panel of separate sequences"):
        _fit(panel).stream()
    with pytest.raises(Exception, match="not fitted"):
        LSTMAutoencoder().stream()


def test_flush_ends_the_stream(univariate):
    model, values = univariate
    scorer = model.stream()
    scorer.update(values[:5])
    with pytest.raises(DataError, match="after 5 points, fewer than the model's timesteps=12"):
        scorer.flush()
    scorer = model.stream()
    assert scorer.flush().empty
    with pytest.raises(DataError, match="was flushed"):
        scorer.update(values[:3])


def test_a_centred_reference_gives_the_same_distances_as_the_tensor():
    import torch

    from lstmae.scoring.latent import CentredReference, nearest_distances

    generator = torch.Generator().manual_seed(0)
    reference, queries = torch.randn(500, 8, generator=generator) + 3, torch.randn(7, 8, generator=generator) + 3
    assert torch.equal(nearest_distances(queries, CentredReference.of(reference)), nearest_distances(queries, reference))


def test_few_windows_merge_to_the_same_bits_as_the_offset_loop():
    """A stream's block has fewer windows than timesteps: TimestepAccumulator adds them one slice each, in the
    order the offset loop adds them to every timestep, so batch and stream sums are the same bits."""
    from lstmae.data.windows import TimestepAccumulator

    rng = np.random.default_rng(0)
    starts = np.array([9, 0, 3, 4, 12])  # unsorted, overlapping
    values = rng.standard_normal((5, 8, 2)) * 10.0 ** rng.integers(-8, 8, size=(5, 8, 2))
    fast = TimestepAccumulator(20, 2)
    fast.add(starts, values)
    sums, counts = np.zeros((20, 2)), np.zeros(20, dtype=np.int64)
    for offset in range(8):  # the offset loop, as for many windows
        sums[starts + offset] += values[:, offset]
        counts[starts + offset] += 1
    np.testing.assert_array_equal(fast.sums, sums)
    np.testing.assert_array_equal(fast.counts, counts)


def test_bench_stream_runs_and_reports_every_measurement(bench_script):
    stream = bench_script("stream")
    result = stream.main(["--train", "600", "--period", "20", "--epochs", "1", "--points", "300", "--points-memory", "2000"])
    assert set(result["throughput"]) == {1, 10, 100} and all(v["cpu"] > 0 for v in result["throughput"].values())
    assert result["latency_ms"]["cpu"]["p99"] >= result["latency_ms"]["cpu"]["median"] > 0
    assert [fed for fed, _ in result["rss_mb"]] == list(range(200, 2001, 200))
    assert result["model"]["delay"] == model_delay(result["model"])


def model_delay(model: dict) -> int:
    T = model["timesteps"]
    after = T - 1 if model.get("aggregation", "peak") == "peak" else T - T // 2 - 1  # the default: each point's windows
    return (T - 1 if model["score_stride"] == 1 else T) + after
