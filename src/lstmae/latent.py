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

import torch

#: Query rows per distance block: bounds memory to CHUNK x n_reference floats.
CHUNK = 2048


def nearest_distances(queries: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Euclidean distance from each query row to its nearest reference row.

    Parameters
    ----------
    queries : Tensor of shape (N, L)
    reference : Tensor of shape (M, L), M >= 1

    Returns
    -------
    Tensor of shape (N,), float32
    """
    queries = queries.float()
    reference = reference.float()
    parts = []
    for first in range(0, queries.shape[0], CHUNK):
        block = queries[first : first + CHUNK]  # (C, L)
        # cdist's matrix-multiply path loses precision for near-equal rows; compute exactly.
        distances = torch.cdist(block, reference, compute_mode="donot_use_mm_for_euclid_dist")  # (C, M)
        parts.append(distances.min(dim=1).values)
    if not parts:
        return torch.zeros(0)
    return torch.cat(parts)
