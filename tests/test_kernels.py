"""Tests for lstmae.kernels: the fused C step kernels, their activations and how they are built and loaded.

The recurrence through the kernels is compared with nn.LSTM in test_recurrence.py;
here: the kernels' own sigmoid and tanh against float64 references, NaN and
extremes, and the loader (cache, no compiler, switched off).
"""

from __future__ import annotations

import logging
import shutil
import subprocess

import numpy as np
import pytest
import torch

from lstmae import kernels
from lstmae.recurrence import lstm_recurrence

HAVE_COMPILER = shutil.which(kernels.compiler()[0]) is not None


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty kernel cache and no loaded library; the real one is restored after."""
    monkeypatch.setenv("LSTMAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LSTMAE_KERNELS", raising=False)
    kernels.reset()
    yield tmp_path / "cache"
    kernels.reset()


def activations(values: np.ndarray, vectorised: bool) -> tuple[np.ndarray, np.ndarray]:
    lib = kernels.library()
    x = torch.as_tensor(values, dtype=torch.float32).contiguous()
    y, z = torch.empty_like(x), torch.empty_like(x)
    lib.lstmae_activations(x.numel(), x.data_ptr(), y.data_ptr(), z.data_ptr(), int(vectorised))
    return y.numpy(), z.numpy()


needs_kernels = pytest.mark.skipif(not HAVE_COMPILER, reason="no C compiler: the kernels cannot be built here")


@needs_kernels
def test_kernels_build_and_load_where_a_compiler_exists():
    # Without this the recurrence tests could pass while only the pure-torch path ever ran.
    assert kernels.library() is not None


@needs_kernels
@pytest.mark.parametrize("vectorised", [True, False])
def test_sigmoid_and_tanh_agree_with_float64_to_float32_rounding(vectorised):
    # Every float32 in +-30 would be too many: a dense grid, the neighbourhood of
    # tanh's switch to its polynomial (|x| = 1/16) and tiny values.
    x = np.concatenate([np.linspace(-30, 30, 60_001), np.linspace(-0.07, 0.07, 14_001), np.geomspace(1e-30, 1e-2, 500)])
    x32 = np.concatenate([x, -x]).astype(np.float32)
    sigmoid, tanh = activations(x32, vectorised)
    exact = x32.astype(np.float64)
    sigmoid_exact, tanh_exact = 1 / (1 + np.exp(-exact)), np.tanh(exact)
    # torch's own float32 sigmoid is off by up to 1.4e-7 relative here, its tanh by 3e-8 absolute.
    assert np.max(np.abs(sigmoid - sigmoid_exact) / sigmoid_exact) < 2.5e-7
    assert np.max(np.abs(tanh - tanh_exact)) < 2.5e-7
    nonzero = tanh_exact != 0
    assert np.max(np.abs(tanh - tanh_exact)[nonzero] / np.abs(tanh_exact[nonzero])) < 2e-6
    assert (tanh[~nonzero] == 0).all()
    assert np.all((0 <= sigmoid) & (sigmoid <= 1)) and np.all(np.abs(tanh) <= 1)


@needs_kernels
def test_far_tails_are_within_float32_of_the_limits():
    x = np.array([-1e30, -200, -88, 88, 200, 1e30], dtype=np.float32)
    sigmoid, tanh = activations(np.tile(x, 2), True)  # 12 values: one 8-lane block and a tail
    np.testing.assert_allclose(sigmoid, np.tile([0, 0, 0, 1, 1, 1], 2), rtol=0, atol=1e-37)
    np.testing.assert_allclose(tanh, np.tile([-1, -1, -1, 1, 1, 1], 2), rtol=0, atol=0)


@needs_kernels
def test_vectorised_and_plain_loops_agree():
    x = np.random.default_rng(0).normal(scale=6, size=4099).astype(np.float32)  # 4099: a tail of 3 after the 8-lane blocks
    (sv, tv), (sp, tp) = activations(x, True), activations(x, False)
    np.testing.assert_allclose(sv, sp, rtol=2e-7, atol=0)
    np.testing.assert_allclose(tv, tp, rtol=0, atol=2e-7)


@needs_kernels
@pytest.mark.parametrize("vectorised", [True, False])
def test_nan_stays_nan_and_infinities_saturate(vectorised):
    x = np.array([np.nan, np.inf, -np.inf] * 3, dtype=np.float32)  # 9 values: one 8-lane block and a tail
    sigmoid, tanh = activations(x, vectorised)
    assert np.isnan(sigmoid[0::3]).all() and np.isnan(tanh[0::3]).all()
    assert (sigmoid[1::3] == 1).all() and (tanh[1::3] == 1).all()
    assert (sigmoid[2::3] < 1e-37).all() and (tanh[2::3] == -1).all()  # e^x is clamped at x = -87


@needs_kernels
def test_a_nan_input_reaches_the_recurrence_output_as_in_torch():
    gx = torch.randn(4, 3, 4 * 9)
    gx[1, 2, 5] = float("nan")
    weight = 0.3 * torch.randn(4 * 9, 9)
    out = lstm_recurrence(gx, weight)
    assert torch.isnan(out[1, 2, 5]) and torch.isnan(out[2:, 2]).all()  # then through W_hh into every unit
    assert not torch.isnan(out[:, :2]).any() and not torch.isnan(out[0]).any()


@needs_kernels
def test_first_use_compiles_into_the_cache_and_later_loads_reuse_it(fresh, monkeypatch):
    assert kernels.library() is not None
    built = list(fresh.iterdir())
    assert len(built) == 1 and built[0].name.startswith("kernels-")  # no temporary file left behind
    kernels.reset()

    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled again although the cache holds the library")

    monkeypatch.setattr(subprocess, "run", no_compiling)
    assert kernels.library() is not None


def test_without_a_compiler_the_recurrence_falls_back_to_torch_with_one_warning(fresh, monkeypatch, caplog):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with caplog.at_level(logging.WARNING, logger="lstmae"):
        assert kernels.library() is None
        assert kernels.library() is None  # decided once: one warning
    warnings = [r for r in caplog.records if "C kernels" in r.getMessage()]
    assert len(warnings) == 1 and "/nonexistent/cc" in warnings[0].getMessage()
    assert not fresh.exists() or not any(fresh.iterdir())  # nothing half-written
    gx, weight = torch.randn(5, 2, 12), 0.3 * torch.randn(12, 3)
    assert lstm_recurrence(gx, weight).shape == (5, 2, 3)


def test_a_failing_compile_also_falls_back(fresh, monkeypatch, caplog):
    monkeypatch.setenv("CC", "false")  # exits 1
    with caplog.at_level(logging.WARNING, logger="lstmae"):
        assert kernels.library() is None
    assert any("C kernels" in r.getMessage() for r in caplog.records)
    assert not fresh.exists() or not any(fresh.iterdir())


def test_lstmae_kernels_0_switches_them_off(fresh, monkeypatch):
    monkeypatch.setenv("LSTMAE_KERNELS", "0")
    assert kernels.library() is None and not kernels.enabled()
    assert not fresh.exists()  # not even compiled


@needs_kernels
def test_a_compiler_without_openmp_builds_single_threaded_loops_with_the_same_bits(fresh, monkeypatch):
    torch.manual_seed(2)
    gx, weight = torch.randn(7, 24, 4 * 10), 0.3 * torch.randn(4 * 10, 10)
    with torch.no_grad():
        threaded = lstm_recurrence(gx, weight)
    kernels.reset()
    monkeypatch.setattr(kernels, "OPENMP", ("-fopenmp-no-such-option",))  # this compile fails; the plain one is used
    lib = kernels.library()
    assert lib is not None and not lib.lstmae_kernels_threaded()
    with torch.no_grad():
        single = lstm_recurrence(gx, weight)
    assert torch.equal(single, threaded)


def test_compiler_choice(monkeypatch):
    import sysconfig

    monkeypatch.setenv("CC", "my-cc -O1")
    assert kernels.compiler() == ["my-cc", "-O1"]  # $CC wins, split like a shell would
    monkeypatch.delenv("CC")
    monkeypatch.setattr(sysconfig, "get_config_var", lambda name: "/nonexistent/x86_64-conda-gcc -pthread")
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/gcc" if name == "gcc" else None)
    assert kernels.compiler() == ["gcc"]  # Python's configured compiler is missing: the next one found


@needs_kernels
def test_a_plain_build_runs_the_per_step_path_and_equals_nn_lstm(fresh, monkeypatch):
    """What a CPU without AVX2 (or not x86) gets: plain C loops, a torch product per step."""
    from torch import nn

    monkeypatch.setattr(kernels, "FLAGS", (*kernels.FLAGS, "-DLSTMAE_PLAIN"))
    lib = kernels.library()
    assert lib is not None and not lib.lstmae_kernels_vectorised()
    torch.manual_seed(4)
    lstm = nn.LSTM(3, 11, batch_first=True)
    x = torch.randn(9, 6, 3)
    expected, _ = lstm(x)
    gx = torch.nn.functional.linear(x.transpose(0, 1), lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0)
    got = lstm_recurrence(gx, lstm.weight_hh_l0)
    assert type(got.grad_fn).__name__.startswith("_FusedRecurrence")
    torch.testing.assert_close(got.transpose(0, 1), expected, rtol=1e-5, atol=1e-6)
    for g, e in zip(torch.autograd.grad(got.sum(), list(lstm.parameters())), torch.autograd.grad(expected.sum(), list(lstm.parameters()))):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


@needs_kernels
def test_an_openmp_build_that_cannot_be_loaded_falls_back_to_the_plain_build(fresh, monkeypatch):
    """E.g. a torch whose bundled OpenMP runtime has another name, and none on the system."""
    import ctypes

    real = ctypes.CDLL
    openmp_build = str(kernels._library_path(kernels.compiler(), (*kernels.FLAGS, *kernels.OPENMP)))

    def cdll(path, *args, **kwargs):
        if str(path) == openmp_build:
            raise OSError("libgomp.so.1: cannot open shared object file")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    lib = kernels.library()
    assert lib is not None and not lib.lstmae_kernels_threaded()
    gx, weight = torch.randn(5, 16, 4 * 9), 0.3 * torch.randn(4 * 9, 9)
    with torch.no_grad():
        assert lstm_recurrence(gx, weight).shape == (5, 16, 9)
