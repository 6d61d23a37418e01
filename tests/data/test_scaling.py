"""Tests for lstmae.data.scaling: per-feature standardisation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import naive
from lstmae.data.scaling import fit_scaler, inverse_transform, transform

FAST = settings(max_examples=60, deadline=None)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_ordinary_data_matches_numpy_mean_std():
    rng = np.random.default_rng(0)
    x = rng.normal(loc=[5.0, -3.0, 100.0], scale=[2.0, 0.1, 50.0], size=(200, 3))
    mean, scale = fit_scaler(x)
    assert mean.dtype == np.float64 and scale.dtype == np.float64
    assert mean.shape == scale.shape == (3,)
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scale, x.std(axis=0), rtol=1e-12)  # population std (ddof=0)


def test_hand_computed():
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    mean, scale = fit_scaler(x)
    # feature 0: mean 3, deviations -2, 0, 2 -> variance 8/3; feature 1 constant
    np.testing.assert_allclose(mean, [3.0, 10.0])
    np.testing.assert_allclose(scale, [np.sqrt(8 / 3), 1.0])
    z = transform(x, mean, scale)
    assert z.dtype == np.float32 and z.shape == x.shape
    np.testing.assert_allclose(z[:, 0], np.array([-2.0, 0.0, 2.0]) / np.sqrt(8 / 3), rtol=1e-6)


@FAST
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 3)), elements=finite))
def test_fit_scaler_matches_naive(x):
    mean, scale = fit_scaler(x)
    ref_mean, ref_scale = naive.fit_scaler(x.tolist())
    magnitude = np.abs(x).max(axis=0)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-9, atol=1e-9 * (magnitude.max() + 1))
    for f, (got, ref, big) in enumerate(zip(scale, ref_scale, magnitude)):
        std = float(np.std(x[:, f] / big)) * big if big > 0 else 0.0  # unit-scaled: no underflow
        if std > 2e-12 * big:  # clearly a spread: the standard deviation
            assert got == pytest.approx(ref, rel=1e-7)
        elif std < 0.5e-12 * big or big == 0:  # clearly constant: 1
            assert got == ref == 1.0
        # (between the two, rounding decides which side of the rule a feature falls)
    assert np.all(scale > 0)


@FAST
@given(arrays(np.float64, st.tuples(st.integers(2, 20), st.integers(1, 3)), elements=finite))
def test_inverse_of_transform_is_identity(x):
    mean, scale = fit_scaler(x)
    z = transform(x, mean, scale)
    back = inverse_transform(z, mean, scale)
    assert back.dtype == np.float64 and back.shape == x.shape
    # z is float32: relative error ~6e-8 of the standardised value, i.e. of `scale`
    np.testing.assert_allclose(back, x, rtol=1e-6, atol=1e-6 * float(np.max(scale)))


@FAST
@given(
    arrays(np.float64, st.tuples(st.integers(2, 20), st.integers(1, 3)), elements=finite),
)
def test_transform_matches_naive_loop(x):
    mean, scale = fit_scaler(x)
    z = transform(x, mean, scale)
    for i in range(x.shape[0]):
        for f in range(x.shape[1]):
            expected = (float(x[i, f]) - float(mean[f])) / float(scale[f])
            assert z[i, f] == pytest.approx(expected, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("value", [0.0, 7.5, -3.25, 1e-300, 1e300, -1e308])
def test_constant_feature_has_scale_one_and_transforms_to_zero(value):
    x = np.column_stack([np.full(50, value), np.linspace(0.0, 1.0, 50)])
    mean, scale = fit_scaler(x)
    assert mean[0] == value
    assert scale[0] == 1.0
    z = transform(x, mean, scale)
    assert not np.isnan(z).any()
    np.testing.assert_array_equal(z[:, 0], 0.0)
    np.testing.assert_array_equal(inverse_transform(z, mean, scale)[:, 0], value)


def test_negligible_spread_counts_as_constant():
    x = np.array([[1.0], [1.0 + 1e-15], [1.0]])  # std ~5e-16 <= 1e-12 * magnitude
    _, scale = fit_scaler(x)
    assert scale[0] == 1.0
    x = np.array([[1.0], [1.0 + 1e-9], [1.0]])  # std ~5e-10 > 1e-12: a real spread
    _, scale = fit_scaler(x)
    assert scale[0] == pytest.approx(np.std([1.0, 1.0 + 1e-9, 1.0]), rel=1e-6)


@pytest.mark.parametrize(
    "column",
    [
        [1e308, 1e308, 1e308, -1e308],
        [1.7e308, -1.7e308, 1.7e308],
        [1e308] * 9 + [-1e308],
        [-1.5e308, 1.5e308, 1.5e308, 1.5e308, 1.5e308],
    ],
)
def test_values_near_float_max_stay_finite(column):
    x = np.array(column)[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings either
        mean, scale = fit_scaler(x)
        assert np.isfinite(mean).all() and np.isfinite(scale).all()
        # mean and std computed exactly from the ratios (everything / 1e308 is moderate)
        big = np.abs(x).max()
        np.testing.assert_allclose(mean, (x / big).mean() * big, rtol=1e-12)
        np.testing.assert_allclose(scale, (x / big).std() * big, rtol=1e-12)
        z = transform(x, mean, scale)
        assert np.isfinite(z).all()
        # the standardised values of a finite sample are bounded by sqrt(n - 1)
        assert np.abs(z).max() <= np.sqrt(len(column) - 1) + 1e-5
        np.testing.assert_allclose(z.mean(), 0.0, atol=1e-6)
        back = inverse_transform(z, mean, scale)
        assert np.isfinite(back).all()
        np.testing.assert_allclose(back, x, rtol=1e-6)


def test_three_d_input_pools_leading_axes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 7, 2)) * [1.0, 10.0] + [0.0, 3.0]
    mean, scale = fit_scaler(x)
    flat = x.reshape(-1, 2)
    assert mean.shape == (2,)
    np.testing.assert_allclose(mean, flat.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scale, flat.std(axis=0), rtol=1e-12)
    z = transform(x, mean, scale)
    assert z.shape == x.shape
    np.testing.assert_allclose(z.reshape(-1, 2).mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(z.reshape(-1, 2).std(axis=0), 1.0, atol=1e-5)


def test_transform_uses_given_statistics_on_new_data():
    mean, scale = np.array([1.0, -2.0]), np.array([2.0, 0.5])
    z = transform(np.array([[3.0, -2.0], [1.0, -1.0]]), mean, scale)
    np.testing.assert_array_equal(z, np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32))
    back = inverse_transform(np.array([[1.0, 0.0], [0.0, 2.0]]), mean, scale)
    np.testing.assert_array_equal(back, [[3.0, -2.0], [1.0, -1.0]])


# ------------------------------------------------------------------ any magnitude, zero spread

any_finite = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 5e-324, 1e308, -1.7976931348623157e308]),
)


@given(arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 3)), elements=any_finite))
@FAST
def test_any_finite_input_scales_to_finite_standard_values(x):
    """Zero, subnormal, constant and near-overflow columns: finite statistics, no warnings, z in the documented range."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, scale = fit_scaler(x)
        z = transform(x, mean, scale)
    assert np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()
    assert np.isfinite(z).all()
    expected_mean, expected_scale = naive.fit_scaler(x.tolist())
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(scale, expected_scale, rtol=1e-9, atol=1e-300)
    # A standardised sample of n values lies within sqrt(n - 1) of zero; a constant one is zero.
    assert np.abs(z).max() <= np.sqrt(max(len(x) - 1, 1)) + 1e-4


