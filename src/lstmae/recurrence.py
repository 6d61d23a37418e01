"""The LSTM recurrence with a hand-written backward pass: what makes training fast on a CPU.

``torch.nn.LSTM`` on the CPU runs oneDNN's fused RNN kernel, which is slow for the
small hidden sizes of time-series autoencoders, and it must be given an input per
step: the repeat decoder's input is the same vector at every step, so its input
projection ``W_ih z + b`` would be recomputed T times. Here the caller computes
the input projections (once per window for the repeat decoder, one large matrix
product for every other layer) and `lstm_recurrence` runs only what must be
sequential: per step one small matrix product and a few element-wise operations.
The backward pass keeps the per-step work to one matrix product and a handful of
element-wise operations and computes the weight gradient in one large product
after the loop.

Two implementations of the same loops:

- with the C kernels (`lstmae.kernels`; float32 on a CPU, the training and
  scoring case): on CPUs with AVX2 the whole loop over the steps is one C call
  (its own matrix product; the batch's rows split between torch's threads);
  otherwise per step one torch matrix product and one C call that does all of
  the step's element-wise work in one pass. Forward and backward alike;
- in pure torch (float64, GPUs, or no C compiler): the loops below.

(Training a whole `LSTMAutoencoder` on an AVX2 CPU goes one level further:
`lstmae.fused` runs every layer's loops and weight gradients in one C call.)

Pure torch uses only sigmoids (bench/RESULTS.md has the measurement): torch's CPU ``tanh`` costs
about 3.5x a ``sigmoid`` per element, and ``tanh(x) = 2 sigmoid(2x) - 1``. The
cell-gate rows of the input projection and of ``W_hh`` are doubled once per call,
so one sigmoid over all four gate blocks yields i, f, o and sigmoid(2 g_pre); the
cell is kept doubled (2c), so ``tanh(c)`` is one more sigmoid. Values agree with
``tanh`` to float rounding.

Same equations, same gate order (input, forget, cell, output) and same
parameters as ``nn.LSTM``; `tests/test_recurrence.py` checks values and
gradients against it.

Shapes: T = timesteps, B = batch, H = hidden units; time-major inside.
"""

from __future__ import annotations

import torch
from torch import nn

from lstmae import kernels


def _cell_gate_doubled(tensor: torch.Tensor, hidden: int) -> torch.Tensor:
    """A copy of a (..., 4H) tensor with the cell-gate block (the third H) doubled."""
    scale = torch.ones(4 * hidden, dtype=tensor.dtype, device=tensor.device)
    scale[2 * hidden : 3 * hidden] = 2.0
    return tensor * scale


