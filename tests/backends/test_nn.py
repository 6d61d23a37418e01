"""Tests for lstmae.backends.network: shapes, parameter counts, the repeat design, gradients."""

from __future__ import annotations

import pytest
import torch

import naive
from lstmae.config import NetworkConfig
from lstmae.backends.network import LSTMAutoencoder, LSTMStack, count_parameters

B, T, F = 3, 5, 2


def net(units=(8, 4), architecture="repeat", n_features=F, timesteps=T, seed=0) -> LSTMAutoencoder:
    torch.manual_seed(seed)
    return LSTMAutoencoder(NetworkConfig(n_features, timesteps, tuple(units), architecture))


@pytest.mark.parametrize("architecture", ["repeat", "sequence"])
@pytest.mark.parametrize("units", [(4,), (64, 16), (8, 4, 2)])
def test_output_and_latent_shapes(architecture, units):
    model = net(units, architecture)
    x = torch.randn(B, T, F)
    out = model(x)
    assert out.shape == (B, T, F)
    assert out.dtype == torch.float32
    z = model.encode(x)
    if architecture == "repeat":
        assert z.shape == (B, units[-1])
    else:
        assert z.shape == (B, T, units[-1])
    assert model.decode(z, T).shape == (B, T, F)
    assert model.config.latent == units[-1]


@pytest.mark.parametrize("architecture", ["repeat", "sequence"])
def test_other_timesteps_and_batch_sizes(architecture):
    model = net((6, 3), architecture)
    for batch, steps in [(1, 1), (1, 7), (4, 2)]:
        assert model(torch.randn(batch, steps, F)).shape == (batch, steps, F)


def test_layer_sizes_mirror_the_encoder():
    model = net((8, 4, 2), n_features=3)
    enc = [(l.input_size, l.hidden_size) for l in model.encoder.layers]
    dec = [(l.input_size, l.hidden_size) for l in model.decoder.layers]
    assert enc == [(3, 8), (8, 4), (4, 2)]
    assert dec == [(2, 2), (2, 4), (4, 8)]
    assert (model.output_layer.in_features, model.output_layer.out_features) == (8, 3)
    for layer in [*model.encoder.layers, *model.decoder.layers]:
        assert layer.batch_first and layer.num_layers == 1 and not layer.bidirectional


@pytest.mark.parametrize("architecture", ["repeat", "sequence"])
@pytest.mark.parametrize(("units", "n_features"), [((4,), 1), ((64, 16), 2), ((8, 4, 2), 3), ((100,), 5)])
def test_parameter_count_formula(architecture, units, n_features):
    model = net(units, architecture, n_features=n_features)
    expected = naive.autoencoder_parameters(n_features, units)
    assert count_parameters(model) == expected
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())


def test_parameter_count_by_hand():
    # units (64, 16), F = 2:
    # encoder 4*(64*(2+64)+128) + 4*(16*(64+16)+32), decoder 4*(16*(16+16)+32) + 4*(64*(16+64)+128), Dense 64*2+2
    expected = 4 * (64 * 66 + 128) + 4 * (16 * 80 + 32) + 4 * (16 * 32 + 32) + 4 * (64 * 80 + 128) + 130
    assert expected == 17408 + 5248 + 2176 + 20992 + 130
    assert count_parameters(net((64, 16))) == expected


def test_count_parameters_skips_frozen():
    model = net((4,))
    total = count_parameters(model)
    model.output_layer.weight.requires_grad_(False)
    assert count_parameters(model) == total - model.output_layer.weight.numel()


def test_repeat_decoder_gets_the_same_input_at_every_step():
    # The decoder runs the fast recurrence (its input projected once); the
    # nn.LSTM decoder module fed z repeated T times must give the same steps.
    model = net((6, 3), "repeat")
    x = torch.randn(B, T, F)
    z = model.encode(x)  # (B, 3)
    steps, _ = model.decoder(z, T)
    repeated = z.unsqueeze(1).expand(-1, T, -1)  # (B, T, 3): RepeatVector
    expected, _ = model.decoder.layers[0](repeated)
    expected, _ = model.decoder.layers[1](expected)
    assert torch.allclose(steps, expected, atol=1e-6)
    assert torch.allclose(model(x), naive.autoencoder_forward(model, x), atol=1e-6)
    # and that input is the encoder's last hidden state, which is its last step
    enc_steps, last = model.encoder(x)
    assert torch.allclose(z, last)
    assert torch.allclose(last, enc_steps[:, -1])
    assert torch.allclose(last, model.encoder.layers[1](model.encoder.layers[0](x)[0])[0][:, -1], atol=1e-6)


def test_sequence_decoder_gets_the_encoder_sequence():
    model = net((6, 3), "sequence")
    x = torch.randn(B, T, F)
    z = model.encode(x)  # (B, T, 3)
    assert z.shape == (B, T, 3)
    assert not torch.allclose(z[:, 0], z[:, -1])  # steps differ: no repetition
    expected, _ = model.decoder.layers[0](z)
    expected, _ = model.decoder.layers[1](expected)
    assert torch.allclose(model(x), model.output_layer(expected), atol=1e-6)


def test_repeat_reconstruction_depends_on_the_whole_window_only_through_z():
    model = net((6, 3), "repeat")
    x = torch.randn(B, T, F)
    z = model.encode(x)
    assert torch.allclose(model(x), model.decode(z, T))


