"""Tests for lstmae.data.windows: starts, counts, gathering and merging back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
from lstmae.data.windows import TimestepAccumulator, gather_windows, n_windows, window_starts
from lstmae.errors import DataError, LstmaeError, ParameterError

FAST = settings(max_examples=60, deadline=None)


@st.composite
def grids(draw, max_n: int = 60):
    """(n_timesteps, timesteps, stride) with n >= timesteps."""
    timesteps = draw(st.integers(1, 12))
    n = draw(st.integers(timesteps, max_n))
    stride = draw(st.integers(1, 15))
    return n, timesteps, stride


# ------------------------------------------------------------------ window_starts


@pytest.mark.parametrize(
    ("n", "timesteps", "stride", "expected"),
    [
        (10, 3, 1, list(range(8))),  # every start 0..7; 7 + 3 = 10
        (10, 3, 3, [0, 3, 6, 7]),  # grid 0, 3, 6 leaves timestep 9 uncovered -> add 7
        (10, 3, 7, [0, 7]),  # 0 then the last window
        (9, 3, 3, [0, 3, 6]),  # the grid already ends at n - T = 6
        (5, 5, 1, [0]),  # a single window covering the series exactly
        (5, 5, 4, [0]),
        (6, 2, 10, [0, 4]),  # stride longer than the window: tail still covered
    ],
)
def test_window_starts_small_cases(n, timesteps, stride, expected):
    starts = window_starts(n, timesteps, stride)
    assert starts.dtype == np.int64
    assert starts.tolist() == expected


@FAST
@given(grids())
def test_window_starts_matches_naive_and_properties(grid):
    n, timesteps, stride = grid
    starts = window_starts(n, timesteps, stride)
    assert starts.tolist() == naive.window_starts(n, timesteps, stride)
    # first window at 0, last window ends on the last timestep
    assert starts[0] == 0
    assert starts[-1] + timesteps - 1 == n - 1
    # sorted and unique, every window inside the series
    assert np.all(np.diff(starts) > 0)
    assert starts.min() >= 0 and starts.max() + timesteps <= n
    # consecutive starts at most `stride` apart (the grid, plus one extra at the end)
    assert np.all(np.diff(starts) <= stride)
    if stride <= timesteps:
        covered = np.zeros(n, dtype=bool)
        for s in starts:
            covered[s : s + timesteps] = True
        assert covered.all()


@FAST
@given(grids())
def test_n_windows_equals_len_window_starts(grid):
    n, timesteps, stride = grid
    assert n_windows(n, timesteps, stride) == len(window_starts(n, timesteps, stride))
    assert n_windows(n, timesteps, stride) == len(naive.window_starts(n, timesteps, stride))


def test_n_windows_is_zero_when_the_series_is_too_short():
    assert n_windows(3, 4, 1) == 0
    assert n_windows(0, 1, 1) == 0


def test_window_starts_errors():
    with pytest.raises(ParameterError, match=r"stride must be >= 1, got 0\."):
        window_starts(10, 3, 0)
    with pytest.raises(ParameterError, match=r"stride must be >= 1, got -2\."):
        window_starts(10, 3, -2)
    with pytest.raises(ParameterError, match=r"timesteps must be >= 1, got 0\."):
        window_starts(10, 0, 1)
    with pytest.raises(DataError, match=r"the series has 4 timesteps, fewer than timesteps=5; .*at most 4"):
        window_starts(4, 5, 1)
    # all of them are lstmae errors and ValueErrors
    with pytest.raises(LstmaeError):
        window_starts(4, 5, 1)
    with pytest.raises(ValueError):
        window_starts(10, 3, 0)


# ------------------------------------------------------------------ gather_windows


@FAST
@given(grids(max_n=40), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_gather_windows_equals_slicing_loop(grid, n_features, seed):
    n, timesteps, stride = grid
    series = np.random.default_rng(seed).normal(size=(n, n_features))
    starts = window_starts(n, timesteps, stride)
    windows = gather_windows(series, starts, timesteps)
    assert windows.shape == (len(starts), timesteps, n_features)
    assert windows.flags.c_contiguous
    np.testing.assert_array_equal(windows, np.array(naive.gather_windows(series, starts, timesteps)))


def test_gather_windows_any_subset_and_order_and_copy():
    series = np.arange(20.0).reshape(10, 2)  # row i = [2i, 2i + 1]
    starts = np.array([6, 0, 3])
    windows = gather_windows(series, starts, 4)
    np.testing.assert_array_equal(windows[0], series[6:10])
    np.testing.assert_array_equal(windows[1], series[0:4])
    np.testing.assert_array_equal(windows[2], series[3:7])
    windows[0, 0, 0] = -1.0  # a copy: the series is untouched
    assert series[6, 0] == 12.0


# ------------------------------------------------------------------ TimestepAccumulator


def _accumulate(n, starts, values, chunks):
    acc = TimestepAccumulator(n, values.shape[2])
    for chunk in chunks:
        acc.add(starts[chunk], values[chunk])
    return acc.mean()


@FAST
@given(grids(max_n=40), st.integers(1, 3), st.integers(0, 2**32 - 1), st.data())
def test_accumulator_mean_equals_naive_average(grid, n_channels, seed, data):
    n, timesteps, stride = grid
    if stride > timesteps:
        stride = timesteps  # keep every timestep covered
    rng = np.random.default_rng(seed)
    starts = window_starts(n, timesteps, stride)
    values = rng.normal(size=(len(starts), timesteps, n_channels))
    # feed the windows in an arbitrary order, split into arbitrary pieces
    order = np.array(data.draw(st.permutations(range(len(starts)))), dtype=np.int64)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(order)), max_size=4)))
    chunks = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)])]
    mean = _accumulate(n, starts, values, chunks)
    expected = naive.timestep_means(n, starts.tolist(), values.tolist())
    assert all(row is not None for row in expected)
    assert mean.shape == (n, n_channels)
    np.testing.assert_allclose(mean, np.array(expected), rtol=1e-12, atol=1e-12)


def test_accumulator_hand_computed_example():
    # windows of length 3 at starts 0, 2: timestep 2 is covered by both
    starts = np.array([0, 2])
    values = np.array([[[1.0], [2.0], [3.0]], [[10.0], [20.0], [30.0]]])
    acc = TimestepAccumulator(5, 1)
    acc.add(starts[1:], values[1:])
    acc.add(starts[:1], values[:1])
    np.testing.assert_allclose(acc.mean()[:, 0], [1.0, 2.0, (3.0 + 10.0) / 2, 20.0, 30.0])
    np.testing.assert_array_equal(acc.counts, [1, 1, 2, 1, 1])


def test_accumulator_float32_values_accumulate_in_float64():
    acc = TimestepAccumulator(1, 1)
    for _ in range(3):
        acc.add(np.array([0]), np.full((1, 1, 1), 0.1, dtype=np.float32))
    assert acc.mean().dtype == np.float64
    assert acc.mean()[0, 0] == pytest.approx(float(np.float32(0.1)), rel=1e-12)


def test_accumulator_raises_on_uncovered_timestep():
    acc = TimestepAccumulator(6, 1)
    acc.add(np.array([0]), np.ones((1, 2, 1)))  # covers 0, 1
    acc.add(np.array([3]), np.ones((1, 3, 1)))  # covers 3, 4, 5; 2 is never covered
    with pytest.raises(RuntimeError, match=r"timestep 2 is covered by no window"):
        acc.mean()


def test_accumulator_raises_when_stride_exceeds_window():
    n, timesteps, stride = 10, 2, 4  # starts 0, 4, 8: timesteps 2, 3, 6, 7 uncovered
    starts = window_starts(n, timesteps, stride)
    acc = TimestepAccumulator(n, 1)
    acc.add(starts, np.zeros((len(starts), timesteps, 1)))
    with pytest.raises(RuntimeError, match=r"timestep 2 is covered"):
        acc.mean()


# ------------------------------------------------------------------ windows -> timesteps round trip


@given(grids(max_n=50), st.integers(1, 3), st.integers(0, 2**32 - 1), st.data())
@FAST
def test_cutting_then_merging_in_any_batches_gives_the_series_back(grid, n_features, seed, data):
    """Windows of a series, merged back per timestep (in batches, as inference does), are the series."""
    n, timesteps, stride = grid
    stride = min(stride, timesteps)  # larger strides leave gaps: refused elsewhere
    series = np.random.default_rng(seed).normal(size=(n, n_features)) * 10.0 ** data.draw(st.integers(-300, 300))
    starts = window_starts(n, timesteps, stride)
    windows = gather_windows(series, starts, timesteps)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(starts)), max_size=4)))
    accumulator = TimestepAccumulator(n, n_features)
    for lo, hi in zip([0, *cuts], [*cuts, len(starts)]):
        if hi > lo:
            accumulator.add(starts[lo:hi], windows[lo:hi])
    np.testing.assert_allclose(accumulator.mean(), series, rtol=1e-12)
    coverage = [sum(1 for s in naive.window_starts(n, timesteps, stride) if s <= i < s + timesteps) for i in range(n)]
    assert accumulator.counts.tolist() == coverage
