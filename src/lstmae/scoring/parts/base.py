"""What every score part implements: `ScorePart`, and `ScoringSettings`, the settings every part reads.

A score part measures one way in which a window (a series) or a sample (a panel)
is new: the reconstruction error, the distance of its embedding to the training
embeddings, the distance of the window itself to the training windows, ... Each
part fits what it needs from the one post-training pass (a reference, a level),
gives one value per window or sample, merged onto timesteps, and saves its own
tensors. Inference (`lstmae.scoring.inference`), the scoring state
(`lstmae.scoring.state`), streaming and persistence ask the parts through this
interface; none of them names a part.

Two sources of values:

* ``source = NETWORK``: the part reads each network window's pass (a
  `lstmae.scoring.inference.Chunk`: squared errors, embeddings) and gives values
  per window and step, (B, T, C) for a series; for a panel (B, T, C) or (B, 1, C).
* ``source = INPUT``: the part reads the scaled input alone: windows of its own
  length (`ScorePart.window_length`) on a grid of their own for a series, each
  value counting for the window's steps; or whole samples for a panel.

Shapes: B = windows in a chunk, T = timesteps, F = features, C = the part's
channels, n = timesteps of a series, S = samples of a panel.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from lstmae.scoring.aggregation import spread

NETWORK, INPUT = "network", "input"
#: Smallest level of any part: keeps a part that is ~0 on every held-out window from dividing by 0.
LEVEL_FLOOR = 1e-12
#: A part's level is at least this share of its values' scale (`ScorePart.level_floor`): on a clean or
#: exactly repeating signal the held-out windows lie ~0 from the training ones, and a level of ~0 would
#: turn any later difference into a score of 1e8 or more (the threshold with it).
LEVEL_SHARE = 0.01
#: A measured level under this share of its floor is a clean signal's (`ScorePart.clean`): the fit says so.
CLEAN_SHARE = 0.01


@dataclass(frozen=True)
class ScoringSettings:
    """How scores are computed (the estimator's parameters, "auto" resolved)."""

    scorer: str  # "combined", or the name of one part
    aggregation: str  # "window" or "timestep"
    score_stride: int  # step between scored windows of a series, in [1, timesteps]
    timesteps: int  # window length T
    normalize_errors: bool  # divide each feature's squared error by its training level


@dataclass(frozen=True)
class TrainingData:
    """The training data as the post-training pass sees it.

    scaled : (n, F) series or (S, T, F) panel, float32, in training-scaled units
    fit_rows, held_rows : the rows (samples) trained on and held out, as training split them
    """

    scaled: torch.Tensor
    is_panel: bool
    fit_rows: slice
    held_rows: slice
    settings: ScoringSettings

    @property
    def fitted(self) -> torch.Tensor:
        return self.scaled[self.fit_rows]


class ScorePart(ABC):
    """One part of an anomaly score; see the module docstring. Subclasses set ``name`` and ``source``.

    Attributes
    ----------
    level : float or None
        The part's mean value on held-out training data (`fit_level`): what the
        combined score divides it by. None before fitting, or where a model was
        saved without it.
    """

    #: The name a model file and the weights table (`lstmae.scoring.combination`) know the part by.
    name: ClassVar[str]
    #: NETWORK (from each network window's pass) or INPUT (from the scaled input alone).
    source: ClassVar[str] = NETWORK
    #: What the part is fitted from, for the message when a model lacks it ("the training embeddings").
    needs: ClassVar[str] = "its own reference"
    #: Whether the part applies to long series and to panels of samples, and what it compares, for the
    #: message when it does not ("compares windows of a series with the training windows").
    for_series: ClassVar[bool] = True
    for_panels: ClassVar[bool] = True
    applies_to: ClassVar[str] = "applies to other input"

    def __init__(self) -> None:
        self.level: float | None = None
        self.measured: float | None = None  # the held-out mean before the floor, at fit time (not saved)

    @property
    def from_network(self) -> bool:
        """Whether the part reads the network's windows (NETWORK) rather than the input alone (INPUT)."""
        return self.source == NETWORK

    # ------------------------------------------------------------ shape
    def channels(self, n_features: int) -> int:
        """Values per window step (C): 1 for a distance."""
        return 1

    def window_length(self, timesteps: int) -> int:
        """INPUT parts on a series: the steps of the part's own windows (default: the model's)."""
        return timesteps

    # ------------------------------------------------------------ fitting
    def reference_jobs(self, network: torch.nn.Module, data: TrainingData) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """NETWORK parts: (where, windows (B, T, F)) to encode before the training pass (the embeddings go to
        `fit_reference`), in chunks of `lstmae.scoring.inference.batches`. Default: none."""
        return ()

    def fit_reference(self, data: TrainingData, embeddings: torch.Tensor | None) -> None:
        """Fit what the part compares with (before the training pass); ``embeddings``: of `reference_jobs`."""

    def fit_training(self, merged: np.ndarray) -> None:
        """Fit from the training pass's merged values (n, C) or (S, ., C), before any level (default: nothing)."""

    def fit_level(self, training: np.ndarray, held_out: np.ndarray | None) -> None:
        """The level from the part's values (`values`) on the training data (trivial matches skipped) and on
        the held-out part: by default the held-out mean, at least `level_floor`."""
        source = training if held_out is None else held_out
        self.measured = float(source.mean())
        self.level = max(self.measured, self.level_floor())

    def level_floor(self) -> float:
        """The smallest level this part takes, relative to the scale of its values (after `fit_reference` and
        `fit_training`): `LEVEL_SHARE` of it. Default: `LEVEL_FLOOR`, for values without a scale."""
        return LEVEL_FLOOR

    @property
    def clean(self) -> bool:
        """Whether, at fit, the held-out data lay on the training data: a measured level under `CLEAN_SHARE` of the
        floor (a clean or exactly repeating signal), so that the floor, not the data, set the level."""
        return self.measured is not None and self.measured < CLEAN_SHARE * self.level_floor()

    # ------------------------------------------------------------ values
    def chunk_values(self, chunk: Any, is_panel: bool, seen: torch.Tensor | None) -> np.ndarray:
        """NETWORK parts: the values of one chunk (`lstmae.scoring.inference.Chunk`), (B, T, C) float64 (a panel:
        (B, T, C) or (B, 1, C)). ``seen``: each window's start (sample) in the training data, or
        `lstmae.scoring.seen.UNSEEN` (B,), None when no window is a training window: a training window
        skips the reference rows overlapping it (its trivial matches), as the threshold's pass did."""
        raise NotImplementedError(f"the {self.name} part reads no network windows")

    def window_values(self, windows: torch.Tensor, where: torch.Tensor, seen: torch.Tensor | None) -> torch.Tensor:
        """INPUT parts on a series: one value per window (B,) of windows (B, L, F) starting at ``where`` (B,);
        ``seen`` as in `chunk_values`."""
        raise NotImplementedError(f"the {self.name} part reads no input windows")

    def sample_values(self, scaled: torch.Tensor, seen: torch.Tensor | None) -> np.ndarray:
        """INPUT parts on a panel: one value per sample (S,) of samples (S, T, F); ``seen`` as in `chunk_values`."""
        raise NotImplementedError(f"the {self.name} part reads no samples")

    def values(self, merged: np.ndarray, is_panel: bool, settings: ScoringSettings) -> tuple[np.ndarray, np.ndarray | None]:
        """(the part per timestep (n,) or per sample (S,), per-feature values (n, F) / (S, F) or None) from its
        merged values; a one-channel part by default: the centred mean of ``aggregation="window"``."""
        return spread(merged, merged.shape[0], is_panel, settings.aggregation, settings.timesteps), None

    # ------------------------------------------------------------ files
    def tensors(self) -> dict[str, torch.Tensor]:
        """The fitted tensors to save (names without the part's prefix)."""
        return {}

    def fields(self) -> dict[str, Any]:
        """The fitted JSON values to save (the level included)."""
        return {"level": self.level}

    @classmethod
    def restore(cls, tensors: dict[str, torch.Tensor], fields: dict[str, Any], settings: ScoringSettings) -> "ScorePart":
        """The part as `tensors` and `fields` saved it. Raises KeyError, TypeError or ValueError on bad content."""
        part = cls()
        level = fields.get("level")
        part.level = None if level is None else float(level)
        return part

    @classmethod
    def from_legacy(cls, tensors: dict[str, torch.Tensor], fields: dict[str, Any], settings: ScoringSettings) -> "ScorePart | None":
        """The part from a model file of format 1 (flat field names), or None when that file has no such part."""
        return None

    def attributes(self, levels: dict[str, float | None]) -> dict[str, Any]:
        """Fitted attributes the estimator shows for this part (``latent_reference_``, ...), given every part's level."""
        return {}


__all__ = ["INPUT", "LEVEL_FLOOR", "LEVEL_SHARE", "NETWORK", "ScorePart", "ScoringSettings", "TrainingData"]
