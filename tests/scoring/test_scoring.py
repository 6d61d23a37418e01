"""Tests for lstmae.scoring: thresholds, intervals, the interval table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
from lstmae.errors import LstmaeError, ParameterError
from lstmae.scoring.thresholds import AUTO_THRESHOLD_MARGIN, auto_threshold, contamination_threshold, pot_threshold
from lstmae.scoring.intervals import INTERVAL_COLUMNS, find_intervals, interval_table, top_features
from lstmae.scoring.aggregation import centred_mean

FAST = settings(max_examples=100, deadline=None)

# scores drawn from a few levels, so that runs, gaps and ties with the threshold are common
levels = st.sampled_from([0.0, 0.5, 1.0, 1.5, 3.0])
score_arrays = st.lists(levels, min_size=0, max_size=40).map(lambda v: np.array(v, dtype=np.float64))
thresholds = st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0, 5.0])


# ------------------------------------------------------------------ find_intervals


@FAST
@given(score_arrays, thresholds, st.integers(1, 8))
def test_find_intervals_matches_naive(scores, threshold, min_gap):
    got = find_intervals(scores, threshold, min_gap)
    assert got.dtype == np.int64
    assert got.shape[1:] == (2,)
    assert [tuple(map(int, row)) for row in got] == naive.find_intervals(scores.tolist(), threshold, min_gap)


@FAST
@given(score_arrays, thresholds, st.integers(1, 8))
def test_find_intervals_properties(scores, threshold, min_gap):
    got = find_intervals(scores, threshold, min_gap)
    above = scores > threshold
    covered = np.zeros(len(scores), dtype=bool)
    for start, end in got:
        assert 0 <= start <= end < len(scores)
        assert above[start] and above[end]  # intervals start and end on anomalous steps
        covered[start : end + 1] = True
    assert np.all(covered[above])  # every anomalous step is in some interval
    assert not np.any(covered & ~above) or min_gap > 1  # without merging, only anomalous steps
    # intervals are ordered and separated by at least min_gap normal steps
    for (_, end), (start, _) in zip(got[:-1], got[1:]):
        assert start - end - 1 >= min_gap


def test_find_intervals_hand_examples():
    s = np.array([0, 2, 2, 0, 0, 2, 0, 2, 2, 2], dtype=float)
    np.testing.assert_array_equal(find_intervals(s, 1.0), [[1, 2], [5, 5], [7, 9]])  # ends inclusive
    # gaps: 2 normal steps between runs 1 and 2, 1 between runs 2 and 3
    np.testing.assert_array_equal(find_intervals(s, 1.0, min_gap=2), [[1, 2], [5, 9]])  # gap 1 < 2 merged
    np.testing.assert_array_equal(find_intervals(s, 1.0, min_gap=3), [[1, 9]])  # gap 2 < 3 merged
    np.testing.assert_array_equal(find_intervals(s, 1.0, min_gap=1), [[1, 2], [5, 5], [7, 9]])


def test_gap_equal_to_min_gap_is_kept():
    s = np.array([5, 0, 0, 0, 5], dtype=float)  # 3 normal steps between
    np.testing.assert_array_equal(find_intervals(s, 1.0, min_gap=3), [[0, 0], [4, 4]])
    np.testing.assert_array_equal(find_intervals(s, 1.0, min_gap=4), [[0, 4]])


def test_threshold_is_strict():
    s = np.array([1.0, 1.0, 1.0000001])
    np.testing.assert_array_equal(find_intervals(s, 1.0), [[2, 2]])


def test_whole_series_and_edges():
    np.testing.assert_array_equal(find_intervals(np.ones(4), 0.5), [[0, 3]])
    np.testing.assert_array_equal(find_intervals(np.array([9.0, 0.0, 0.0, 9.0]), 1.0), [[0, 0], [3, 3]])


@pytest.mark.parametrize("scores", [np.zeros(5), np.array([]), np.array([1.0, 1.0])])
def test_no_intervals(scores):
    got = find_intervals(scores, 1.0, min_gap=3)
    assert got.shape == (0, 2) and got.dtype == np.int64


# ------------------------------------------------------------------ interval_table


def test_interval_table_columns_and_values():
    scores = np.array([0.0, 3.0, 1.0, 0.0, 0.0, 0.0, 4.0, 6.0, 5.0, 0.0])
    table = interval_table(scores, 2.0, min_gap=1)
    assert list(table.columns) == INTERVAL_COLUMNS == ["start", "end", "length", "peak_score", "mean_score", "severity"]
    assert table["start"].tolist() == [1, 6]
    assert table["end"].tolist() == [1, 8]
    assert table["length"].tolist() == [1, 3]
    assert table["peak_score"].tolist() == [3.0, 6.0]
    assert table["mean_score"].tolist() == pytest.approx([3.0, 5.0])
    assert table["severity"].tolist() == pytest.approx([3.0 / 2.0, 6.0 / 2.0])  # peak / threshold
    for column in ("start", "end", "length"):
        assert table[column].dtype == np.int64
    for column in ("peak_score", "mean_score", "severity"):
        assert table[column].dtype == np.float64
    assert (table["severity"] > 1).all()


def test_interval_table_merged_interval_includes_the_gap_in_its_mean():
    scores = np.array([5.0, 1.0, 3.0])
    table = interval_table(scores, 2.0, min_gap=2)
    assert table[["start", "end", "length"]].values.tolist() == [[0, 2, 3]]
    assert table["mean_score"].iloc[0] == pytest.approx(3.0)  # (5 + 1 + 3) / 3
    assert table["peak_score"].iloc[0] == 5.0


@FAST
@given(score_arrays, st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.integers(1, 5))
def test_interval_table_matches_naive(scores, threshold, min_gap):
    table = interval_table(scores, threshold, min_gap)
    expected = naive.find_intervals(scores.tolist(), threshold, min_gap)
    assert list(zip(table["start"], table["end"])) == expected
    for row, (a, b) in zip(table.itertuples(), expected):
        part = scores.tolist()[a : b + 1]
        assert row.length == b - a + 1
        assert row.peak_score == max(part)
        assert row.mean_score == pytest.approx(sum(part) / len(part))
        assert row.severity == (max(part) / threshold if threshold > 0 else np.inf)


def test_interval_table_with_datetime_index_adds_times():
    index = pd.date_range("2024-03-01", periods=8, freq="h")
    scores = np.array([0, 5, 5, 0, 0, 0, 7, 0], dtype=float)
    table = interval_table(scores, 1.0, index=index)
    assert list(table.columns) == ["start", "end", "start_time", "end_time", "length", "peak_score", "mean_score", "severity"]
    assert table["start_time"].tolist() == [index[1], index[6]]
    assert table["end_time"].tolist() == [index[2], index[6]]
    assert pd.api.types.is_datetime64_any_dtype(table["start_time"])


def test_interval_table_time_columns_follow_positions_not_labels():
    # an unsorted DatetimeIndex: times come from the positions of start/end
    index = pd.DatetimeIndex(["2024-01-05", "2024-01-01", "2024-01-03", "2024-01-02"])
    table = interval_table(np.array([0.0, 2.0, 2.0, 0.0]), 1.0, index=index)
    assert table["start_time"].tolist() == [pd.Timestamp("2024-01-01")]
    assert table["end_time"].tolist() == [pd.Timestamp("2024-01-03")]


def test_interval_table_range_index_has_no_time_columns():
    scores = np.array([0.0, 5.0, 0.0])
    table = interval_table(scores, 1.0, index=pd.RangeIndex(3))
    assert list(table.columns) == INTERVAL_COLUMNS
    assert list(interval_table(scores, 1.0).columns) == INTERVAL_COLUMNS


def test_interval_table_empty():
    table = interval_table(np.zeros(5), 1.0)
    assert len(table) == 0
    assert list(table.columns) == INTERVAL_COLUMNS
    assert dict(table.dtypes) == {
        "start": np.int64, "end": np.int64, "length": np.int64,
        "peak_score": np.float64, "mean_score": np.float64, "severity": np.float64,
    }
    with_times = interval_table(np.zeros(5), 1.0, index=pd.date_range("2024-01-01", periods=5))
    assert len(with_times) == 0 and "start_time" in with_times.columns


def test_interval_table_zero_threshold_gives_infinite_severity():
    table = interval_table(np.array([0.0, 0.5]), 0.0)
    assert table["severity"].tolist() == [np.inf]


@pytest.mark.parametrize("threshold", [np.nan, np.inf, -np.inf, -1.0, -1e-9])
def test_interval_table_threshold_validation(threshold):
    with pytest.raises(ParameterError, match=r"threshold must be a finite number >= 0, got ") as info:
        interval_table(np.zeros(3), threshold)
    assert repr(threshold) in str(info.value)
    assert isinstance(info.value, LstmaeError) and isinstance(info.value, ValueError)


# ------------------------------------------------------------------ auto_threshold


def test_auto_threshold_is_a_margin_above_the_largest_training_score():
    assert AUTO_THRESHOLD_MARGIN == 1.25
    scores = np.array([0.1, 0.8, 0.3])
    threshold = auto_threshold(scores)
    assert isinstance(threshold, float)
    assert threshold == pytest.approx(1.0)  # 1.25 x 0.8
    # nothing in the training data is flagged; a score 25% above its worst is
    assert len(find_intervals(scores, threshold)) == 0
    assert len(find_intervals(np.append(scores, 0.99), threshold)) == 0
    np.testing.assert_array_equal(find_intervals(np.append(scores, 1.00001), threshold), [[3, 3]])


def test_auto_threshold_float32_input():
    assert auto_threshold(np.array([1.5, 2.0], dtype=np.float32)) == 2.5


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=60),
    st.integers(1, 80),
)
def test_centred_mean_matches_loop(values, width):
    got = centred_mean(np.array(values), width)
    want = naive.centred_mean_loop(values, width)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)


def test_centred_mean_columns_are_independent():
    x = np.array([[0.0, 10.0], [3.0, 10.0], [6.0, 40.0], [9.0, 10.0]])
    got = centred_mean(x, 3)
    # position 0 sees rows 0..1, position 3 sees rows 2..3 (the stretch is clipped, not padded)
    np.testing.assert_allclose(got[:, 0], [1.5, 3.0, 6.0, 7.5])
    np.testing.assert_allclose(got[:, 1], [10.0, 20.0, 20.0, 25.0])


def test_centred_mean_width_one_is_identity():
    x = np.array([3.0, 1.0, 2.0])
    np.testing.assert_array_equal(centred_mean(x, 1), x)


# --------------------------------------------------------------- thresholds
def test_pot_threshold_recovers_an_exponential_quantile():
    # Exp(1) has a generalized Pareto tail with xi = 0: the score exceeded with
    # probability 1e-4 is -log(1e-4) = 9.21. The fit sees only the top 2%.
    rng = np.random.default_rng(0)
    scores = rng.exponential(size=200_000)
    level = pot_threshold(scores, risk=1e-4)
    assert level == pytest.approx(-np.log(1e-4), rel=0.08)
    assert level > np.quantile(scores, 0.98)


def test_pot_threshold_heavier_tail_gives_a_higher_threshold():
    rng = np.random.default_rng(1)
    light = rng.exponential(size=50_000)
    heavy = rng.pareto(3.0, size=50_000)  # xi = 1/3
    assert pot_threshold(heavy) / np.quantile(heavy, 0.98) > pot_threshold(light) / np.quantile(light, 0.98)


def test_pot_threshold_degenerate_tail_falls_back_to_the_maximum():
    assert pot_threshold(np.array([1.0, 2.0, 3.0])) == 3.0  # too few excesses to fit
    assert pot_threshold(np.full(1000, 0.5)) == 0.5  # all equal


@pytest.mark.parametrize(("kwargs", "match"), [({"risk": 0}, r"risk must be in \(0, 1\), got 0"), ({"initial_quantile": 1.0}, r"initial_quantile must be in \(0, 1\), got 1\.0")])
def test_pot_threshold_validates(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        pot_threshold(np.arange(100.0), **kwargs)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300), st.floats(0.001, 0.5))
def test_contamination_threshold_leaves_at_most_that_share_above(scores, contamination):
    level = contamination_threshold(np.array(scores), contamination)
    above = sum(1 for s in scores if s > level)
    assert above <= contamination * len(scores) + 1e-9
    assert level in scores


def test_contamination_threshold_validates():
    with pytest.raises(ParameterError, match=r"contamination must be in \(0, 0.5\], got 0.7"):
        contamination_threshold(np.arange(10.0), 0.7)


# ------------------------------------------------------------ top features
def test_top_features_names_the_largest_shares_first():
    assert top_features(np.array([1.0, 6.0, 3.0, 0.0]), ["a", "b", "c", "d"]) == "b (60%), c (30%), a (10%)"
    assert top_features(np.array([0.0, 0.0]), ["a", "b"]) == "a, b"


def test_interval_table_top_features_sum_the_interval_only():
    per = np.zeros((10, 3))
    per[2:4, 2] = 9.0  # interval 1 is feature 2's
    per[2:4, 0] = 1.0
    per[7, 1] = 5.0  # interval 2 is feature 1's
    per[0, 0] = 100.0  # below threshold: outside every interval
    scores = per.mean(axis=1)
    table = interval_table(scores, 1.0, feature_scores=per, feature_names=["x", "y", "z"])
    assert list(zip(table["start"], table["end"])) == [(0, 0), (2, 3), (7, 7)]
    assert table["top_features"].tolist()[1:] == ["z (90%), x (10%), y (0%)", "y (100%), x (0%), z (0%)"]


def test_interval_table_rejects_feature_scores_of_another_length():
    with pytest.raises(ParameterError, match=r"feature_scores must have shape \(3, n_features\), got \(2, 1\)"):
        interval_table(np.ones(3), 0.5, feature_scores=np.ones((2, 1)))
