"""Novelty in the encoder's output: distance from a window's embedding to the nearest training embedding.

The reconstruction error asks "can the decoder rebuild this window?". The
latent distance asks "has the encoder seen a window like this before?": each
window's embedding (the bottleneck vector of the "repeat" design) is compared
with the embeddings of the training windows, and its Euclidean distance to the
nearest one is its score. A beat of an unusual shape in an ECG can be rebuilt
about as (im)precisely as a normal one, yet land far from every normal beat in
the latent space.

Torch only, no numpy or files.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from lstmae.backends import kernels

#: Query rows per distance block: bounds memory to CHUNK x n_reference floats.
CHUNK = 2048
#: Nearest candidates per query by the fast matrix-product distance, whose
#: exact distances are then computed: the product form loses precision for
#: near-equal rows (cancellation), so it only ranks; the distance returned is exact.
CANDIDATES = 16


@dataclass(frozen=True)
class CentredReference:
    """Reference rows prepared once for many small `nearest_distances` calls (a stream scoring a few windows at a time).

    Passing it instead of the tensor skips the per-call centring and norms (O(M x L));
    the distances are the same bits.
    """

    centre: torch.Tensor  # (L,) the reference mean
    rows: torch.Tensor  # (M, L) reference rows minus the centre
    squared_norms: torch.Tensor  # (M,)

    @classmethod
    def of(cls, reference: torch.Tensor) -> "CentredReference":
        centre = reference.float().mean(dim=0)
        rows = (reference.float() - centre).contiguous()
        return cls(centre, rows, rows.pow(2).sum(dim=1))

    @functools.cached_property
    def groups(self) -> kernels.RowGroups:
        """The rows grouped for the C search (`lstmae.backends.kernels.RowGroups`), made at its first use."""
        return kernels.RowGroups.of(self.rows)


def nearest_distances(
    queries: torch.Tensor,
    reference: torch.Tensor | CentredReference,
    positions: tuple[torch.Tensor, torch.Tensor, int] | None = None,
) -> torch.Tensor:
    """Euclidean distance from each query row to its nearest reference row.

    On the CPU with lstmae's C kernels, `lstmae.backends.kernels.nearest_squared` searches:
    every pair's distance summed directly, exact to float32 rounding. Elsewhere (a GPU,
    no kernels) torch does, as follows.
    The reference rows are ranked by ``|r|^2 - 2 q.r`` (one matrix product per
    block of queries: the fast part; both sides centred on the reference mean,
    which shrinks the norms and so the rounding), and the exact distance to each
    of the `CANDIDATES` best-ranked rows is computed; the smallest is returned.
    That is the exact nearest distance unless more than `CANDIDATES` rows tie
    with the nearest within the ranking's rounding (about 1e-6 of the largest
    squared norm): then its square is too large by at most that much.

    Parameters
    ----------
    queries : Tensor of shape (N, L)
    reference : Tensor of shape (M, L), M >= 1, or its `CentredReference`
    positions : (query positions (N,), reference positions (M,), exclusion), optional
        Skip the reference rows whose position is within ``exclusion`` of the
        query's (``|p_q - p_r| < exclusion``): the trivial matches of a training
        window with itself and the windows overlapping it, as a matrix profile
        excludes them. A query with no row left gets its plain nearest distance.

    Returns
    -------
    Tensor of shape (N,), float32
    """
    prepared = reference if isinstance(reference, CentredReference) else CentredReference.of(reference)
    queries = queries.float() - prepared.centre
    if kernels.searchable(queries, prepared.rows):  # the C search
        return kernels.nearest_squared(queries, prepared.groups, positions).sqrt()
    reference, squared_norms = prepared.rows, prepared.squared_norms  # (M, L), (M,)
    count = min(CANDIDATES, reference.shape[0])
    parts = []
    for first in range(0, queries.shape[0], CHUNK):
        block = queries[first : first + CHUNK]  # (C, L)
        ranking = torch.addmm(squared_norms, block, reference.t(), alpha=-2)  # (C, M): |q - r|^2 - |q|^2
        excluded = None
        if positions is not None:
            query_at, reference_at, exclusion = positions
            excluded = (query_at[first : first + CHUNK, None] - reference_at[None, :]).abs() < exclusion  # (C, M)
            ranking.masked_fill_(excluded, float("inf"))
        candidates = ranking.topk(count, dim=1, largest=False).indices  # (C, k)
        exact = (block[:, None, :] - reference[candidates]).pow(2).sum(dim=2)  # (C, k)
        if excluded is not None:
            exact.masked_fill_(excluded.gather(1, candidates), float("inf"))  # fewer than k rows left
        nearest = exact.min(dim=1).values
        alone = excluded.all(dim=1) if excluded is not None else None
        if alone is not None and bool(alone.any()):
            nearest[alone] = nearest_distances(block[alone], reference).pow(2)  # nothing left: plain nearest
        parts.append(nearest.sqrt())
    if not parts:
        return torch.zeros(0)
    return torch.cat(parts)
