"""The LSTM recurrence's forward loop in C: inference (scoring, encoding) on a CPU.

``torch.nn.LSTM`` on the CPU runs oneDNN's fused RNN kernel, which is slow for the
small hidden sizes of time-series autoencoders, and it must be given an input per
step: the repeat decoder's input is the same vector at every step, so its input
projection ``W_ih z + b`` would be recomputed T times. Here the caller computes
the input projections (once per window for the repeat decoder, one large matrix
product for every other layer) and `lstm_inference` runs only what must be
sequential, the whole loop over the steps as one C call (``lstmae_forward`` in
kernels.c: its own AVX2 product, the batch's rows split between torch's threads,
each step's gates and cell in one reused (B, 4H) block that stays in cache).

It applies to float32 CPU tensors when `lstmae.backends.kernels.library()` is available and
nothing is differentiated; `lstmae.backends.network` chooses it (training on the CPU takes
`lstmae.backends.fused`; everything else takes ``nn.LSTM``). Same equations, gate order
(input, forget, cell, output) and parameters as ``nn.LSTM``;
tests/test_recurrence.py checks the values against it.

Shapes: T = timesteps, B = batch, H = hidden units; time-major inside.
"""

from __future__ import annotations

import torch
from torch import nn

from lstmae.backends import kernels

PANEL = 16  # columns per packed panel of the C product (PANEL in kernels.c)


def input_projection(layer: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """``W_ih x + b_ih + b_hh`` of an ``nn.LSTM`` layer: (..., in) -> (..., 4H)."""
    bias = layer.bias_ih_l0 + layer.bias_hh_l0
    return torch.nn.functional.linear(x, layer.weight_ih_l0, bias)


def _pack(matrix: torch.Tensor) -> torch.Tensor:
    """(K, N) -> (ceil(N / 16), K, 16): 16-column panels, zero-padded past N, for the C product."""
    k, n = matrix.shape
    panels = -(-n // PANEL)
    padded = matrix.new_zeros(k, panels * PANEL)
    padded[:, :n] = matrix
    return padded.view(k, panels, PANEL).transpose(0, 1).contiguous()


def lstm_inference(gx: torch.Tensor, weight_hh: torch.Tensor) -> torch.Tensor:
    """Run an LSTM over precomputed input projections, in C, without gradients.

    Parameters
    ----------
    gx : float32 CPU Tensor of shape (T, B, 4H)
        ``W_ih x_t + b_ih + b_hh`` for every step; an expanded (B, 4H) view (stride 0
        on T, the repeat decoder) is read once per step, never copied.
    weight_hh : float32 CPU Tensor of shape (4H, H)

    Returns
    -------
    Tensor of shape (T, B, H): the hidden state at every step (zero initial state).
    """
    lib = kernels.library()
    if lib is None:
        raise RuntimeError("lstm_inference needs lstmae's C kernels (kernels.library() is None); use nn.LSTM")
    steps, batch, four_h = gx.shape
    hidden = four_h // 4
    gx, weight_hh = gx.detach(), weight_hh.detach()
    if gx.stride(2) != 1:
        gx = gx.contiguous()
    packed = _pack(weight_hh.t())  # W_hh^T (H, 4H) in panels
    outputs = torch.zeros(steps + 1, batch, hidden)  # h_{-1} = 0, h_0 .. h_{T-1}
    gates, cell, tanh_c = torch.empty(batch, four_h), torch.zeros(batch, hidden), torch.empty(batch, hidden)
    # step strides 0: one (B, ...) block each for the gates, cell and tanh(c), reused at every step
    done = lib.lstmae_forward(
        steps, batch, hidden, kernels.threads(lib), gx.data_ptr(), gx.stride(0), gx.stride(1), packed.data_ptr(),
        gates.data_ptr(), 0, cell.data_ptr(), 0, tanh_c.data_ptr(), 0, outputs.data_ptr(),
    )
    if done != 0:
        raise RuntimeError("lstmae_forward needs AVX2 + FMA")
    return outputs[1:]
