"""Tests for lstmae.data.period: dominant period and the automatic window length."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lstmae.data.period import (
    FALLBACK_TIMESTEPS,
    MAX_TIMESTEPS,
    MIN_TIMESTEPS,
    auto_timesteps,
    dominant_period,
)


def sine(period: float, n: int, noise: float = 0.0, seed: int = 0, phase: float = 0.3) -> np.ndarray:
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sin(2 * np.pi * t / period + phase) + noise * rng.standard_normal(n)


@pytest.mark.parametrize("period", [24, 50, 100])
@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_finds_the_period_of_a_sine(period, noise):
    x = sine(period, 12 * period, noise=noise, seed=period)
    found = dominant_period(x)
    assert found is not None and abs(found - period) <= 1
    # 2-D input: the first feature is used, the others are ignored
    other = np.random.default_rng(1).standard_normal(len(x))
    found_2d = dominant_period(np.column_stack([x, other]))
    assert found_2d is not None and abs(found_2d - period) <= 1


def test_first_feature_decides():
    x = np.column_stack([sine(30, 600), sine(70, 600)])
    assert abs(dominant_period(x) - 30) <= 1
    assert abs(dominant_period(x[:, ::-1]) - 70) <= 1


def test_offset_and_amplitude_do_not_matter():
    x = 1000.0 + 50.0 * sine(40, 800)
    assert abs(dominant_period(x) - 40) <= 1


def test_sum_of_sines_gives_the_fundamental():
    t = np.arange(1200)
    x = np.sin(2 * np.pi * t / 60) + 0.5 * np.sin(2 * np.pi * t / 20)
    assert abs(dominant_period(x) - 60) <= 1


@pytest.mark.parametrize("seed", range(5))
def test_white_noise_has_no_period(seed):
    x = np.random.default_rng(seed).standard_normal(2000)
    assert dominant_period(x) is None


@pytest.mark.parametrize("n", [50, 500, 5000])
def test_linear_trend_has_no_period(n):
    assert dominant_period(np.arange(n, dtype=float)) is None
    noisy = 0.5 * np.arange(n) + 3.0 + 0.1 * np.random.default_rng(n).standard_normal(n)
    assert dominant_period(noisy) is None


def test_constant_and_too_short_series_have_no_period():
    assert dominant_period(np.full(100, 4.2)) is None
    assert dominant_period(np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0])) is None  # n < 8


def test_period_longer_than_half_the_series_is_not_found():
    # only lags up to n // 2 are considered
    assert dominant_period(sine(300, 400)) is None


def test_max_lag_bounds_the_search():
    x = sine(100, 2000)
    assert dominant_period(x, max_lag=60) is None
    assert abs(dominant_period(x, max_lag=150) - 100) <= 1


# ------------------------------------------------------------------ auto_timesteps


def test_auto_timesteps_uses_the_period():
    chosen, reason = auto_timesteps(sine(24, 1000)[:, None])
    assert chosen == 24
    assert reason == "dominant period of the data is 24 timesteps; timesteps=24 (one period per window)"


def test_auto_timesteps_raises_short_period_to_the_minimum():
    chosen, reason = auto_timesteps(sine(5, 2000)[:, None])
    assert chosen == MIN_TIMESTEPS == 16
    assert reason == "dominant period of the data is 5 timesteps; timesteps=16 (bounded to [16, 256])"


def test_auto_timesteps_caps_long_period_at_the_maximum():
    chosen, reason = auto_timesteps(sine(400, 4000)[:, None])
    assert chosen == MAX_TIMESTEPS == 256
    assert reason == "dominant period of the data is 400 timesteps; timesteps=256 (bounded to [16, 256])"


def test_auto_timesteps_caps_at_a_quarter_of_the_series():
    # period 50 in 160 steps: at most 160 // 4 = 40
    chosen, reason = auto_timesteps(sine(50, 160)[:, None])
    assert chosen == 40
    # (the biased autocorrelation of 3.2 periods peaks within one step of 50)
    assert re.fullmatch(r"dominant period of the data is (49|50|51) timesteps; timesteps=40 \(bounded to \[16, 40\]\)", reason)


def test_auto_timesteps_short_series_lower_bound_follows_upper():
    # n = 40: upper bound 10 is below MIN_TIMESTEPS, so the range is [10, 10]
    chosen, reason = auto_timesteps(sine(8, 40)[:, None])
    assert chosen == 10
    assert reason.endswith("timesteps=10 (bounded to [10, 10])")


def test_auto_timesteps_fallback_for_noise():
    chosen, reason = auto_timesteps(np.random.default_rng(0).standard_normal((1000, 2)))
    assert chosen == FALLBACK_TIMESTEPS == 32
    assert reason == "no clear period in the data; timesteps=32 (the default)"


def test_auto_timesteps_fallback_bounded_by_a_quarter():
    chosen, _ = auto_timesteps(np.random.default_rng(0).standard_normal((60, 1)))
    assert chosen == 15  # 60 // 4 < 32


@pytest.mark.parametrize("n", [8, 20, 64, 100, 300, 1000, 3000])
@pytest.mark.parametrize("kind", ["noise", "sine7", "sine60", "sine500"])
def test_auto_timesteps_always_within_bounds(n, kind):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) if kind == "noise" else sine(int(kind[4:]), n, noise=0.1, seed=n)
    chosen, reason = auto_timesteps(x[:, None])
    upper = max(2, min(MAX_TIMESTEPS, n // 4))
    assert min(MIN_TIMESTEPS, upper) <= chosen <= upper
    assert f"timesteps={chosen}" in reason
