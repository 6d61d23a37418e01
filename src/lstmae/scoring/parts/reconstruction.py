"""The reconstruction error: how badly the decoder rebuilds each window, step and feature.

A timestep's value is the mean, over the windows that cover it, of that window's
squared error at that step (in the units the model was trained in), each feature
divided by its training level when ``normalize_errors``; then the centred mean
over a window (``aggregation="window"``) and the mean over features, or their
maximum (``features="max"``: the combined score of a series of several features,
`lstmae.scoring.combination.SERIES_OPTIONS`). A panel's sample: the mean over its
timesteps and features. It is the one part that gives per-feature values
(``top_features``, the same whichever ``features``), so every model fits it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lstmae.scoring.aggregation import CENTRED, centred_mean
from lstmae.scoring.parts.base import LEVEL_SHARE, NETWORK, ScorePart, ScoringSettings

#: normalize_errors: floor of a feature's error level, relative to the largest feature's.
FEATURE_LEVEL_FLOOR = 1e-3
#: Floor of a feature's error level and of the part's level without normalize_errors: a mean squared
#: error in training-scaled units (each feature's training std is 1), so an RMS error of 1% of the std.
#: A clean signal rebuilt almost exactly would otherwise make every later error look 1e6 times the usual.
ERROR_FLOOR = LEVEL_SHARE ** 2
#: How the per-feature values make the part's one value per timestep (sample): their mean or their maximum.
FEATURE_REDUCTIONS = ("mean", "max")


class Reconstruction(ScorePart):
    """Squared reconstruction error per step and feature; ``feature_levels`` (F,): each feature's mean
    squared training error, floored (None in files saved before it existed); ``features``: "mean" or "max",
    how the per-feature values make one (`FEATURE_REDUCTIONS`; "mean" in files saved before it existed)."""

    name = "reconstruction"
    source = NETWORK
    needs = "the decoder's output"

    def __init__(self, feature_levels: np.ndarray | None = None, features: str = "mean") -> None:
        super().__init__()
        if features not in FEATURE_REDUCTIONS:
            raise ValueError(f"features must be one of {FEATURE_REDUCTIONS}, got {features!r}")
        self.feature_levels = feature_levels
        self.features = features

    def channels(self, n_features: int) -> int:
        return n_features

    def chunk_values(self, chunk: Any, is_panel: bool, seen: torch.Tensor | None) -> np.ndarray:
        return chunk.squared  # (B, T, F)

    def fit_training(self, merged: np.ndarray) -> None:
        per_feature = merged.reshape(-1, merged.shape[-1]).mean(axis=0)  # (F,)
        self.feature_levels = np.maximum(per_feature + FEATURE_LEVEL_FLOOR * float(per_feature.max()), ERROR_FLOOR)

    def level_floor(self) -> float:
        """`ERROR_FLOOR`: the level of errors in training-scaled units (normalised errors are about 1, far above it)."""
        return ERROR_FLOOR

    def normalized(self, errors: np.ndarray, settings: ScoringSettings) -> np.ndarray:
        """Squared errors (..., F) over each feature's level, when the settings ask for it."""
        if settings.normalize_errors and self.feature_levels is not None:
            return errors / self.feature_levels  # broadcast over the last axis (F)
        return errors

    def values(self, merged: np.ndarray, is_panel: bool, settings: ScoringSettings) -> tuple[np.ndarray, np.ndarray]:
        errors = self.normalized(merged, settings)
        if is_panel:
            per = errors.mean(axis=1)  # (S, F)
        elif settings.aggregation in CENTRED:
            per = centred_mean(errors, settings.timesteps)  # (n, F)
        else:
            per = errors  # (n, F)
        return (per.max(axis=1) if self.features == "max" else per.mean(axis=1)), per

    def tensors(self) -> dict[str, torch.Tensor]:
        if self.feature_levels is None:
            return {}
        return {"feature_levels": torch.from_numpy(np.asarray(self.feature_levels, dtype=np.float64))}

    def fields(self) -> dict[str, Any]:
        return {**super().fields(), "features": self.features}

    @classmethod
    def restore(cls, tensors: dict[str, torch.Tensor], fields: dict[str, Any], settings: ScoringSettings) -> "Reconstruction":
        part = super().restore(tensors, fields, settings)
        levels = tensors.get("feature_levels")
        part.feature_levels = None if levels is None else levels.numpy().astype(np.float64)
        features = fields.get("features", "mean")  # absent: saved when the part was always the mean
        if features not in FEATURE_REDUCTIONS:
            raise ValueError(f"unknown reconstruction features {features!r}")
        part.features = features
        return part

    @classmethod
    def from_legacy(cls, tensors: dict[str, torch.Tensor], fields: dict[str, Any], settings: ScoringSettings) -> "Reconstruction":
        levels = tensors.get("scoring.feature_levels")
        part = cls(None if levels is None else levels.numpy().astype(np.float64))
        if tensors.get("scoring.latent_reference") is not None:  # format 1 kept this level beside the latent one
            part.level = float(fields["score_levels_"][0])
        return part

    def attributes(self, levels: dict[str, float | None]) -> dict[str, Any]:
        return {} if self.feature_levels is None else {"feature_levels_": self.feature_levels}


__all__ = ["ERROR_FLOOR", "FEATURE_LEVEL_FLOOR", "FEATURE_REDUCTIONS", "Reconstruction"]