@given(arrays(np.float64, st.tuples(st.integers(2, 12), st.integers(1, 2)), elements=finite), st.integers(-900, 900))
@FAST
def test_standardised_values_do_not_depend_on_the_unit(x, power):
    """Multiplying the data by 2**k (exact in binary, as far as float64 allows) leaves z unchanged."""
    factor = 2.0**power
    with np.errstate(over="ignore", under="ignore"):
        scaled = x * factor
    # The factor itself over- or underflowing this sample is not the property under test.
    assume(np.isfinite(scaled).all() and np.array_equal(scaled / factor, x))
    z = transform(x, *fit_scaler(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z_scaled = transform(scaled, *fit_scaler(scaled))
    np.testing.assert_allclose(z_scaled, z, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("value", [1e308, -1.7976931348623157e308, 1e30, -5e7])
def test_values_far_outside_the_training_range_are_clipped_not_infinite(value):
    mean, scale = fit_scaler(np.sin(np.arange(50.0))[:, None])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = transform(np.array([[value], [0.0]]), mean, scale)
    assert z[0, 0] == np.float32(np.sign(value) * 1e6)
    np.testing.assert_allclose(z[1, 0], (0.0 - mean[0]) / scale[0], rtol=1e-6)


def test_a_mean_whose_values_cancel_is_summed_exactly():
    """Found by hypothesis: 1, -max, +max. The float sum of 1/max - 1 + 1 is 0; the mean is 1/3."""
    x = np.array([[1.0], [-1.7976931348623157e308], [1.7976931348623157e308]])
    mean, _ = fit_scaler(x)
    assert mean[0] == pytest.approx(1 / 3, rel=1e-12)
