"""Tests for lstmae.backends.kernels: the C kernels' activations and how they are built and loaded.

The kernels' LSTM is compared with nn.LSTM in test_recurrence.py and test_fused.py;
here: the kernels' own sigmoid and tanh against float64 references, NaN and
extremes, and the loader (built with the package, missing, stale, switched off).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

import naive
from lstmae.backends import kernels
from lstmae.config import NetworkConfig
from lstmae.backends.network import LSTMAutoencoder
from lstmae.backends.recurrence import lstm_inference
from paths import ROOT

#: A C compiler is on this machine, so setup.py (pip install -e . or build_ext --inplace) builds the kernels.
HAVE_COMPILER = any(shutil.which(name) for name in ((sysconfig.get_config_var("CC") or "cc").split()[:1] + ["cc", "gcc", "clang"]))


@pytest.fixture
def fresh(monkeypatch):
    """No loaded library; the real one is loaded again after."""
    monkeypatch.delenv("LSTMAE_KERNELS", raising=False)
    kernels.reset()
    yield
    kernels.reset()


def activations(values: np.ndarray, vectorised: bool) -> tuple[np.ndarray, np.ndarray]:
    lib = kernels.library()
    x = torch.as_tensor(values, dtype=torch.float32).contiguous()
    y, z = torch.empty_like(x), torch.empty_like(x)
    lib.lstmae_activations(x.numel(), x.data_ptr(), y.data_ptr(), z.data_ptr(), int(vectorised))
    return y.numpy(), z.numpy()


needs_kernels = pytest.mark.skipif(not HAVE_COMPILER, reason="no C compiler: the kernels cannot be built here")


@needs_kernels
def test_kernels_are_built_and_load_where_a_compiler_exists():
    # Without this the C path's tests could skip while only nn.LSTM ever ran.
    assert kernels.library() is not None, (
        f"{kernels.status()['detail']}; build them: pip install -e . (or python setup.py build_ext --inplace)"
    )


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
    with torch.no_grad():
        out = lstm_inference(gx, weight)
    assert torch.isnan(out[1, 2, 5]) and torch.isnan(out[2:, 2]).all()  # then through W_hh into every unit
    assert not torch.isnan(out[:, :2]).any() and not torch.isnan(out[0]).any()


def test_the_library_comes_from_the_installed_package():
    """Never from a cache or the home folder: the file lies next to lstmae/kernels.py."""
    state = kernels.status()
    if kernels.library() is None:
        pytest.skip(f"the kernels are not usable here: {state['detail']}")
    assert Path(state["file"]).parent == Path(kernels.__file__).parent
    assert state["state"] == "built at install" and state["vector_width"] == "avx2"


def test_a_missing_library_falls_back_to_nn_lstm_with_one_warning(fresh, monkeypatch, caplog):
    """A source install without a compiler: one warning at first use, the module runs nn.LSTM."""
    monkeypatch.setattr(kernels, "library_file", lambda: None)
    with caplog.at_level(logging.WARNING, logger="lstmae"):
        assert kernels.library() is None
        assert kernels.library() is None  # decided once: one warning
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith("lstmae: warning:") and "nn.LSTM" in warnings[0]
    assert kernels.status()["state"] == "unavailable" and "not built" in kernels.status()["detail"]
    torch.manual_seed(0)
    model = LSTMAutoencoder(NetworkConfig(1, 6, (4,), "repeat"))
    x = torch.randn(2, 6, 1)
    torch.testing.assert_close(model(x), naive.autoencoder_forward(model, x), rtol=0, atol=0)  # the same nn.LSTM calls


def test_a_library_of_another_abi_is_not_used(fresh, monkeypatch, caplog):
    """A stale build (an upgraded lstmae, the old library left in place) is refused, not called."""
    if kernels.library_file() is None:
        pytest.skip("the kernels are not built here")
    monkeypatch.setattr(kernels, "ABI", kernels.ABI + 1)
    with caplog.at_level(logging.WARNING, logger="lstmae"):
        assert kernels.library() is None
    assert any("ABI" in r.getMessage() for r in caplog.records)
    assert "stale" in kernels.status()["detail"]


def test_lstmae_kernels_0_switches_them_off(fresh, monkeypatch):
    monkeypatch.setenv("LSTMAE_KERNELS", "0")
    assert kernels.library() is None and not kernels.enabled()
    assert kernels.status()["state"] == "off"


@pytest.mark.skipif(not HAVE_COMPILER, reason="no C compiler")
def test_building_without_a_compiler_warns_once_and_succeeds(tmp_path):
    """setup.py's optional extension: CC=false fails both builds (OpenMP and plain), one warning line, exit 0."""
    pytest.importorskip("setuptools")
    root = ROOT
    env = {**os.environ, "CC": "false", "LDSHARED": "false"}
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp_path / "lib"), "--build-temp", str(tmp_path / "tmp")],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("lstmae: warning:")]
    assert len(lines) == 1 and "nn.LSTM" in lines[0]
    assert not list((tmp_path / "lib").rglob("_kernels*"))


