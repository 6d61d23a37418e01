"""Novelty in the input: distance from a window to the nearest training window of the same length, both z-normalised.

The reconstruction error asks "can the decoder rebuild this window?", the
latent distance "has the encoder seen a window like it?". Both miss a single
abnormal cycle in a periodic signal when the network rebuilds it about as well
as a normal one. The nearest-neighbour (discord) distance of the matrix
profile (Yeh et al., ICDM 2016) finds it: each window, z-normalised, is
compared with every z-normalised window of the training data, and its
Euclidean distance to the nearest one is its score. Unlike the matrix profile's
self-join, the reference here is only the training data, so each window is
scored from itself and the fitted reference alone (a stream can do the same).
The windows compared are half the model's (`part_length`), on a grid of their
own at the score stride (`lstmae.scoring.inference.input_pass`), each distance
counted for its own steps.

Each feature of a window is z-normalised on its own, with its standard
deviation floored at `STD_FLOOR` (in the training-scaled units, where each
feature's training standard deviation is 1): a flat stretch is compared as
flat instead of having its noise blown up to unit variance. The distance over
features is the root of the mean squared per-feature distance, divided by the
root of the window length, so it lies in [0, 2] whatever T and F.

Torch, and lstmae's C search on the CPU (`lstmae.backends.kernels`); no numpy or files.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from lstmae.backends import kernels

#: Floor of a window's per-feature standard deviation, in training-scaled units.
STD_FLOOR = 0.05
#: Query windows per distance block: bounds memory to CHUNK x n_reference floats.
CHUNK = 1024
#: Nearest candidates per window by the fast matrix-product distance, whose exact
#: distances are then computed (the product form only ranks: it loses precision
#: for near-equal windows, and a window's distance to itself must be 0), as in `lstmae.scoring.latent`.
CANDIDATES = 8


def part_length(timesteps: int) -> int:
    """Steps of the nearest-window part's windows: half the model's ``timesteps`` (at least 2, at most T).

    Half, not the whole window: chosen by cross-validation over source families
    (bench/RESULTS-quality.md): a shorter stretch is more sharply off when one
    cycle is abnormal.
    """
    return min(timesteps, max(2, timesteps // 2))


@dataclass(frozen=True)
class WindowReference:
    """`reference_windows` prepared once for many small `nearest_window_distances` calls (a stream's updates).

    Passing it instead of the tensor skips the per-call squared norms (O(M x T x F));
    the distances are the same bits.
    """

    rows: torch.Tensor  # (M, L * F) float32
    squared_norms: torch.Tensor  # (M,)
    length: int  # L, the steps of each reference window

    @classmethod
    def of(cls, reference: torch.Tensor, length: int) -> "WindowReference":
        """From `reference_windows` (M, L * F) of windows of ``length`` = L steps."""
        rows = reference.float().contiguous()
        return cls(rows, rows.pow(2).sum(dim=1), int(length))

    @functools.cached_property
    def groups(self) -> kernels.RowGroups:
        """The rows grouped for the C search (`lstmae.backends.kernels.RowGroups`), made at its first use."""
        return kernels.RowGroups.of(self.rows)


def znormalised(windows: torch.Tensor) -> torch.Tensor:
    """Windows (B, T, F) with each feature's mean removed and its (floored) std divided out, float32."""
    x = windows.float()
    centred = x - x.mean(dim=1, keepdim=True)
    std = centred.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(STD_FLOOR)
    return centred / std


def reference_windows(series: torch.Tensor, timesteps: int, stride: int = 1) -> torch.Tensor:
    """The z-normalised windows of a training series (n, F), flattened to (M, T*F).

    Windows start every ``stride`` steps, and the last window (ending at n-1)
    is always one, as `lstmae.data.windows.window_starts` places them.
    """
    last = series.shape[0] - timesteps
    starts = torch.arange(0, last + 1, stride)
    if starts[-1] != last:
        starts = torch.cat([starts, torch.tensor([last])])
    view = series.unfold(0, timesteps, 1)[starts].transpose(1, 2)  # (M, T, F)
    return znormalised(view).reshape(view.shape[0], -1)


def nearest_window_distances(
    windows: torch.Tensor,
    reference: torch.Tensor | WindowReference,
    positions: tuple[torch.Tensor, torch.Tensor, int] | None = None,
) -> torch.Tensor:
    """Distance from each window to its nearest reference window, both z-normalised.

    Parameters
    ----------
    windows : Tensor of shape (B, L, F)
        Windows in training-scaled units.
    reference : Tensor of shape (M, L * F), M >= 1, or its `WindowReference` (of windows of L steps)
        `reference_windows` of the training series.
    positions : (window starts (B,), reference starts (M,), exclusion), optional
        Skip the reference windows starting within ``exclusion`` of the window's
        start (the trivial matches of a training window with itself and its
        overlapping neighbours). A window with none left gets its plain nearest distance.

    Returns
    -------
    Tensor of shape (B,), float32: ``sqrt(min_r |z - r|^2 / (L * F))``. Exact to float32 rounding
    by the C search (`lstmae.backends.kernels.nearest_squared`, on the CPU with lstmae's kernels); by torch
    (a GPU, no kernels), exact unless more than `CANDIDATES` reference windows tie with the
    nearest within its ranking's rounding.
    """
    prepared = reference if isinstance(reference, WindowReference) else WindowReference.of(reference, windows.shape[1])
    if windows.shape[1] != prepared.length:
        raise ValueError(f"windows of {windows.shape[1]} steps against reference windows of {prepared.length}")
    size = windows.shape[1] * windows.shape[2]
    queries = znormalised(windows).reshape(windows.shape[0], -1)  # (B, L*F)
    if kernels.searchable(queries, prepared.rows):  # the C search
        return kernels.nearest_squared(queries, prepared.groups, positions).div(size).sqrt()
    reference, squared_norms = prepared.rows, prepared.squared_norms  # (M, T*F), (M,)
    count = min(CANDIDATES, reference.shape[0])
    parts = []
    for first in range(0, queries.shape[0], CHUNK):
        block = queries[first : first + CHUNK]  # (C, T*F)
        ranking = torch.addmm(squared_norms, block, reference.t(), alpha=-2)  # (C, M): |q - r|^2 - |q|^2
        if positions is not None:
            starts, reference_starts, exclusion = positions
            excluded = (starts[first : first + CHUNK, None] - reference_starts[None, :]).abs() < exclusion  # (C, M)
            excluded &= ~excluded.all(dim=1, keepdim=True)  # nothing left: compare with every window
            ranking.masked_fill_(excluded, float("inf"))
        candidates = ranking.topk(count, dim=1, largest=False).indices  # (C, k)
        exact = (block[:, None, :] - reference[candidates]).pow(2).sum(dim=2)  # (C, k)
        if positions is not None:
            exact.masked_fill_(excluded.gather(1, candidates), float("inf"))  # fewer than k windows left
        parts.append(exact.min(dim=1).values.div(size).sqrt())
    if not parts:
        return torch.zeros(0)
    return torch.cat(parts)
