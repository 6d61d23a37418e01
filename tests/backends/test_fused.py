"""Tests for lstmae.backends.fused: the whole autoencoder's training pass in C equals the nn.LSTM path (values and gradients)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import naive
from lstmae.backends import fused
from lstmae.backends import kernels
from lstmae.config import NetworkConfig
from lstmae.backends.network import LSTMAutoencoder


@pytest.fixture(autouse=True)
def _needs_the_pass():
    if kernels.library() is None:
        pytest.skip("the fused pass needs the C kernels (built at install) on an AVX2 CPU")


def torch_path(monkeypatch, on: bool = True) -> None:
    """Route the module through torch's nn.LSTM (path a) instead of the C path."""
    if on:
        monkeypatch.setenv("LSTMAE_KERNELS", "0")
    else:
        monkeypatch.delenv("LSTMAE_KERNELS", raising=False)


def weighted(output: torch.Tensor) -> torch.Tensor:
    """A loss under which every step, feature and row gets a different upstream gradient."""
    weights = torch.linspace(-1, 2, output.numel(), dtype=output.dtype).view_as(output)
    return (output * weights).sum()


def forward_backward(model: LSTMAutoencoder, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    y = model(x)
    weighted(y).backward()
    return y.detach(), [p.grad.clone() for p in model.parameters()]


def taken(y: torch.Tensor) -> bool:
    """Whether y came out of the fused pass (its reshape's input is the pass's output)."""
    return any(type(node).__name__ == "_PassBackward" for node, _ in y.grad_fn.next_functions if node is not None)


CASES = [
    # (features, timesteps, units, architecture, frame, batch)
    (1, 40, (100,), "repeat", 1, 32),  # the seed configuration
    (2, 10, (7,), "repeat", 1, 4),  # hidden 7: the 8- and 16-lane tails everywhere
    (2, 10, (8, 4, 3), "repeat", 1, 19),  # three layers each way, an odd batch
    (3, 12, (20, 9), "sequence", 1, 40),  # three row blocks between threads
    (3, 12, (16,), "repeat", 4, 5),  # framed: 4 timesteps per step, 12 values a step
    (1, 6, (33,), "sequence", 2, 1),  # one window
    (5, 1, (6,), "repeat", 1, 3),  # a single step: no recurrent weight gradient at all
]


@pytest.mark.parametrize(("features", "timesteps", "units", "architecture", "frame", "batch"), CASES)
def test_fused_pass_equals_float64_reference_like_the_layers_do(features, timesteps, units, architecture, frame, batch):
    """Values and gradients within float32 rounding of the float64 unoptimised path, as close as the layers' float32 path."""
    torch.manual_seed(3)
    config = NetworkConfig(features, timesteps, units, architecture, frame=frame)
    model = LSTMAutoencoder(config)
    x = torch.randn(batch, timesteps, features)
    y, grads = forward_backward(model, x)
    assert taken(model(x))
    reference = LSTMAutoencoder(config).double()
    reference.load_state_dict(model.state_dict())
    expected = naive.autoencoder_forward(reference, x.double())
    weighted(expected).backward()
    scale = float(expected.detach().abs().max())
    torch.testing.assert_close(y.double(), expected.detach(), rtol=1e-5, atol=1e-6 * scale)
    for (name, p), g in zip(reference.named_parameters(), grads):
        torch.testing.assert_close(g.double(), p.grad, rtol=1e-4, atol=1e-5 * float(p.grad.abs().max()) + 1e-7, msg=name)


@pytest.mark.parametrize(("features", "timesteps", "units", "architecture", "frame", "batch"), CASES[1:4])
def test_fused_and_nn_lstm_paths_agree_and_differ_only_in_rounding(monkeypatch, features, timesteps, units, architecture, frame, batch):
    torch.manual_seed(4)
    model = LSTMAutoencoder(NetworkConfig(features, timesteps, units, architecture, frame=frame))
    x = torch.randn(batch, timesteps, features)
    y_fused, g_fused = forward_backward(model, x)
    torch_path(monkeypatch)
    assert not taken(model(x))
    y_layers, g_layers = forward_backward(model, x)
    torch.testing.assert_close(y_fused, y_layers, rtol=1e-5, atol=1e-6)
    for a, b in zip(g_fused, g_layers):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_windows_longer_than_the_configured_timesteps(monkeypatch):
    """The module accepts any window length (a multiple of the frame); so does the fused pass."""
    torch.manual_seed(9)
    model = LSTMAutoencoder(NetworkConfig(2, 8, (6,), "repeat", frame=2))
    for timesteps in (8, 14):
        x = torch.randn(3, timesteps, 2)
        y_fused, g_fused = forward_backward(model, x)
        torch_path(monkeypatch)
        y_layers, g_layers = forward_backward(model, x)
        torch_path(monkeypatch, on=False)
        assert y_fused.shape == (3, timesteps, 2)
        torch.testing.assert_close(y_fused, y_layers, rtol=1e-5, atol=1e-6)
        for a, b in zip(g_fused, g_layers):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_a_wrong_weight_is_caught():
    """The comparisons above can fail: a perturbed recurrent weight after the forward changes the gradients."""
    torch.manual_seed(5)
    model = LSTMAutoencoder(NetworkConfig(2, 10, (7,), "repeat"))
    x = torch.randn(4, 10, 2)
    _, good = forward_backward(model, x)
    with torch.no_grad():
        model.decoder.layers[0].weight_hh_l0.mul_(1.01)
    _, other = forward_backward(model, x)
    assert not torch.allclose(good[0], other[0], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("batch", "units", "features"),
    # 2 features: the narrow-input and few-row output gradients (kernels.c narrow_grad, few_rows_grad);
    # 6: the packed products (gemm_tn) for those too
    [(32, (100,), 2), (19, (7, 3), 2), (64, (16,), 2), (24, (9,), 6), (40, (20,), 5)],
)
def test_same_bits_on_any_number_of_threads(batch, units, features):
    """Rows are split between threads, each weight gradient element is summed by one thread in one order."""
    if not kernels.library().lstmae_kernels_threaded():
        pytest.skip("the kernels were built without OpenMP")
    torch.manual_seed(6)
    model = LSTMAutoencoder(NetworkConfig(features, 12, units, "repeat"))
    x = torch.randn(batch, 12, features)
    before, results = torch.get_num_threads(), []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            y, grads = forward_backward(model, x)
            results.append([y, *grads])
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


def test_taken_only_where_it_applies():
    torch.manual_seed(7)
    model = LSTMAutoencoder(NetworkConfig(1, 8, (5,), "repeat"))
    x = torch.randn(3, 8, 1)
    assert fused.applies(model, x) and taken(model(x))
    with torch.no_grad():  # inference: the layers
        assert not fused.applies(model, x)
    assert not fused.applies(model, x.double())
    assert not fused.applies(model, x.clone().requires_grad_())  # a gradient wrt x: the layers give it
    frozen = LSTMAutoencoder(NetworkConfig(1, 8, (5,), "repeat")).requires_grad_(False)
    assert not fused.applies(frozen, x)
    assert not fused.applies(model.double(), x.double())


def test_two_passes_before_their_backwards_each_get_their_own_buffers():
    """Gradient accumulation: the second forward must not overwrite what the first one's backward reads."""
    torch.manual_seed(8)
    model = LSTMAutoencoder(NetworkConfig(2, 9, (6,), "sequence"))
    a, b = torch.randn(5, 9, 2), torch.randn(5, 9, 2)
    _, grads_a = forward_backward(model, a)
    _, grads_b = forward_backward(model, b)
    model.zero_grad()
    ya, yb = model(a), model(b)
    (weighted(ya) + weighted(yb)).backward()
    for together, one, two in zip(model.parameters(), grads_a, grads_b):
        torch.testing.assert_close(together.grad, one + two, rtol=1e-5, atol=1e-6)


def test_a_second_backward_says_what_to_do():
    model = LSTMAutoencoder(NetworkConfig(1, 6, (4,), "repeat"))
    loss = weighted(model(torch.randn(2, 6, 1)))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="differentiated once"):
        loss.backward()


