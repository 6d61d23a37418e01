"""The latent distance: how far a window's embedding lies from the nearest training embedding.

The reconstruction error asks "can the decoder rebuild this window?"; this part
asks "has the encoder seen a window like this before?" (`lstmae.scoring.latent`
has the search). The reference is the embeddings of the windows trained on
(every one up to `LATENT_REFERENCE_MAX`, else evenly spaced ones); a training
window's own distance skips the reference windows overlapping it, as a matrix
profile skips trivial matches. A panel's sample: its embedding against the
training samples' (itself skipped).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from lstmae.data.windows import n_windows, window_starts
from lstmae.scoring import inference
from lstmae.scoring.combination import BASE_PART
from lstmae.scoring.latent import nearest_distances
from lstmae.scoring.parts.base import NETWORK, ScoringSettings, TrainingData
from lstmae.scoring.parts.rows import NearestRow

#: Training embeddings kept for the latent distance: every training window up to
#: this many, else evenly spaced ones. Denser is better: on the dev benchmark,
#: the embeddings of every timesteps_ // 8-th window (as scored) instead of every
#: window lost up to 0.5 VUS-PR on narrow anomalies (bench/RESULTS.md, issue 4).
LATENT_REFERENCE_MAX = 20_000


def reference_windows(n: int, is_panel: bool, timesteps: int) -> tuple[int, torch.Tensor, int]:
    """(stride of the reference windows, their positions: window starts or sample indices, the exclusion radius)
    over ``n`` training rows (samples)."""
    if is_panel:
        return 1, torch.arange(n), 1  # every sample
    if n < timesteps:
        return 1, torch.zeros(0, dtype=torch.long), timesteps
    stride = max(1, -(-n_windows(n, timesteps, 1) // LATENT_REFERENCE_MAX))
    return stride, torch.from_numpy(window_starts(n, timesteps, stride)), timesteps


class Latent(NearestRow):
    """Distance of each window's (sample's) embedding to the nearest training embedding.

    reference : (M, L) float32 training embeddings
    positions : (M,) their window starts or sample indices, and ``radius``: the trivial-match
        radius, for the training data's own windows (`lstmae.scoring.seen`)
    """

    name = "latent"
    source = NETWORK
    needs = "the training embeddings"

    def __init__(self, reference: torch.Tensor | None = None) -> None:
        super().__init__(reference)
        self.positions: torch.Tensor | None = None
        self.radius = 1

    def reference_jobs(self, network: torch.nn.Module, data: TrainingData) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        fitted = data.fitted
        stride, self.positions, self.radius = reference_windows(fitted.shape[0], data.is_panel, data.settings.timesteps)
        return inference.batches(network, fitted, data.is_panel, stride)

    def fit_reference(self, data: TrainingData, embeddings: torch.Tensor | None) -> None:
        self.reference = embeddings  # (M, L)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {**super().tensors(), "positions": self.positions.contiguous()}

    def fields(self) -> dict[str, Any]:
        return {**super().fields(), "radius": self.radius}

    @classmethod
    def restore(cls, tensors: dict[str, torch.Tensor], fields: dict[str, Any], settings: ScoringSettings) -> "Latent":
        part = super().restore(tensors, fields, settings)
        if "positions" in tensors:  # a file saved without them: scored windows are never trivial matches
            part.positions, part.radius = tensors["positions"].long(), int(fields["radius"])
        return part

    def chunk_values(self, chunk: Any, is_panel: bool, seen: torch.Tensor | None) -> np.ndarray:
        exclude = None if seen is None or self.positions is None else (seen, self.positions, self.radius)
        distance = nearest_distances(chunk.embedding.float(), self.prepared, exclude).double()  # (B,)
        steps = 1 if is_panel else chunk.squared.shape[1]
        return distance[:, None, None].expand(-1, steps, 1).numpy()  # (B, T, 1) or (B, 1, 1)

    @classmethod
    def from_legacy(cls, tensors: dict[str, torch.Tensor], fields: dict[str, Any], settings: ScoringSettings) -> "Latent | None":
        reference = tensors.get("scoring.latent_reference")
        if reference is None:
            return None
        if fields.get("score_levels_") is None:
            raise ValueError("latent reference embeddings but no score levels")
        part = cls(reference.float())
        part.level = float(fields["score_levels_"][1])
        return part

    def attributes(self, levels: dict[str, float | None]) -> dict[str, Any]:
        shown: dict[str, Any] = {"latent_reference_": self.reference}
        if self.level is not None and levels.get(BASE_PART) is not None:
            shown["score_levels_"] = (levels[BASE_PART], self.level)
        return shown


__all__ = ["LATENT_REFERENCE_MAX", "Latent", "reference_windows"]
