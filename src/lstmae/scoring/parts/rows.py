"""What the parts that compare rows share: a reference of rows, prepared once, saved as one tensor.

The latent part compares each window's embedding with the training embeddings,
the input-space part each panel sample (flattened) with the training samples;
both search the nearest row of their ``reference`` (`lstmae.scoring.latent`).
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from lstmae.scoring.latent import CentredReference
from lstmae.scoring.parts.base import LEVEL_FLOOR, LEVEL_SHARE, ScorePart, ScoringSettings


class NearestRow(ScorePart):
    """A part whose value is the distance to the nearest row of ``reference`` (M, D) float32."""

    def __init__(self, reference: torch.Tensor | None = None) -> None:
        super().__init__()
        self.reference = reference

    @functools.cached_property
    def prepared(self) -> CentredReference:
        """The reference prepared once for every pass and stream update (the same distances, bit for bit)."""
        return CentredReference.of(self.reference)

    def level_floor(self) -> float:
        """`LEVEL_SHARE` of the reference's spread: the root mean squared distance of its rows to their mean."""
        spread = float(self.prepared.squared_norms.double().mean().sqrt()) if self.reference is not None else 0.0
        return max(LEVEL_SHARE * spread, LEVEL_FLOOR)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"reference": self.reference.contiguous()}

    @classmethod
    def restore(cls, tensors: dict[str, torch.Tensor], fields: dict[str, Any], settings: ScoringSettings) -> "NearestRow":
        part = super().restore(tensors, fields, settings)
        part.reference = tensors["reference"].float()
        return part


__all__ = ["NearestRow"]