def test_wrong_feature_count_gives_the_layers_message():
    model = LSTMAutoencoder(NetworkConfig(2, 6, (4,), "repeat"))
    with pytest.raises(RuntimeError, match="Expected 2, got 3"):
        model(torch.randn(2, 6, 3))


def test_pooled_buffers_are_released():
    model = LSTMAutoencoder(NetworkConfig(1, 6, (4,), "repeat"))
    weighted(model(torch.randn(2, 6, 1))).backward()
    assert fused._pool
    fused.release()
    assert not fused._pool


@pytest.mark.filterwarnings("ignore:mean-collapse")
def test_fit_through_the_fused_pass_and_through_nn_lstm_learns_the_same(monkeypatch):
    """Two epochs of the estimator's training: the same losses to float32 rounding grown over 2 epochs."""
    import lstmae

    rng = np.random.default_rng(0)
    series = np.sin(np.arange(600) / 5.0) + 0.05 * rng.standard_normal(600)
    histories = []
    for kernels_on in (True, False):
        torch_path(monkeypatch, on=not kernels_on)
        model = lstmae.LSTMAutoencoder(timesteps=20, units=8, epochs=2, batch_size=16, random_state=0, verbose=0)
        histories.append(model.fit(series).history_["loss"])
    assert np.allclose(histories[0], histories[1], rtol=1e-3)
    assert histories[0][-1] < histories[0][0]  # it did learn
