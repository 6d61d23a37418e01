"""The whole autoencoder's training pass in C: one call forward, one call backward.

A training step through ``nn.LSTM`` on the CPU runs oneDNN's LSTM (slow for small
hidden sizes) and a few dozen torch operations and autograd nodes around it
(input projections, the output layer, the weight gradients); even with each
layer's loop in C those operations cost as much as the loops at batch 32. Here `reconstruct` runs
``LSTMAutoencoder.forward`` as one autograd Function whose forward and backward
are each a single C call (``lstmae_ae_forward`` / ``lstmae_ae_backward`` in
kernels.c): all layers, the repeat decoder's input projected once, the output
Linear, and every weight gradient, the batch's rows split between torch's threads.

It computes the same function as ``nn.LSTM`` (tests/test_fused.py checks values
and gradients against the float32 and float64 ``nn.LSTM`` path), and
it applies only where the C path runs: float32 CPU tensors, the kernels built
and usable (an AVX2 + FMA CPU), gradients wanted for the parameters and not for
the input. Inference takes `lstmae.backends.recurrence`; everything else (float64, GPUs, a
gradient wrt the input) takes ``nn.LSTM`` (`lstmae.backends.network` chooses). Results are
bit-identical for any number of threads.

Shapes: B = batch, S = LSTM steps (timesteps / frame), G = 4H.
"""

from __future__ import annotations

import ctypes
import functools
import threading

import torch

from lstmae.backends import kernels

from lstmae.backends import recurrence

_PANEL = recurrence.PANEL
_FLOAT = 4  # bytes

_LAYER_POINTERS = (
    "w_ih", "w_hh", "b_ih", "b_hh", "w_ih_t_packed", "w_hh_t_packed", "w_ih_packed", "w_hh_packed", "bias",
    "acts", "cells", "tanh_c", "outputs", "grad_outputs", "dh", "dc", "grad_w_ih", "grad_w_hh", "grad_b_ih", "grad_b_hh",
)
_MODEL_POINTERS = (
    "x", "y", "w_out", "b_out", "w_out_t_packed", "w_out_packed", "repeat_gx", "zeros", "grad_y", "grad_w_out", "grad_b_out",
    "scratch",
)


class _Layer(ctypes.Structure):  # ae_layer in kernels.c
    _fields_ = [("input", ctypes.c_int64), ("hidden", ctypes.c_int64)] + [(name, ctypes.c_void_p) for name in _LAYER_POINTERS]


class _Model(ctypes.Structure):  # ae_model in kernels.c
    _fields_ = [
        (name, ctypes.c_int64) for name in ("steps", "batch", "n_layers", "n_encoder", "repeat", "features")
    ] + [(name, ctypes.c_void_p) for name in _MODEL_POINTERS] + [
        ("scratch_per_thread", ctypes.c_int64), ("layers", ctypes.POINTER(_Layer))
    ]


def _parameters(net) -> list[torch.Tensor]:
    """Per LSTM layer (encoder first) weight_ih, weight_hh, bias_ih, bias_hh; then the output layer's weight and bias."""
    params = []
    for lstm in (*net.encoder.layers, *net.decoder.layers):
        params += [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0]
    return [*params, net.output_layer.weight, net.output_layer.bias]


def applies(net: torch.nn.Module, x: torch.Tensor) -> bool:
    """True when ``net(x)`` should take the fused pass: training (gradients wanted) on float32 CPU tensors."""
    if not torch.is_grad_enabled() or x.requires_grad:
        return False
    if x.dtype != torch.float32 or x.device.type != "cpu" or x.dim() != 3:
        return False
    params = _parameters(net)
    if not all(p.dtype == torch.float32 and p.device.type == "cpu" and p.is_contiguous() for p in params):
        return False
    return any(p.requires_grad for p in params) and kernels.library() is not None


