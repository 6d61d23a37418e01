"""Tests for lstmae.recurrence: the hand-written LSTM equals torch's nn.LSTM, values and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import naive
from lstmae.config import NetworkConfig
from lstmae.nn import LSTMAutoencoder
from lstmae import recurrence
from lstmae.recurrence import input_projection, lstm_recurrence


def layer(input_size: int, hidden: int, dtype=torch.float64, seed: int = 0) -> nn.LSTM:
    torch.manual_seed(seed)
    return nn.LSTM(input_size, hidden, batch_first=True).to(dtype)


def grads(output: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    # A weighted sum so that every step and unit gets a different upstream gradient.
    weights = torch.linspace(-1, 2, output.numel(), dtype=output.dtype).view_as(output)
    return list(torch.autograd.grad((output * weights).sum(), inputs))


@pytest.mark.parametrize(("batch", "steps", "inputs", "hidden"), [(1, 1, 1, 1), (3, 7, 2, 5), (4, 12, 6, 9)])
def test_recurrence_equals_nn_lstm_values_and_gradients(batch, steps, inputs, hidden):
    lstm = layer(inputs, hidden)
    x = torch.randn(batch, steps, inputs, dtype=torch.float64, requires_grad=True)
    expected, _ = lstm(x)  # (B, T, H)
    got = lstm_recurrence(input_projection(lstm, x.transpose(0, 1)), lstm.weight_hh_l0).transpose(0, 1)
    assert got.shape == expected.shape == (batch, steps, hidden)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    params = [x, *lstm.parameters()]
    for g, e in zip(grads(got, params), grads(expected, params)):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def test_constant_input_projected_once_equals_the_repeated_input():
    lstm = layer(4, 6)
    z = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    expected, _ = lstm(z.unsqueeze(1).expand(-1, 9, -1))  # RepeatVector(9)
    once = input_projection(lstm, z)  # (B, 4H): computed once, not 9 times
    got = lstm_recurrence(once.expand(9, -1, -1), lstm.weight_hh_l0).transpose(0, 1)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    params = [z, *lstm.parameters()]
    for g, e in zip(grads(got, params), grads(expected, params)):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def test_gradcheck_against_finite_differences():
    gx = torch.randn(5, 3, 8, dtype=torch.float64, requires_grad=True)
    weight = (0.5 * torch.randn(8, 2, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lstm_recurrence, (gx, weight))


def test_only_the_last_step_used_still_gives_exact_gradients():
    # The encoder of the repeat design uses only h_T: every other step's gradient is zero.
    lstm = layer(2, 5)
    x = torch.randn(3, 6, 2, dtype=torch.float64, requires_grad=True)
    expected = lstm(x)[0][:, -1]
    got = lstm_recurrence(input_projection(lstm, x.transpose(0, 1)), lstm.weight_hh_l0)[-1]
    params = [x, *lstm.parameters()]
    for g, e in zip(grads(got, params), grads(expected, params)):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


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


def test_the_kernel_is_not_trivially_equal():
    """The comparison above can fail: a wrong recurrent weight changes values and gradients."""
    lstm = layer(3, 4)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    expected, _ = lstm(x)
    wrong = lstm_recurrence(input_projection(lstm, x.transpose(0, 1)), lstm.weight_hh_l0 * 1.01).transpose(0, 1)
    assert not torch.allclose(wrong, expected, rtol=1e-6, atol=1e-6)


@pytest.fixture(params=["whole", "steps", "torch"])
def float32_path(request, monkeypatch):
    """float32 through each implementation: the C kernels running whole loops ("whole",
    AVX2 CPUs), a torch product and a C call per step ("steps", other CPUs) and the
    pure-torch loops ("torch", no compiler)."""
    from lstmae import kernels

    if request.param == "torch":
        monkeypatch.setenv("LSTMAE_KERNELS", "0")
    elif kernels.library() is None:
        pytest.skip("no C compiler: the fused kernels cannot be built here")
    elif request.param == "steps":
        monkeypatch.setattr(recurrence, "WHOLE_LOOPS", False)
    elif not kernels.library().lstmae_kernels_vectorised():
        pytest.skip("no AVX2: the whole loops do not run on this CPU")
    yield request.param


@pytest.mark.parametrize("expanded", [False, True])
def test_inference_path_equals_the_training_path(float32_path, expanded):
    """Without gradients the recurrence reuses one small buffer per step: same arithmetic, so the same bits."""
    torch.manual_seed(3)
    weight = 0.4 * torch.randn(4 * 6, 6)
    gx = torch.randn(5, 4 * 6).expand(9, -1, -1) if expanded else torch.randn(9, 5, 4 * 6)
    trained = lstm_recurrence(gx, weight.clone().requires_grad_())  # the autograd Function
    with torch.inference_mode():
        inferred = lstm_recurrence(gx, weight)
    with torch.no_grad():
        untracked = lstm_recurrence(gx, weight)
    assert torch.equal(inferred, trained.detach()) and torch.equal(untracked, inferred)
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


@pytest.mark.parametrize(("batch", "steps", "inputs", "hidden", "repeat"),
                         [(1, 1, 1, 1, False), (3, 7, 2, 5, False), (4, 12, 6, 19, False), (32, 40, 1, 16, False), (5, 9, 4, 11, True)])
def test_float32_recurrence_equals_float64_nn_lstm(float32_path, batch, steps, inputs, hidden, repeat):
    """Both float32 paths against float64 nn.LSTM: values to 1e-5, gradients to 1e-4 relative to their scale.

    Hidden sizes 1, 5, 11 and 19 exercise the kernels' tail loop after their 8-unit blocks; 16 none.
    """
    lstm64 = layer(inputs, hidden)
    x64 = torch.randn(batch, 1 if repeat else steps, inputs, dtype=torch.float64)
    if repeat:
        x64 = x64.expand(-1, steps, -1)
    expected, _ = lstm64(x64)
    lstm32 = layer(inputs, hidden, dtype=torch.float32)
    x32 = x64.detach().float()
    if repeat:  # the projection computed once and expanded over the steps, as the repeat decoder does
        gx = input_projection(lstm32, x32[:, 0]).expand(steps, -1, -1)
    else:
        gx = input_projection(lstm32, x32.transpose(0, 1))
    got = lstm_recurrence(gx, lstm32.weight_hh_l0).transpose(0, 1)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)
    for g, e in zip(grads(got, list(lstm32.parameters())), grads(expected, list(lstm64.parameters()))):
        torch.testing.assert_close(g.double(), e, rtol=1e-4, atol=1e-4 * float(e.abs().max()))


@pytest.mark.parametrize(("batch", "hidden"), [(32, 100), (19, 7), (256, 16)])
def test_whole_loops_give_the_same_bits_on_any_number_of_threads(batch, hidden):
    """Each row's arithmetic does not depend on how rows are split between threads."""
    from lstmae import kernels

    lib = kernels.library()
    if lib is None or not (lib.lstmae_kernels_vectorised() and lib.lstmae_kernels_threaded()):
        pytest.skip("the whole C loops (AVX2, OpenMP) do not run here")
    torch.manual_seed(7)
    gx = torch.randn(6, batch, 4 * hidden, requires_grad=True)
    weight = (0.3 * torch.randn(4 * hidden, hidden)).requires_grad_()
    before, results = torch.get_num_threads(), []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            out = lstm_recurrence(gx, weight)
            with torch.no_grad():
                inferred = lstm_recurrence(gx, weight)
            results.append((out.detach(), inferred, *grads(out, [gx, weight])))
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


def test_fused_and_torch_paths_agree_and_the_fused_one_is_taken(monkeypatch):
    """The two float32 paths compute the same function to float32 rounding, yet are not the same code."""
    from lstmae import kernels

    if kernels.library() is None:
        pytest.skip("no C compiler: the fused kernels cannot be built here")
    torch.manual_seed(5)
    gx, weight = torch.randn(20, 8, 4 * 13, requires_grad=True), (0.3 * torch.randn(4 * 13, 13)).requires_grad_()
    fused = lstm_recurrence(gx, weight)
    assert type(fused.grad_fn).__name__.startswith("_FusedRecurrence")
    fused_grads = grads(fused, [gx, weight])
    monkeypatch.setenv("LSTMAE_KERNELS", "0")
    plain = lstm_recurrence(gx, weight)
    assert type(plain.grad_fn).__name__.startswith("_Recurrence")
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)
    assert not torch.equal(fused, plain)  # different arithmetic (C exp against torch's), so not bit-equal
    for f, p in zip(fused_grads, grads(plain, [gx, weight])):
        torch.testing.assert_close(f, p, rtol=1e-4, atol=1e-5)
