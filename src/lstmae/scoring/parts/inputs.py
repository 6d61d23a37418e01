"""The input-space distance of a panel's sample: how far it lies from the nearest training sample.

Each sample (T, F), scaled as in training and flattened, against the training
samples (all of them, or evenly spaced ones within `INPUT_REFERENCE_MAX_VALUES`);
a training sample skips itself. On panels of a few dozen training samples this
distance carried most of the combined score (bench/RESULTS-panel.md). Panels only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lstmae.scoring.latent import nearest_distances
from lstmae.scoring.parts.base import INPUT, ScoringSettings, TrainingData
from lstmae.scoring.parts.rows import NearestRow

#: The training samples kept, at most this many values (samples x timesteps x features) in all
#: (64 MB of float32); a larger panel keeps evenly spaced samples.
INPUT_REFERENCE_MAX_VALUES = 1 << 24


def reference_rows(samples: int, width: int) -> torch.Tensor:
    """The training samples the reference keeps: all, or evenly spaced ones within INPUT_REFERENCE_MAX_VALUES."""
    keep = max(1, min(samples, INPUT_REFERENCE_MAX_VALUES // max(width, 1)))
    return torch.linspace(0, samples - 1, keep).round().long() if keep < samples else torch.arange(samples)


class InputDistance(NearestRow):
    """Euclidean distance of each sample to the nearest training sample, in scaled units.

    reference : (M, T * F) float32, the kept training samples, flattened
    """

    name = "input"
    source = INPUT
    needs = "the training samples"
    for_series = False
    applies_to = "compares whole samples of a panel with the training samples"

    def __init__(self, reference: torch.Tensor | None = None) -> None:
        super().__init__(reference)
        self.kept: torch.Tensor | None = None  # the kept samples' indices, for the training samples' own distances

    def fit_reference(self, data: TrainingData, embeddings: torch.Tensor | None) -> None:
        flat = data.scaled.reshape(data.scaled.shape[0], -1)  # (S, T*F): every training sample
        self.kept = reference_rows(*flat.shape)
        self.reference = flat[self.kept].float().contiguous()

    def sample_values(self, scaled: torch.Tensor, seen: torch.Tensor | None) -> np.ndarray:
        flat = scaled.reshape(scaled.shape[0], -1).float()  # (S, T*F)
        exclude = None if seen is None or self.kept is None else (seen, self.kept, 1)
        return nearest_distances(flat, self.prepared, exclude).double().numpy()

    def tensors(self) -> dict[str, torch.Tensor]:
        return {**super().tensors(), "kept": self.kept.contiguous()}

    @classmethod
    def restore(cls, tensors: dict[str, torch.Tensor], fields: dict[str, Any], settings: ScoringSettings) -> "InputDistance":
        part = super().restore(tensors, fields, settings)
        part.kept = tensors["kept"].long() if "kept" in tensors else None  # older files: never trivial matches
        return part

    def fit_level(self, training: np.ndarray, held_out: np.ndarray | None) -> None:
        """The mean leave-one-out distance of the training samples (all of them, not only the held-out part)."""
        self.measured = float(training.mean())
        self.level = max(self.measured, self.level_floor())

    @classmethod
    def from_legacy(cls, tensors: dict[str, torch.Tensor], fields: dict[str, Any], settings: ScoringSettings) -> "InputDistance | None":
        reference = tensors.get("scoring.input_reference")
        if reference is None:
            return None
        if not isinstance(fields.get("input_level"), (int, float)):
            raise ValueError("an input reference but no input level")
        part = cls(reference.float())
        part.level = float(fields["input_level"])
        return part


__all__ = ["INPUT_REFERENCE_MAX_VALUES", "InputDistance", "reference_rows"]