# ---------------------------------------------------------------- the nearest-row search
def nearest_squared_loop(queries, reference, positions=None) -> list[float]:
    """For each query: min over the reference rows not within the exclusion (all rows when none is left) of the
    sum of squared differences, in float64."""
    out = []
    for i, q in enumerate(queries.double().tolist()):
        kept = range(len(reference))
        if positions is not None:
            query_at, reference_at, exclusion = positions
            kept = [j for j in kept if abs(int(query_at[i]) - int(reference_at[j])) >= exclusion] or list(kept)
        out.append(min(sum((a - b) ** 2 for a, b in zip(q, reference[j].double().tolist())) for j in kept))
    return out


@needs_kernels
@pytest.mark.parametrize("length", [1, 3, 8, 15, 16, 17, 32, 40, 100])
@pytest.mark.parametrize("exclude", [False, True])
def test_nearest_squared_is_the_loops_minimum(length, exclude):
    """Every length the loops split differently (16 at a time, then 8, then one), clustered rows (so that
    groups are skipped) and scattered ones, with and without an exclusion zone."""
    g = torch.Generator().manual_seed(length)
    centres = 4 * torch.randn(6, length, generator=g)
    reference = torch.cat([centres[torch.randint(0, 6, (150,), generator=g)] + 0.2 * torch.randn(150, length, generator=g),
                           torch.randn(30, length, generator=g)])
    queries = torch.cat([reference[:5] + 1e-3, torch.randn(20, length, generator=g), centres + 0.5])
    positions = None
    if exclude:
        positions = (torch.arange(len(queries)) * 7, torch.arange(len(reference)), 20)
        positions[0][-1] = -1_000  # far from every row: nothing excluded
    got = kernels.nearest_squared(queries, kernels.RowGroups.of(reference), positions)
    expected = nearest_squared_loop(queries, reference, positions)
    np.testing.assert_allclose(got.numpy(), expected, rtol=2e-5, atol=1e-6)
    if not exclude:
        own = kernels.nearest_squared(reference, kernels.RowGroups.of(reference))
        assert float(own.abs().max()) == 0.0  # a row's distance to itself is exactly 0


@needs_kernels
def test_a_query_with_every_row_excluded_gets_its_plain_nearest_and_nan_stays_nan():
    g = torch.Generator().manual_seed(5)
    reference, queries = torch.randn(40, 9, generator=g), torch.randn(3, 9, generator=g)
    queries[2, 4] = float("nan")
    groups = kernels.RowGroups.of(reference)
    everything = (torch.zeros(3, dtype=torch.int64), torch.zeros(40, dtype=torch.int64), 1)  # |0 - 0| < 1: all excluded
    got = kernels.nearest_squared(queries, groups, everything)
    np.testing.assert_allclose(got[:2].numpy(), nearest_squared_loop(queries[:2], reference), rtol=2e-5)
    assert torch.isnan(got[2]) and torch.isnan(kernels.nearest_squared(queries, groups)[2])


@needs_kernels
def test_any_grouping_gives_the_same_bits():
    """The groups decide only which rows are skipped: one group, one row per group and k-means groups give
    the same float32 bits, and every row lies within its group's radius."""
    g = torch.Generator().manual_seed(7)
    reference = torch.cat([torch.randn(200, 24, generator=g) * 0.1 + k for k in range(5)])
    queries = torch.randn(64, 24, generator=g) * 2 + 2
    grouped = kernels.RowGroups.of(reference)

    def manual(order: torch.Tensor, sizes: list[int]) -> kernels.RowGroups:
        offsets = torch.tensor([0, *np.cumsum(sizes)], dtype=torch.int64)
        parts = [reference[order[a:b]].double() for a, b in zip(offsets[:-1], offsets[1:])]
        centres = torch.stack([p.mean(dim=0) for p in parts])
        radii = torch.stack([(p - c).pow(2).sum(dim=1).sqrt().max() for p, c in zip(parts, centres)]) * (1 + 1e-6)
        return kernels.RowGroups(reference, order, offsets, centres.float(), radii.float())

    one = manual(torch.arange(1000), [1000])
    singletons = manual(torch.arange(1000), [1] * 1000)
    shuffled = manual(torch.randperm(1000, generator=g), [100] * 10)
    results = [kernels.nearest_squared(queries, groups) for groups in (grouped, one, singletons, shuffled)]
    for other in results[1:]:
        assert torch.equal(results[0], other)
    members = torch.repeat_interleave(torch.arange(len(grouped.radii)), grouped.offsets.diff())
    spread = (reference[grouped.order].double() - grouped.centres.double()[members]).pow(2).sum(dim=1).sqrt()
    assert (spread <= grouped.radii.double()[members]).all()
    assert len(grouped.radii) == round(1000**0.5) and torch.equal(grouped.order.sort().values, torch.arange(1000))