def _doubled_inputs(gx: torch.Tensor, weight_hh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(gx (T, B, 4H), W_hh^T (H, 4H)) with the cell-gate block doubled; an expanded gx is doubled once."""
    steps, hidden = gx.shape[0], gx.shape[2] // 4
    if gx.stride(0) == 0:  # the same projection at every step
        gx2 = _cell_gate_doubled(gx[0], hidden).expand(steps, -1, -1)
    else:
        gx2 = _cell_gate_doubled(gx, hidden)
    return gx2, _cell_gate_doubled(weight_hh.t(), hidden)


def _forward_loop(gx2, weight2_t, acts, cells2, tanh_cells, outputs) -> None:
    """The forward loop; fills the given (T, B, ...) buffers.

    gx2 (T, B, 4H) and weight2_t (H, 4H) have the cell-gate block doubled;
    cells2 holds 2c (T + 1 steps, c_{-1} = 0) and outputs h (T + 1 steps, h_{-1} = 0).
    """
    steps, batch, four_h = acts.shape
    hidden = four_h // 4
    minus_one = torch.tensor(-1.0, dtype=acts.dtype, device=acts.device)
    gates = torch.empty(batch, four_h, dtype=acts.dtype, device=acts.device)
    # Per-step views made up front: one unbind is far cheaper than indexing in the loop.
    gx_t, h_t, c_t, tanh_c_t, act_t = gx2.unbind(0), outputs.unbind(0), cells2.unbind(0), tanh_cells.unbind(0), acts.unbind(0)
    i_t, f_t, g_t, o_t = (part.unbind(0) for part in acts.split(hidden, dim=2))
    for t in range(steps):
        torch.addmm(gx_t[t], h_t[t], weight2_t, out=gates)  # (B, 4H), cell block doubled
        torch.sigmoid(gates, out=act_t[t])  # i, f, sigmoid(2 g_pre), o
        torch.add(minus_one, g_t[t], alpha=2, out=g_t[t])  # g = 2 sigmoid(2 g_pre) - 1 = tanh(g_pre)
        torch.mul(f_t[t], c_t[t], out=c_t[t + 1])  # 2c = f * 2c_prev + 2 i g
        c_t[t + 1].addcmul_(i_t[t], g_t[t], value=2)
        torch.sigmoid(c_t[t + 1], out=tanh_c_t[t])
        torch.add(minus_one, tanh_c_t[t], alpha=2, out=tanh_c_t[t])  # tanh(c) = 2 sigmoid(2c) - 1
        torch.mul(o_t[t], tanh_c_t[t], out=h_t[t + 1])  # h = o * tanh(c)


def _backward_loop(weight_hh, acts, cells2, tanh_cells, grad_outputs, grad_gates) -> None:
    """The backward loop: fills grad_gates (T, B, 4H), the gradient of the gate pre-activations."""
    steps, batch, four_h = acts.shape
    hidden = four_h // 4
    i, f, g, o = acts.split(hidden, dim=2)  # each (T, B, H)
    # d gate pre-activation = d activation * activation'; the activation's
    # gradient is (dc * g, dc * c_prev, dc * i, dh * tanh c): fold both
    # factors that do not depend on dc or dh into one (T, B, 4H) tensor.
    one = torch.ones((), dtype=acts.dtype, device=acts.device)
    factor = torch.addcmul(acts, acts, acts, value=-1)  # s (1 - s): the sigmoid's derivative (g block replaced)
    fi, ff, fg, fo = factor.split(hidden, dim=2)
    fi.mul_(g)
    ff.mul_(cells2[:-1]).mul_(0.5)  # c_prev = 2c_prev / 2
    torch.addcmul(one, g, g, value=-1, out=fg).mul_(i)  # tanh' = 1 - g^2
    fo.mul_(tanh_cells)
    dc_from_dh = torch.addcmul(one, tanh_cells, tanh_cells, value=-1).mul_(o)  # (T, B, H): dc_t += dh_t * this
    # Per-step views made up front (see forward). In the (B, 4, H) layout the
    # first three gate blocks share the factor dc and the last one dh.
    quad = (batch, 4, hidden)
    dg3_t = grad_gates.view(steps, *quad)[:, :, :3].unbind(0)
    dgo_t = grad_gates[:, :, 3 * hidden :].unbind(0)
    fac3_t = factor.view(steps, *quad)[:, :, :3].unbind(0)
    faco_t = factor[:, :, 3 * hidden :].unbind(0)
    dgrad_t, gout_t, f_t, dcdh_t = grad_gates.unbind(0), grad_outputs.unbind(0), f.unbind(0), dc_from_dh.unbind(0)
    dh = gout_t[steps - 1].clone()  # (B, H)
    dc = torch.zeros(batch, hidden, dtype=acts.dtype, device=acts.device)
    dc3 = dc.unsqueeze(1)  # (B, 1, H), a view of dc
    for t in range(steps - 1, -1, -1):
        dc.addcmul_(dh, dcdh_t[t])
        torch.mul(fac3_t[t], dc3, out=dg3_t[t])
        torch.mul(faco_t[t], dh, out=dgo_t[t])
        dc.mul_(f_t[t])
        if t > 0:
            dh = torch.addmm(gout_t[t - 1], dgrad_t[t], weight_hh)  # (B, H)


class _Recurrence(torch.autograd.Function):
    """h_t = LSTM step(gx_t + W_hh h_{t-1}), from h_0 = c_0 = 0; returns every h_t."""

    @staticmethod
    def forward(ctx, gx: torch.Tensor, weight_hh: torch.Tensor) -> torch.Tensor:
        # gx: (T, B, 4H), may be an expanded view (stride 0 on T); weight_hh: (4H, H)
        steps, batch, four_h = gx.shape
        hidden = four_h // 4
        options = dict(dtype=gx.dtype, device=gx.device)
        gx2, weight2_t = _doubled_inputs(gx, weight_hh)
        acts = torch.empty(steps, batch, four_h, **options)  # activated gates i, f, g, o
        cells2 = torch.zeros(steps + 1, batch, hidden, **options)  # 2c: c_{-1} = 0, c_0 .. c_{T-1}
        tanh_cells = torch.empty(steps, batch, hidden, **options)
        outputs = torch.zeros(steps + 1, batch, hidden, **options)  # h_{-1} = 0, h_0 .. h_{T-1}
        _forward_loop(gx2, weight2_t, acts, cells2, tanh_cells, outputs)
        ctx.save_for_backward(weight_hh, acts, cells2, tanh_cells, outputs)
        return outputs[1:]  # (T, B, H)

    @staticmethod
    def backward(ctx, grad_outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        weight_hh, acts, cells2, tanh_cells, outputs = ctx.saved_tensors
        grad_gates = torch.empty_like(acts)  # (T, B, 4H)
        _backward_loop(weight_hh, acts, cells2, tanh_cells, grad_outputs.contiguous(), grad_gates)
        grad_weight = None
        if ctx.needs_input_grad[1]:
            # sum over t and b of dgates (4H) x h_{t-1} (H): one (4H, T*B) @ (T*B, H) product
            grad_weight = grad_gates.view(-1, acts.shape[2]).t() @ outputs[:-1].reshape(-1, outputs.shape[2])
        return grad_gates, grad_weight


def lstm_recurrence(gx: torch.Tensor, weight_hh: torch.Tensor) -> torch.Tensor:
    """Run an LSTM over precomputed input projections.

    Parameters
    ----------
    gx : Tensor of shape (T, B, 4H)
        ``W_ih x_t + b_ih + b_hh`` for every step; an expanded (B, 4H) view works
        and its gradient is summed over the steps by autograd.
    weight_hh : Tensor of shape (4H, H)

    Returns
    -------
    Tensor of shape (T, B, H): the hidden state at every step (zero initial state).
    """
    fused = _kernels_for(gx, weight_hh) is not None
    if torch.is_grad_enabled() and (gx.requires_grad or weight_hh.requires_grad):
        return (_FusedRecurrence if fused else _Recurrence).apply(gx, weight_hh)
    return (_fused_inference if fused else _inference)(gx, weight_hh)


def _kernels_for(gx: torch.Tensor, weight_hh: torch.Tensor):
    """The C kernels when they apply (float32 CPU tensors) and are available, else None."""
    if gx.dtype == weight_hh.dtype == torch.float32 and gx.device.type == weight_hh.device.type == "cpu":
        return kernels.library()
    return None


def _inference(gx: torch.Tensor, weight_hh: torch.Tensor) -> torch.Tensor:
    """The forward pass when nothing will be differentiated: the same arithmetic as
    `_forward_loop` (so the same values), but each step's gates and cell reuse one
    small buffer, which stays in the CPU's cache, instead of being kept for a backward pass."""
    steps, batch, four_h = gx.shape
    hidden = four_h // 4
    options = dict(dtype=gx.dtype, device=gx.device)
    gx2, weight2_t = _doubled_inputs(gx, weight_hh)
    minus_one = torch.tensor(-1.0, **options)
    outputs = torch.empty(steps, batch, hidden, **options)  # (T, B, H)
    gates = torch.empty(batch, four_h, **options)
    i, f, g, o = gates.split(hidden, dim=1)
    cell2 = torch.zeros(batch, hidden, **options)  # 2c
    tanh_c = torch.empty(batch, hidden, **options)
    h_prev = torch.zeros(batch, hidden, **options)
    for t, (gx_t, h_t) in enumerate(zip(gx2.unbind(0), outputs.unbind(0))):
        torch.addmm(gx_t, h_prev, weight2_t, out=gates)
        torch.sigmoid(gates, out=gates)
        torch.add(minus_one, g, alpha=2, out=g)
        cell2.mul_(f).addcmul_(i, g, value=2)
        torch.sigmoid(cell2, out=tanh_c)
        torch.add(minus_one, tanh_c, alpha=2, out=tanh_c)
        torch.mul(o, tanh_c, out=h_t)
        h_prev = h_t
    return outputs


# ----------------------------------------------------------------------------- fused C kernels
# Pointers advance by whole steps: a (T, B, n) buffer's step t starts at
# data_ptr + t * B * n * 4 bytes. The kernels read and write only the (B, n)
# blocks they are given, and the tensors stay alive (and contiguous) throughout.
_FLOAT = 4  # bytes
#: Run each whole loop over the steps in C (its own AVX2 product) when the CPU has AVX2;
#: False: a torch product and a C call per step (what CPUs without AVX2 get; tests switch it).
WHOLE_LOOPS = True
PANEL = 16  # columns per packed panel of the C product (PANEL in kernels.c)


def _whole_loops(lib) -> bool:
    return WHOLE_LOOPS and bool(lib.lstmae_kernels_vectorised())


def _threads(lib) -> int:
    """Threads for a whole loop: torch's intra-op count (1 inside `parallel.ordered_map`'s workers)."""
    return torch.get_num_threads() if lib.lstmae_kernels_threaded() else 1


def _pack(matrix: torch.Tensor) -> torch.Tensor:
    """(K, N) -> (ceil(N / 16), K, 16): 16-column panels, zero-padded past N, for the C product."""
    k, n = matrix.shape
    panels = -(-n // PANEL)
    padded = matrix.new_zeros(k, panels * PANEL)
    padded[:, :n] = matrix
    return padded.view(k, panels, PANEL).transpose(0, 1).contiguous()


def _whole_forward(lib, gx, weight_hh, acts, cells, tanh_cells, outputs, step_strides) -> None:
    """`kernels.c` lstmae_forward: the whole loop, the batch's rows split between torch's threads in C.

    acts, cells, tanh_cells: (T, B, 4H), (T + 1, B, H), (T, B, H), or one (B, ...)
    block each when ``step_strides`` are 0 (inference); outputs (T + 1, B, H), step 0 zero.
    """
    steps, batch, four_h = gx.shape
    if gx.stride(2) != 1:
        gx = gx.contiguous()
    packed = _pack(weight_hh.t())  # W_hh^T (H, 4H) in panels
    acts_step, cells_step, tanh_step = step_strides
    done = lib.lstmae_forward(
        steps, batch, four_h // 4, _threads(lib), gx.data_ptr(), gx.stride(0), gx.stride(1), packed.data_ptr(),
        acts.data_ptr(), acts_step, cells.data_ptr(), cells_step, tanh_cells.data_ptr(), tanh_step, outputs.data_ptr(),
    )
    assert done == 0, "lstmae_forward needs AVX2"


def _fused_forward_loop(gx, weight_hh, acts, cells, tanh_cells, outputs) -> None:
    """Fill acts (T, B, 4H), cells (T + 1, B, H; c_{-1} = 0), tanh_cells (T, B, H), outputs (T + 1, B, H; h_{-1} = 0).

    With AVX2 the whole loop runs in C, the batch's rows split between threads there.
    Otherwise per step one torch product and one C call. (Running the rows of
    that per-step loop in two Python threads was slower at batch 32: 4.6 against
    3.3 ms per 40 steps, each step handing the GIL over twice.)
    """
    lib = kernels.library()
    if _whole_loops(lib):
        batch, four_h = acts.shape[1:]
        _whole_forward(lib, gx, weight_hh, acts, cells, tanh_cells, outputs, (batch * four_h, batch * four_h // 4, batch * four_h // 4))
        return
    step = lib.lstmae_forward_step
    steps, batch, four_h = acts.shape
    hidden = four_h // 4
    weight_t = weight_hh.t()  # (H, 4H)
    gx_t, act_t, h_t = gx.unbind(0), acts.unbind(0), outputs.unbind(0)
    gate_bytes, unit_bytes = batch * four_h * _FLOAT, batch * hidden * _FLOAT

    a, c, tc, h = acts.data_ptr(), cells.data_ptr(), tanh_cells.data_ptr(), outputs.data_ptr()
    for t in range(steps):
        torch.addmm(gx_t[t], h_t[t], weight_t, out=act_t[t])  # pre-activations (B, 4H), activated in place
        step(batch, hidden, a + t * gate_bytes, c + t * unit_bytes, c + (t + 1) * unit_bytes,
             tc + t * unit_bytes, h + (t + 1) * unit_bytes)


def _fused_backward_loop(weight_hh, acts, cells, tanh_cells, grad_outputs, grad_gates) -> None:
    """Fill grad_gates (T, B, 4H) from grad_outputs (T, B, H): the whole loop in C (AVX2), else per step one C call and one torch product."""
    lib = kernels.library()
    steps, batch, four_h = acts.shape
    hidden = four_h // 4
    dc = torch.zeros(batch, hidden)  # (B, H): gradient wrt c_t from step t + 1
    if _whole_loops(lib):
        packed = _pack(weight_hh)  # W_hh (4H, H) in panels
        dh = torch.empty(batch, hidden)  # (B, H) scratch
        done = lib.lstmae_backward(
            steps, batch, hidden, _threads(lib), acts.data_ptr(), cells.data_ptr(), tanh_cells.data_ptr(),
            grad_outputs.data_ptr(), packed.data_ptr(), dh.data_ptr(), dc.data_ptr(), grad_gates.data_ptr(),
        )
        assert done == 0, "lstmae_backward needs AVX2"
        return
    step = lib.lstmae_backward_step
    dh = grad_outputs[steps - 1].clone()  # (B, H): gradient wrt h_t, all paths
    gout_t, dgrad_t = grad_outputs.unbind(0), grad_gates.unbind(0)
    gate_bytes, unit_bytes = batch * four_h * _FLOAT, batch * hidden * _FLOAT

    a, c, tc, dg = acts.data_ptr(), cells.data_ptr(), tanh_cells.data_ptr(), grad_gates.data_ptr()
    dh_p, dc_p = dh.data_ptr(), dc.data_ptr()
    for t in range(steps - 1, -1, -1):
        step(batch, hidden, a + t * gate_bytes, c + t * unit_bytes, tc + t * unit_bytes, dh_p, dc_p, dg + t * gate_bytes)
        if t > 0:
            torch.addmm(gout_t[t - 1], dgrad_t[t], weight_hh, out=dh)  # (B, H)


class _FusedRecurrence(torch.autograd.Function):
    """`_Recurrence` with the element-wise work of each step in one C call (float32, CPU)."""

    @staticmethod
    def forward(ctx, gx: torch.Tensor, weight_hh: torch.Tensor) -> torch.Tensor:
        steps, batch, four_h = gx.shape
        hidden = four_h // 4
        acts = torch.empty(steps, batch, four_h)  # activated gates i, f, g, o
        cells = torch.zeros(steps + 1, batch, hidden)  # c_{-1} = 0, c_0 .. c_{T-1}
        tanh_cells = torch.empty(steps, batch, hidden)
        outputs = torch.zeros(steps + 1, batch, hidden)  # h_{-1} = 0, h_0 .. h_{T-1}
        _fused_forward_loop(gx.detach(), weight_hh.detach(), acts, cells, tanh_cells, outputs)
        ctx.save_for_backward(weight_hh, acts, cells, tanh_cells, outputs)
        return outputs[1:]  # (T, B, H)

    @staticmethod
    def backward(ctx, grad_outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        weight_hh, acts, cells, tanh_cells, outputs = ctx.saved_tensors
        steps, batch, four_h = acts.shape
        hidden = four_h // 4
        grad_gates = torch.empty_like(acts)  # (T, B, 4H)
        _fused_backward_loop(weight_hh.detach(), acts, cells, tanh_cells, grad_outputs.contiguous(), grad_gates)
        grad_weight = None
        if ctx.needs_input_grad[1]:
            grad_weight = grad_gates.view(-1, four_h).t() @ outputs[:-1].reshape(-1, hidden)  # (4H, H)
        return grad_gates, grad_weight


def _fused_inference(gx: torch.Tensor, weight_hh: torch.Tensor) -> torch.Tensor:
    """`_FusedRecurrence`'s forward without gradients: one reused (B, 4H) gate buffer, the same bits."""
    lib = kernels.library()
    steps, batch, four_h = gx.shape
    hidden = four_h // 4
    if _whole_loops(lib):
        outputs = torch.zeros(steps + 1, batch, hidden)  # h_{-1} = 0, h_0 .. h_{T-1}
        gates, cell, tanh_c = torch.empty(batch, four_h), torch.zeros(batch, hidden), torch.empty(batch, hidden)
        _whole_forward(lib, gx, weight_hh, gates, cell, tanh_c, outputs, (0, 0, 0))  # one block each, reused
        return outputs[1:]
    step = lib.lstmae_forward_step
    weight_t = weight_hh.t()  # (H, 4H)
    outputs = torch.empty(steps, batch, hidden)  # (T, B, H)
    gates = torch.empty(batch, four_h)
    cell = torch.zeros(batch, hidden)  # updated in place
    tanh_c = torch.empty(batch, hidden)
    h_prev = torch.zeros(batch, hidden)
    g, c, tc, out = gates.data_ptr(), cell.data_ptr(), tanh_c.data_ptr(), outputs.data_ptr()
    unit_bytes = batch * hidden * _FLOAT
    for t, (gx_t, h_t) in enumerate(zip(gx.unbind(0), outputs.unbind(0))):
        torch.addmm(gx_t, h_prev, weight_t, out=gates)
        step(batch, hidden, g, c, c, tc, out + t * unit_bytes)
        h_prev = h_t
    return outputs


def input_projection(layer: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """``W_ih x + b_ih + b_hh`` of an ``nn.LSTM`` layer: (..., in) -> (..., 4H)."""
    bias = layer.bias_ih_l0 + layer.bias_hh_l0
    return torch.nn.functional.linear(x, layer.weight_ih_l0, bias)
