"""The whole autoencoder's training pass in C: one call forward, one call backward.

`lstmae.recurrence` makes each LSTM layer's loop fast, but a training step still
runs a few dozen torch operations and autograd nodes around those loops (input
projections, the output layer, packing the weights, the weight gradients), and at
batch 32 they cost as much as the loops themselves. Here `reconstruct` runs
``LSTMAutoencoder.forward`` as one autograd Function whose forward and backward
are each a single C call (``lstmae_ae_forward`` / ``lstmae_ae_backward`` in
kernels.c): all layers, the repeat decoder's input projected once, the output
Linear, and every weight gradient, the batch's rows split between torch's threads.

It computes the same function as the module's own layers (tests/test_fused.py
checks values and gradients against them and against float64 ``nn.LSTM``), and
it applies only where those C loops run: float32 CPU tensors, an AVX2 CPU, the
kernels built, gradients wanted. Everything else (float64, GPUs, inference,
encoding) takes the module's layers. Results are bit-identical for any number
of threads.

Shapes: B = batch, S = LSTM steps (timesteps / frame), G = 4H.
"""

from __future__ import annotations

import ctypes
import threading

import torch

from lstmae import kernels, recurrence

#: Route training through the fused pass when it applies (tests and bench/perf.py switch it off).
ENABLED = True
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


class _Layer(ctypes.Structure):
    _fields_ = [("input", ctypes.c_int64), ("hidden", ctypes.c_int64)] + [(name, ctypes.c_void_p) for name in _LAYER_POINTERS]


class _Model(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int64) for name in ("steps", "batch", "n_layers", "n_encoder", "repeat", "features")
    ] + [(name, ctypes.c_void_p) for name in _MODEL_POINTERS] + [
        ("scratch_per_thread", ctypes.c_int64), ("layers", ctypes.POINTER(_Layer))
    ]


def _library():
    """The kernels when their whole-autoencoder pass runs on this CPU, else None."""
    lib = kernels.library()
    if lib is None or not recurrence.WHOLE_LOOPS or not lib.lstmae_kernels_vectorised():
        return None
    return lib


def applies(net: torch.nn.Module, x: torch.Tensor) -> bool:
    """True when ``net(x)`` should take the fused pass: training (gradients wanted) on float32 CPU tensors."""
    if not (ENABLED and torch.is_grad_enabled()) or x.requires_grad:
        return False
    if x.dtype != torch.float32 or x.device.type != "cpu" or x.dim() != 3:
        return False
    params = list(net.parameters())
    if not all(p.dtype == torch.float32 and p.device.type == "cpu" and p.is_contiguous() for p in params):
        return False
    return any(p.requires_grad for p in params) and _library() is not None


def _layers(net) -> list:
    """The nn.LSTM modules, encoder first, in the order the C pass runs them."""
    return [*net.encoder.layers, *net.decoder.layers]


