"""The nearest-window distance: how far a stretch of the series lies from every stretch of the training series.

Both z-normalised, per feature (`lstmae.scoring.neighbours` has the search and the
reasons). The windows compared are half the model's (`part_length`), on a grid of
their own at the score stride, each distance counting for its own steps; the
reference is the training series' windows of that length (every one up to
`NEIGHBOUR_REFERENCE_MAX`, else evenly spaced ones). With ``features="continuous"``
(the combined score of a series of several features,
`lstmae.scoring.combination.SERIES_OPTIONS`) only the features with more than two
distinct training values are compared (`continuous_columns`), not 0/1 flags.
Series only: a panel's samples are compared whole by the input-space part.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from lstmae.data.windows import n_windows, window_starts
from lstmae.scoring.neighbours import WindowReference, nearest_window_distances, part_length, reference_windows
from lstmae.scoring.parts.base import INPUT, LEVEL_SHARE, ScorePart, ScoringSettings, TrainingData

#: Training windows each scored window is compared with: every one up to this many, else evenly
#: spaced ones. Each scored window is compared with all of them (L x F values each), so this bounds
#: the part's cost per window, which is what a stream's update pays (bench/stream.py); the quality at
#: this cap was checked by bench/quality.py --cv (bench/RESULTS-quality.md).
NEIGHBOUR_REFERENCE_MAX = 8_192


#: Which features the part compares: every one, or the continuous ones (`continuous_columns`).
FEATURE_CHOICES = ("all", "continuous")


def continuous_columns(series: torch.Tensor) -> list[int] | None:
    """The columns of a series (n, F) with more than two distinct values (not constants or flags), or None
    (compare every column) when there are none or all of them are."""
    chosen = [j for j in range(series.shape[1]) if torch.unique(series[:, j]).numel() > 2]
    return chosen if 0 < len(chosen) < series.shape[1] else None


def reference_stride(n: int, length: int) -> int:
    """Stride of the reference windows of ``length`` steps over ``n`` training rows: at most NEIGHBOUR_REFERENCE_MAX windows."""
    return max(1, -(-n_windows(n, length, 1) // NEIGHBOUR_REFERENCE_MAX))


class Neighbours(ScorePart):
    """Distance of each window of ``length`` steps to the nearest z-normalised training window.

    series : (m, F') float32, the scaled training series whose windows are the reference: its ``columns``
    length : the steps of each window (`part_length`; the model's whole window in files saved before it was half)
    features : "all" or "continuous", the rule `fit_reference` chooses the columns by (`FEATURE_CHOICES`)
    columns : the features compared (a list of column numbers), fitted; None: every one (files saved before it existed)
    """

    name = "neighbours"
    source = INPUT
    needs = "the training windows"
    for_panels = False
    applies_to = "compares windows of a series with the training windows"

    def __init__(self, series: torch.Tensor | None = None, length: int = 0, features: str = "all") -> None:
        super().__init__()
        if features not in FEATURE_CHOICES:
            raise ValueError(f"features must be one of {FEATURE_CHOICES}, got {features!r}")
        self.series = series
        self.length = length
        self.features = features
        self.columns: list[int] | None = None
        self.positions: torch.Tensor | None = None  # the reference windows' starts, for the training data's own windows
        self.radius = 1

    def window_length(self, timesteps: int) -> int:
        return self.length

    @functools.cached_property
    def prepared(self) -> WindowReference:
        """The z-normalised reference windows (M, L * F), every `reference_stride`-th, prepared once."""
        stride = reference_stride(self.series.shape[0], self.length)
        return WindowReference.of(reference_windows(self.series, self.length, stride), self.length)

    def fit_reference(self, data: TrainingData, embeddings: torch.Tensor | None) -> None:
        timesteps = data.settings.timesteps
        self.columns = continuous_columns(data.scaled) if self.features == "continuous" else None
        fitted = data.fitted if self.columns is None else data.fitted[:, self.columns]
        self.series, self.length = fitted.contiguous(), part_length(timesteps)
        self._place(timesteps)

    def _place(self, timesteps: int) -> None:
        """The reference windows' starts, and the trivial-match radius: a training window skips the reference
        windows starting within a model window of it."""
        rows = self.series.shape[0]
        self.positions = torch.from_numpy(window_starts(rows, self.length, reference_stride(rows, self.length)))
        self.radius = timesteps

    def level_floor(self) -> float:
        """`LEVEL_SHARE` of the distances' scale: they lie in [0, 2], about 1.4 between unrelated noisy windows."""
        return LEVEL_SHARE

    def window_values(self, windows: torch.Tensor, where: torch.Tensor, seen: torch.Tensor | None) -> torch.Tensor:
        exclude = None if seen is None else (seen, self.positions, self.radius)
        if self.columns is not None:
            windows = windows[:, :, self.columns]
        return nearest_window_distances(windows, self.prepared, exclude)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"series": self.series.contiguous()}

    def fields(self) -> dict[str, Any]:
        return {**super().fields(), "length": self.length, "features": self.features, "columns": self.columns}

    @classmethod
    def restore(cls, tensors: dict[str, torch.Tensor], fields: dict[str, Any], settings: ScoringSettings) -> "Neighbours":
        part = super().restore(tensors, fields, settings)
        part.series = tensors["series"].float()
        part.length = int(fields["length"])
        columns = fields.get("columns")  # absent: saved when the part compared every feature
        part.columns = None if columns is None else [int(j) for j in columns]
        part.features = str(fields.get("features", "all"))
        if part.features not in FEATURE_CHOICES or (part.columns is not None and len(part.columns) != part.series.shape[1]):
            raise ValueError("the nearest-window part's columns do not match its series")
        part._place(settings.timesteps)
        return part

    @classmethod
    def from_legacy(cls, tensors: dict[str, torch.Tensor], fields: dict[str, Any], settings: ScoringSettings) -> "Neighbours | None":
        series = tensors.get("scoring.neighbour_reference")
        if series is None:
            return None
        if fields.get("neighbour_level_") is None:
            raise ValueError("nearest-neighbour reference but no neighbour level")
        length = fields.get("neighbour_length_")  # None: saved before the windows were half the model's
        part = cls(series.float(), settings.timesteps if length is None else int(length))
        part._place(settings.timesteps)
        part.level = float(fields["neighbour_level_"])
        return part


__all__ = ["FEATURE_CHOICES", "NEIGHBOUR_REFERENCE_MAX", "Neighbours", "continuous_columns", "reference_stride"]