def test_lstm_stack_chains_layers():
    torch.manual_seed(0)
    stack = LSTMStack(2, (5, 3))
    x = torch.randn(4, 6, 2)
    steps, last = stack(x)
    assert steps.shape == (4, 6, 3) and last.shape == (4, 3)
    manual, _ = stack.layers[0](x)
    manual, _ = stack.layers[1](manual)
    assert torch.allclose(steps, manual, atol=1e-6)
    assert torch.allclose(last, manual[:, -1])


@pytest.mark.parametrize("architecture", ["repeat", "sequence"])
@pytest.mark.parametrize("units", [(4,), (8, 4, 2)])
def test_gradients_reach_every_parameter(architecture, units):
    model = net(units, architecture)
    x = torch.randn(B, T, F)
    loss = ((model(x) - x) ** 2).mean()
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_one_optimiser_step_reduces_the_loss():
    model = net((8, 4), "repeat")
    x = torch.randn(B, T, F)
    before = ((model(x) - x) ** 2).mean()
    before.backward()
    with torch.no_grad():  # one plain gradient-descent step (torch.optim is slow to import)
        for parameter in model.parameters():
            parameter -= 0.05 * parameter.grad
    after = ((model(x) - x) ** 2).mean()
    assert after < before


@pytest.mark.parametrize("architecture", ["repeat", "sequence"])
def test_frame_k_is_the_plain_network_on_k_timesteps_per_step(architecture):
    # frame=3 on (B, 12, 2) must be exactly the frame=1 network reading (B, 4, 6): same weights, same numbers.
    torch.manual_seed(0)
    framed = LSTMAutoencoder(NetworkConfig(2, 12, (5, 3), architecture, frame=3))
    plain = LSTMAutoencoder(NetworkConfig(6, 4, (5, 3), architecture, frame=1))
    plain.load_state_dict(framed.state_dict())
    x = torch.randn(7, 12, 2)
    got = framed(x)
    assert got.shape == (7, 12, 2)
    want = plain(x.reshape(7, 4, 6)).reshape(7, 12, 2)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    z = framed.encode(x)
    assert z.shape == ((7, 3) if architecture == "repeat" else (7, 4, 3))


def _record_paths(monkeypatch) -> list[str]:
    """Which LSTM code runs: "nn.LSTM" per nn.LSTM call, "fused" per C training pass, "c_loop" per C inference loop."""
    import lstmae.backends.network as lstmae_nn
    from lstmae.backends import fused

    calls: list[str] = []
    real_lstm, real_fused, real_loop = torch.nn.LSTM.forward, fused.reconstruct, lstmae_nn.lstm_inference

    def lstm(self, *args, **kwargs):
        calls.append("nn.LSTM")
        return real_lstm(self, *args, **kwargs)

    def fused_pass(*args):
        calls.append("fused")
        return real_fused(*args)

    def c_loop(*args):
        calls.append("c_loop")
        return real_loop(*args)

    monkeypatch.setattr(torch.nn.LSTM, "forward", lstm)
    monkeypatch.setattr(fused, "reconstruct", fused_pass)
    monkeypatch.setattr(lstmae_nn, "lstm_inference", c_loop)
    return calls


def _train_and_infer(model: LSTMAutoencoder, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    y = model(x)
    y.sum().backward()
    with torch.no_grad():
        return y.detach(), model(x)


def test_cuda_runs_nn_lstm_for_training_and_inference(monkeypatch):
    """On CUDA (a monkeypatched device check on CPU tensors) every LSTM is torch's nn.LSTM (cuDNN there)."""
    import lstmae.backends.network as lstmae_nn

    calls = _record_paths(monkeypatch)
    seen: list[str] = []
    monkeypatch.setattr(lstmae_nn, "device_type", lambda tensor: seen.append(tensor.device.type) or "cuda")
    model = net((6, 3), "repeat")
    x = torch.randn(B, T, F)
    trained, inferred = _train_and_infer(model, x)
    assert seen and set(calls) == {"nn.LSTM"}
    assert len(calls) == 2 * 4  # 2 encoder + 2 decoder layers, training and inference
    expected = naive.autoencoder_forward(model, x)  # nn.LSTM called layer by layer, z repeated T times
    with torch.no_grad():  # oneDNN's inference kernel: not bit-equal to its training one
        expected_inferred = naive.autoencoder_forward(model, x)
    assert torch.equal(trained, expected) and torch.equal(inferred, expected_inferred)


def test_cpu_float32_runs_the_c_path_and_float64_nn_lstm(monkeypatch):
    from lstmae.backends import kernels

    if kernels.library() is None:
        pytest.skip(f"the C kernels are not usable here ({kernels.status()['detail']}): the CPU runs nn.LSTM")
    calls = _record_paths(monkeypatch)
    model = net((6, 3), "sequence")
    _train_and_infer(model, torch.randn(B, T, F))
    assert calls == ["fused", "c_loop", "c_loop", "c_loop", "c_loop"]  # one training pass; 4 layers' inference loops
    calls.clear()
    _train_and_infer(model.double(), torch.randn(B, T, F, dtype=torch.float64))
    assert set(calls) == {"nn.LSTM"}
    calls.clear()
    monkeypatch.setenv("LSTMAE_KERNELS", "0")  # switched off: nn.LSTM on the CPU too
    _train_and_infer(model.float(), torch.randn(B, T, F))
    assert set(calls) == {"nn.LSTM"}