def _carve(buffer: torch.Tensor, sizes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Views of ``buffer`` with the given shapes, one after another, each starting on a 64-byte boundary."""
    views, offset = {}, 0
    for name, shape in sizes.items():
        count = 1
        for dim in shape:
            count *= dim
        views[name] = buffer[offset : offset + count].view(shape)
        offset += -(-count // 16) * 16
    return views


def _size(sizes: dict[str, tuple[int, ...]]) -> int:
    total = 0
    for shape in sizes.values():
        count = 1
        for dim in shape:
            count *= dim
        total += -(-count // 16) * 16
    return total


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


def _panels(k: int, n: int) -> tuple[int, ...]:
    return (-(-n // _PANEL), k, _PANEL)


class _Pass(torch.autograd.Function):
    """reconstruction (B, S, k*F) of framed x (B, S, k*F); the parameters in `_parameters` order."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, net, *params: torch.Tensor) -> torch.Tensor:
        lib = _library()
        layers = _layers(net)
        batch, steps, features = x.shape
        repeat = net.config.architecture == "repeat"
        n_encoder = len(net.encoder.layers)
        sizes: dict[str, tuple[int, ...]] = {}
        for index, lstm in enumerate(layers):
            inputs, hidden = lstm.input_size, lstm.hidden_size
            gates = 4 * hidden
            sizes.update({
                f"{index}.w_ih_t_packed": _panels(inputs, gates), f"{index}.w_hh_t_packed": _panels(hidden, gates),
                f"{index}.bias": (gates,), f"{index}.acts": (steps, batch, gates),
                f"{index}.cells": (steps + 1, batch, hidden), f"{index}.tanh_c": (steps, batch, hidden),
                f"{index}.outputs": (steps + 1, batch, hidden),
            })
        top = layers[-1].hidden_size
        decoder_gates = 4 * layers[n_encoder].hidden_size
        sizes.update({"w_out_t_packed": _panels(top, features), "repeat_gx": (batch, decoder_gates)})
        workspace = _take(_size(sizes))
        work = _carve(workspace, sizes)
        x = x.contiguous()
        y = torch.empty(batch, steps, features)
        structs = (_Layer * len(layers))()
        for index, (lstm, layer) in enumerate(zip(layers, structs)):
            layer.input, layer.hidden = lstm.input_size, lstm.hidden_size
            for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
                setattr(layer, name, getattr(lstm, f"{'weight' if name[0] == 'w' else 'bias'}_{name[2:]}_l0").data_ptr())
            for name in ("w_ih_t_packed", "w_hh_t_packed", "bias", "acts", "cells", "tanh_c", "outputs"):
                setattr(layer, name, work[f"{index}.{name}"].data_ptr())
        model = _Model(steps=steps, batch=batch, n_layers=len(layers), n_encoder=n_encoder, repeat=int(repeat),
                       features=features, x=x.data_ptr(), y=y.data_ptr(), w_out=net.output_layer.weight.data_ptr(),
                       b_out=net.output_layer.bias.data_ptr(), w_out_t_packed=work["w_out_t_packed"].data_ptr(),
                       repeat_gx=work["repeat_gx"].data_ptr(), layers=structs)
        if lib.lstmae_ae_forward(ctypes.byref(model), _threads(lib)) != 0:
            raise RuntimeError("lstmae_ae_forward needs AVX2")
        ctx.save_for_backward(x, *params)
        ctx.state = (lib, net, model, structs, workspace)  # the buffers the backward reads (and overwrites)
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        if ctx.state is None:  # the backward overwrites the saved gates: it can run once
            raise RuntimeError("lstmae's fused training pass can be differentiated once; call backward without retain_graph")
        lib, net, model, structs, workspace = ctx.state
        ctx.state = None
        x, *params = ctx.saved_tensors
        layers = _layers(net)
        batch, steps, features = x.shape
        grad_y = grad_y.contiguous()
        sizes: dict[str, tuple[int, ...]] = {}
        for index, lstm in enumerate(layers):
            inputs, hidden = lstm.input_size, lstm.hidden_size
            sizes.update({
                f"{index}.w_ih_packed": _panels(4 * hidden, inputs), f"{index}.w_hh_packed": _panels(4 * hidden, hidden),
                f"{index}.grad_outputs": (steps, batch, hidden), f"{index}.dh": (batch, hidden), f"{index}.dc": (batch, hidden),
            })
        widest = max(max(4 * lstm.hidden_size, lstm.input_size) for lstm in layers)
        threads = _threads(lib)
        # the weight gradients: at most (4H) x max(in, H) per layer, features x H_last for the output layer
        per_thread = lib.lstmae_ae_scratch(max(widest, features), max(max(lstm.input_size, lstm.hidden_size) for lstm in layers))
        sizes.update({
            "w_out_packed": _panels(features, layers[-1].hidden_size), "zeros": (max(widest, features) + _PANEL,),
            "scratch": (threads, per_thread),
        })
        scratch_space = _take(_size(sizes))
        scratch = _carve(scratch_space, sizes)
        scratch["zeros"].zero_()
        grads = [torch.empty_like(p) for p in params]  # every element is written by the C pass
        for index, layer in enumerate(structs):
            for name in ("w_ih_packed", "w_hh_packed", "grad_outputs", "dh", "dc"):
                setattr(layer, name, scratch[f"{index}.{name}"].data_ptr())
            for offset, name in enumerate(("grad_w_ih", "grad_w_hh", "grad_b_ih", "grad_b_hh")):
                setattr(layer, name, grads[4 * index + offset].data_ptr())
        model.w_out_packed = scratch["w_out_packed"].data_ptr()
        model.zeros = scratch["zeros"].data_ptr()
        model.grad_y = grad_y.data_ptr()
        model.grad_w_out, model.grad_b_out = grads[-2].data_ptr(), grads[-1].data_ptr()
        model.scratch, model.scratch_per_thread = scratch["scratch"].data_ptr(), per_thread
        if lib.lstmae_ae_backward(ctypes.byref(model), threads) != 0:
            raise RuntimeError("lstmae_ae_backward needs AVX2")
        _give(workspace)  # back to the pool: the C pass is done with them
        _give(scratch_space)
        return (None, None, *grads)


def _threads(lib) -> int:
    return torch.get_num_threads() if lib.lstmae_kernels_threaded() else 1


def _parameters(net) -> list[torch.Tensor]:
    """Per layer (encoder first) weight_ih, weight_hh, bias_ih, bias_hh; then the output layer's weight and bias."""
    params = []
    for lstm in _layers(net):
        params += [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0]
    return [*params, net.output_layer.weight, net.output_layer.bias]


def reconstruct(net, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` through the fused pass: x (B, T, F) -> reconstruction (B, T, F). Check `applies` first."""
    batch, timesteps, features = x.shape
    frame = net.config.frame
    framed = x.reshape(batch, timesteps // frame, frame * features)  # (B, S, k*F)
    expected = net.encoder.layers[0].input_size
    if framed.shape[-1] != expected:  # the message the module's own layers give
        raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {expected}, got {framed.shape[-1]}")
    y = _Pass.apply(framed, net, *_parameters(net))
    return y.reshape(batch, timesteps, features)
