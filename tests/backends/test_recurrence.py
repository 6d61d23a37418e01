"""Tests for lstmae.backends.recurrence: the C inference loop equals torch's nn.LSTM; the module's two paths agree."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import naive
from lstmae.backends import kernels
from lstmae.config import NetworkConfig
from lstmae.backends.network import LSTMAutoencoder
from lstmae.backends.recurrence import input_projection, lstm_inference


def layer(input_size: int, hidden: int, dtype=torch.float64, seed: int = 0) -> nn.LSTM:
    torch.manual_seed(seed)
    return nn.LSTM(input_size, hidden, batch_first=True).to(dtype)


def grads(output: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    # A weighted sum so that every step and unit gets a different upstream gradient.
    weights = torch.linspace(-1, 2, output.numel(), dtype=output.dtype).view_as(output)
    return list(torch.autograd.grad((output * weights).sum(), inputs))


needs_kernels = pytest.mark.skipif(kernels.library() is None, reason="the C kernels are not built (or no AVX2) here")


@pytest.mark.parametrize("architecture", ["repeat", "sequence"])
@pytest.mark.parametrize("units", [(7,), (8, 4, 3)])
def test_autoencoder_equals_the_unoptimised_path(architecture, units):
    """float64: equal to 1e-12; float32 (what training uses): to 1e-5 on values and gradients."""
    for dtype, tol in [(torch.float64, 1e-10), (torch.float32, 1e-5)]:
        torch.manual_seed(1)
        model = LSTMAutoencoder(NetworkConfig(2, 10, units, architecture)).to(dtype)
        x = torch.randn(4, 10, 2, dtype=dtype)
        got, expected = model(x), naive.autoencoder_forward(model, x)
        torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
        params = list(model.parameters())
        for (name, _), g, e in zip(model.named_parameters(), grads(got, params), grads(expected, params)):
            torch.testing.assert_close(g, e, rtol=tol, atol=tol, msg=name)
        with torch.no_grad():  # inference: the C loops on a CPU with float32
            torch.testing.assert_close(model(x), expected.detach(), rtol=tol, atol=tol)


@needs_kernels
def test_the_kernel_is_not_trivially_equal():
    """The comparisons here can fail: a wrong recurrent weight changes the values."""
    lstm = layer(3, 4, dtype=torch.float32)
    x = torch.randn(2, 5, 3)
    expected, _ = lstm(x)
    with torch.no_grad():
        wrong = lstm_inference(input_projection(lstm, x.transpose(0, 1)), lstm.weight_hh_l0 * 1.01).transpose(0, 1)
    assert not torch.allclose(wrong, expected, rtol=1e-6, atol=1e-6)


@needs_kernels
@pytest.mark.parametrize("expanded", [False, True])
def test_inference_equals_the_lstm_equations(expanded):
    torch.manual_seed(3)
    weight = 0.4 * torch.randn(4 * 6, 6)
    gx = torch.randn(5, 4 * 6).expand(9, -1, -1) if expanded else torch.randn(9, 5, 4 * 6)
    with torch.inference_mode():
        inferred = lstm_inference(gx, weight)
    with torch.no_grad():
        untracked = lstm_inference(gx, weight)
    assert torch.equal(untracked, inferred)
    torch.testing.assert_close(inferred, naive_lstm(gx, weight), rtol=1e-5, atol=1e-6)


def naive_lstm(gx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The LSTM equations step by step, with tanh: (T, B, 4H) -> (T, B, H)."""
    hidden = weight.shape[1]
    h = c = torch.zeros(gx.shape[1], hidden)
    out = []
    for gates in gx:
        i, f, g, o = (gates + h @ weight.t()).split(hidden, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        out.append(h)
    return torch.stack(out)


@needs_kernels
@pytest.mark.parametrize(("batch", "steps", "inputs", "hidden", "repeat"),
                         [(1, 1, 1, 1, False), (3, 7, 2, 5, False), (4, 12, 6, 19, False), (32, 40, 1, 16, False), (5, 9, 4, 11, True)])
def test_float32_inference_equals_float64_nn_lstm(batch, steps, inputs, hidden, repeat):
    """The C loop in float32 against float64 nn.LSTM: values to 1e-5.

    Hidden sizes 1, 5, 11 and 19 exercise the kernels' tail loop after their 8-unit blocks; 16 none.
    """
    lstm64 = layer(inputs, hidden)
    x64 = torch.randn(batch, 1 if repeat else steps, inputs, dtype=torch.float64)
    if repeat:
        x64 = x64.expand(-1, steps, -1)
    expected, _ = lstm64(x64)
    lstm32 = layer(inputs, hidden, dtype=torch.float32)
    x32 = x64.detach().float()
    with torch.no_grad():
        if repeat:  # the projection computed once and expanded over the steps, as the repeat decoder does
            gx = input_projection(lstm32, x32[:, 0]).expand(steps, -1, -1)
        else:
            gx = input_projection(lstm32, x32.transpose(0, 1))
        got = lstm_inference(gx, lstm32.weight_hh_l0).transpose(0, 1)
    torch.testing.assert_close(got.double(), expected.detach(), rtol=1e-5, atol=1e-5)


@needs_kernels
@pytest.mark.parametrize(("batch", "hidden"), [(32, 100), (19, 7), (256, 16)])
def test_inference_gives_the_same_bits_on_any_number_of_threads(batch, hidden):
    """Each row's arithmetic does not depend on how rows are split between threads."""
    if not kernels.library().lstmae_kernels_threaded():
        pytest.skip("the kernels were built without OpenMP")
    torch.manual_seed(7)
    gx = torch.randn(6, batch, 4 * hidden)
    weight = 0.3 * torch.randn(4 * hidden, hidden)
    before, results = torch.get_num_threads(), []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            with torch.no_grad():
                results.append(lstm_inference(gx, weight))
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        assert torch.equal(results[0], other)


@needs_kernels
def test_c_and_nn_lstm_inference_agree_and_are_not_the_same_code(monkeypatch):
    """The module's two float32 inference paths compute the same function to float32 rounding."""
    torch.manual_seed(5)
    model = LSTMAutoencoder(NetworkConfig(2, 20, (13, 5), "repeat"))
    x = torch.randn(8, 20, 2)
    with torch.no_grad():
        c_path = model(x)
        monkeypatch.setenv("LSTMAE_KERNELS", "0")
        torch_path = model(x)
    torch.testing.assert_close(c_path, torch_path, rtol=1e-5, atol=1e-6)
    assert not torch.equal(c_path, torch_path)  # different arithmetic (C exp against oneDNN's), so not bit-equal