def _round(count: int) -> int:
    """Elements rounded up to 16 (64 bytes): every buffer starts on a cache line."""
    return -(-count // 16) * 16


def _panels(k: int, n: int) -> int:
    """Elements of a K x N matrix packed in 16-column panels."""
    return -(-n // _PANEL) * k * _PANEL


class _Layout:
    """Where each buffer of a pass lies in its workspace, for one network shape and batch.

    Built once per (config, batch, steps, threads) and cached: per step only pointers
    are set (base address + offset), which keeps the per-batch Python work small.
    """

    def __init__(self, config, batch: int, steps: int, threads: int, lib) -> None:
        units = tuple(config.units)
        sizes = (*units, *reversed(units))  # hidden size of each layer, encoder first
        inputs = (config.step_features, *sizes[:-1])
        features = config.step_features
        self.batch, self.steps, self.features = batch, steps, features
        self.n_layers, self.n_encoder = len(sizes), len(units)
        self.repeat = int(config.architecture == "repeat")
        self.dims = list(zip(inputs, sizes))
        forward: list[tuple[int | None, str, int]] = []  # (layer or None for the model, field, elements)
        backward: list[tuple[int | None, str, int]] = []
        for index, (inp, hidden) in enumerate(self.dims):
            gates = 4 * hidden
            forward += [
                (index, "w_ih_t_packed", _panels(inp, gates)), (index, "w_hh_t_packed", _panels(hidden, gates)),
                (index, "bias", gates), (index, "acts", steps * batch * gates),
                (index, "cells", (steps + 1) * batch * hidden), (index, "tanh_c", steps * batch * hidden),
                (index, "outputs", (steps + 1) * batch * hidden),
            ]
            backward += [
                (index, "w_ih_packed", _panels(gates, inp)), (index, "w_hh_packed", _panels(gates, hidden)),
                (index, "grad_outputs", steps * batch * hidden), (index, "dh", batch * hidden), (index, "dc", batch * hidden),
            ]
        forward += [(None, "w_out_t_packed", _panels(sizes[-1], features)), (None, "repeat_gx", batch * 4 * sizes[self.n_encoder])]
        widest = max(max(4 * hidden, inp) for inp, hidden in self.dims)
        self.zeros = max(widest, features) + _PANEL
        # the weight gradients: at most 4H x max(in, H) per layer, features x H_last for the output layer
        self.per_thread = lib.lstmae_ae_scratch(max(widest, features), max(max(inp, hidden) for inp, hidden in self.dims))
        backward += [
            (None, "w_out_packed", _panels(features, sizes[-1])), (None, "zeros", self.zeros),
            (None, "scratch", threads * self.per_thread),
        ]
        self.forward, self.forward_size = self._offsets(forward)
        self.backward, self.backward_size = self._offsets(backward)
        self.zeros_at = {name: offset for _, name, offset in self.backward}["zeros"] // _FLOAT  # in elements

    @staticmethod
    def _offsets(buffers):
        placed, offset = [], 0
        for layer, name, count in buffers:
            placed.append((layer, name, offset * _FLOAT))
            offset += _round(count)
        return placed, offset

    def structs(self, x: torch.Tensor, y: torch.Tensor, params: list[torch.Tensor]) -> tuple[_Model, ctypes.Array]:
        """The C structures with the sizes, the inputs' and parameters' addresses."""
        layers = (_Layer * self.n_layers)()
        for index, (layer, (inp, hidden)) in enumerate(zip(layers, self.dims)):
            layer.input, layer.hidden = inp, hidden
            w_ih, w_hh, b_ih, b_hh = params[4 * index : 4 * index + 4]
            layer.w_ih, layer.w_hh, layer.b_ih, layer.b_hh = w_ih.data_ptr(), w_hh.data_ptr(), b_ih.data_ptr(), b_hh.data_ptr()
        model = _Model(steps=self.steps, batch=self.batch, n_layers=self.n_layers, n_encoder=self.n_encoder,
                       repeat=self.repeat, features=self.features, x=x.data_ptr(), y=y.data_ptr(),
                       w_out=params[-2].data_ptr(), b_out=params[-1].data_ptr(), scratch_per_thread=self.per_thread,
                       layers=layers)
        return model, layers

    @staticmethod
    def place(model: _Model, layers: ctypes.Array, placed, base: int) -> None:
        """Point the structures' buffer fields into the workspace starting at address ``base``."""
        for layer, name, offset in placed:
            setattr(model if layer is None else layers[layer], name, base + offset)


@functools.lru_cache(maxsize=16)
def _layout(config, batch: int, steps: int, threads: int) -> _Layout:
    return _Layout(config, batch, steps, threads, kernels.library())


# Freed workspaces by size, reused by the next pass: a fresh tensor of tens of MB is a fresh
# mapping from the OS each time (beyond glibc's 32 MB reuse limit), whose page faults cost
# as much as the pass at batch 256. `release` gives them back (training does at the end of fit).
_pool: dict[int, list[torch.Tensor]] = {}
_pool_lock = threading.Lock()


def _take(count: int) -> torch.Tensor:
    """A float32 buffer of ``count`` elements, uninitialised: a pooled one if any."""
    with _pool_lock:
        free = _pool.get(count)
        if free:
            return free.pop()
    return torch.empty(count)


def _give(buffer: torch.Tensor) -> None:
    with _pool_lock:
        free = _pool.setdefault(buffer.numel(), [])
        if len(free) < 2:
            free.append(buffer)


def release() -> None:
    """Free the pooled workspaces."""
    with _pool_lock:
        _pool.clear()


class _Pass(torch.autograd.Function):
    """reconstruction (B, S, k*F) of framed x (B, S, k*F); the parameters in `_parameters` order."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, config, *params: torch.Tensor) -> torch.Tensor:
        lib = kernels.library()
        threads = kernels.threads(lib)
        layout = _layout(config, x.shape[0], x.shape[1], threads)
        x = x.contiguous()
        y = torch.empty(x.shape)  # (B, S, k*F)
        model, layers = layout.structs(x, y, params)
        workspace = _take(layout.forward_size)
        layout.place(model, layers, layout.forward, workspace.data_ptr())
        if lib.lstmae_ae_forward(ctypes.byref(model), threads) != 0:
            raise RuntimeError("lstmae_ae_forward needs AVX2")
        ctx.save_for_backward(x, *params)
        ctx.state = (lib, layout, threads, workspace)  # the gates and states the backward reads (and overwrites)
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        if ctx.state is None:  # the backward overwrites the saved gates: it can run once
            raise RuntimeError("lstmae's fused training pass can be differentiated once; call backward without retain_graph")
        lib, layout, threads, workspace = ctx.state
        ctx.state = None
        x, *params = ctx.saved_tensors
        grad_y = grad_y.contiguous()
        model, layers = layout.structs(x, grad_y, params)  # y is not read: grad_y's address stands in
        scratch = _take(layout.backward_size)
        layout.place(model, layers, layout.forward, workspace.data_ptr())
        layout.place(model, layers, layout.backward, scratch.data_ptr())
        scratch[layout.zeros_at : layout.zeros_at + layout.zeros].zero_()
        grads = [torch.empty_like(p) for p in params]  # every element is written by the C pass
        for index, layer in enumerate(layers):
            w_ih, w_hh, b_ih, b_hh = (g.data_ptr() for g in grads[4 * index : 4 * index + 4])
            layer.grad_w_ih, layer.grad_w_hh, layer.grad_b_ih, layer.grad_b_hh = w_ih, w_hh, b_ih, b_hh
        model.grad_y, model.grad_w_out, model.grad_b_out = grad_y.data_ptr(), grads[-2].data_ptr(), grads[-1].data_ptr()
        if lib.lstmae_ae_backward(ctypes.byref(model), threads) != 0:
            raise RuntimeError("lstmae_ae_backward needs AVX2")
        _give(workspace)  # back to the pool: the C pass is done with them
        _give(scratch)
        return (None, None, *grads)


def reconstruct(net, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` through the fused pass: x (B, T, F) -> reconstruction (B, T, F). Check `applies` first."""
    batch, timesteps, features = x.shape
    config = net.config
    framed = x.reshape(batch, timesteps // config.frame, config.frame * features)  # (B, S, k*F)
    if framed.shape[-1] != config.step_features:  # the message the module's own layers give
        raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {config.step_features}, got {framed.shape[-1]}")
    y = _Pass.apply(framed, config, *_parameters(net))
    return y.reshape(batch, timesteps, features)
