"""The two LSTM autoencoders, in torch only (no numpy, files or thresholds here).

Shapes use B = batch, T = timesteps, F = features, H = hidden units, L = latent.

``repeat`` (the bottleneck design, Keras: LSTM -> RepeatVector -> LSTM -> TimeDistributed(Dense))::

    x (B, T, F) -> encoder LSTMs -> last hidden state z (B, L)
      -> repeat z at every step (B, T, L) -> decoder LSTMs (B, T, H0)
      -> per-step Linear (B, T, F)

``sequence`` (every layer return_sequences=True, no RepeatVector)::

    x (B, T, F) -> encoder LSTMs -> z (B, T, L) -> decoder LSTMs (B, T, H0) -> per-step Linear (B, T, F)

The decoder mirrors the encoder: units (64, 16) encode 64 -> 16 and decode 16 -> 64.

Framing (``config.frame`` = k): the LSTMs read k consecutive timesteps as one
step, a window (B, T, F) being viewed as (B, T/k, k*F) and the output viewed
back. k = 1 is the plain Keras design; k > 1 makes long windows (a period of
hundreds of timesteps) short enough to train in seconds, without averaging any
value away.
"""

from __future__ import annotations

import torch
from torch import nn

from lstmae.backends import fused

from lstmae.backends import kernels
from lstmae.config import NetworkConfig
from lstmae.backends.recurrence import input_projection, lstm_inference


def device_type(tensor: torch.Tensor) -> str:
    """The tensor's device type ("cpu", "cuda", ...); the one device check the path choice reads."""
    return tensor.device.type


def uses_kernels(x: torch.Tensor, parameters: list[torch.Tensor]) -> bool:
    """True when the LSTMs run lstmae's C path: float32 CPU tensors and the kernels usable.

    The other path is torch's ``nn.LSTM``: cuDNN on CUDA, and float64, any other
    device, or a CPU without the kernels.
    """
    if device_type(x) != "cpu" or x.dtype != torch.float32:
        return False
    if not all(p.dtype == torch.float32 and p.device.type == "cpu" for p in parameters):
        return False
    return kernels.library() is not None


class LSTMStack(nn.Module):
    """Single-layer ``nn.LSTM`` modules chained, each with its own hidden size.

    Keras users stack ``LSTM(64, return_sequences=True), LSTM(16)``; torch's
    ``num_layers`` needs one size for all layers, so each layer is its own module.
    The modules hold the parameters (and name them in saved files). Inference on a
    CPU runs `lstmae.backends.recurrence` (the same function, faster); everything else runs
    the ``nn.LSTM`` modules themselves.
    """

    def __init__(self, input_size: int, hidden_sizes: tuple[int, ...]) -> None:
        super().__init__()
        sizes = (input_size, *hidden_sizes)
        self.layers = nn.ModuleList(
            nn.LSTM(sizes[i], sizes[i + 1], batch_first=True) for i in range(len(hidden_sizes))
        )

    def forward(self, x: torch.Tensor, timesteps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the layers; return (every step of the last layer (B, T, H_last), its last hidden state (B, H_last)).

        x is (B, T, in), or (B, in) with ``timesteps``: the same input at every
        step (RepeatVector), whose input projection is then computed once, not T times.
        """
        first, *rest = self.layers
        if x.shape[-1] != first.input_size:  # the message nn.LSTM gives
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {first.input_size}, got {x.shape[-1]}")
        differentiated = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))
        if differentiated or not uses_kernels(x, list(self.parameters())):
            if timesteps is not None:
                x = x.unsqueeze(1).expand(-1, timesteps, -1)  # (B, in) -> (B, T, in), RepeatVector
            for layer in self.layers:
                x, _ = layer(x)  # (B, T, H_i)
            return x, x[:, -1]
        if timesteps is None:
            gates = input_projection(first, x.transpose(0, 1))  # (T, B, 4H_0)
        else:
            gates = input_projection(first, x).expand(timesteps, -1, -1)  # (B, 4H_0) -> (T, B, 4H_0), no copy
        steps = lstm_inference(gates, first.weight_hh_l0)  # (T, B, H_0)
        for layer in rest:
            steps = lstm_inference(input_projection(layer, steps), layer.weight_hh_l0)  # (T, B, H_i)
        return steps.transpose(0, 1), steps[-1]


class LSTMAutoencoder(nn.Module):
    """Encoder-decoder LSTM; ``config.architecture`` chooses the design."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        units = config.units
        self.encoder = LSTMStack(config.step_features, units)
        self.decoder = LSTMStack(units[-1], tuple(reversed(units)))
        self.output_layer = nn.Linear(units[0], config.step_features)  # TimeDistributed(Dense(k*F))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, F) -> z: (B, L) for "repeat", (B, T/k, L) for "sequence"."""
        batch, timesteps, features = x.shape
        framed = x.reshape(batch, timesteps // self.config.frame, self.config.frame * features)  # (B, T/k, k*F)
        steps, last = self.encoder(framed)
        return last if self.config.architecture == "repeat" else steps

    def decode(self, z: torch.Tensor, timesteps: int) -> torch.Tensor:
        """z from `encode` -> reconstruction (B, T, F)."""
        n_steps = timesteps // self.config.frame
        if z.dim() == 2:  # repeat design: the same latent vector (B, L) at every step (RepeatVector)
            steps, _ = self.decoder(z, n_steps)  # (B, T/k, H0)
        else:
            steps, _ = self.decoder(z)  # (B, T/k, H0)
        framed = self.output_layer(steps)  # (B, T/k, k*F)
        return framed.reshape(framed.shape[0], timesteps, self.config.n_features)  # (B, T, F)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, F) -> reconstruction (B, T, F).

        Two paths compute the same function (`uses_kernels` chooses): on a CPU with
        float32 tensors and the kernels, training runs one C pass forward and one
        backward (`lstmae.backends.fused`) and inference the C loops (`lstmae.backends.recurrence`);
        otherwise (CUDA: cuDNN; float64; other devices) torch's ``nn.LSTM``.
        """
        if uses_kernels(x, list(self.parameters())) and fused.applies(self, x):
            return fused.reconstruct(self, x)
        return self.decode(self.encode(x), x.shape[1])


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
