"""What scoring needs after training, as one object, built in one pass over the training data.

`ScoringState` holds the scaler, the fitted score parts (`lstmae.scoring.parts`:
each with its reference and level), the weights of the combined score, the
threshold and the scoring settings resolved at fit. With a trained network it
scores new data (`ScoringState.score`) without the estimator, so a streaming
scorer or a fleet worker can reuse it; `to_tensors` / `from_tensors` write it
and read it back as one unit.

Data flows one way: scaled windows -> `lstmae.scoring.inference` (each part's
merged values) -> `ScorePart.values` (per timestep or sample) ->
`lstmae.scoring.combination.Combination` -> scores. Every part of a series'
score is computed per window from that window and this state alone, so a
stream can score window by window.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from lstmae.data.scaling import transform
from lstmae.errors import ParameterError
from lstmae.params import n_train
from lstmae.scoring import aggregation, combination, inference
from lstmae.scoring.combination import Combination, combination_for, fitted_parts, kind_options, kind_weights, resolve_scorer
from lstmae.scoring.parts import PARTS, ScorePart, ScoringSettings, TrainingData, part_class
from lstmae.scoring.seen import Locator, TrainingRows
from lstmae.scoring.thresholds import fit_threshold

#: score_stride="auto": about this many scored windows cover each timestep.
SCORE_WINDOWS_PER_STEP = 8
#: How a model file names a part's tensors: ``part.<name>.<tensor>``.
PART_PREFIX = "part.{}."
#: How a model file names the training rows' fingerprints (`lstmae.scoring.seen.TrainingRows`).
TRAINING_ROWS = "training.rows"


def resolve_settings(
    scorer: str, architecture: str, score_stride: int | str, aggregation: str, timesteps: int, normalize_errors: bool
) -> ScoringSettings:
    """Settings from an estimator's parameters: scorer "auto" as `lstmae.scoring.combination.resolve_scorer`
    says; score_stride "auto" is timesteps // SCORE_WINDOWS_PER_STEP (at least 1)."""
    step = max(1, timesteps // SCORE_WINDOWS_PER_STEP) if score_stride == "auto" else score_stride
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 1 <= step <= timesteps:
        raise ParameterError(f"score_stride must be 'auto' or an integer in [1, timesteps={timesteps}], got {score_stride!r}.")
    return ScoringSettings(resolve_scorer(scorer, architecture), aggregation, int(step), timesteps, bool(normalize_errors))


@dataclass(frozen=True, eq=False)
class ScoringState:
    """The fitted scoring state of a model (everything but the network's weights).

    scaler_mean, scaler_scale : (F,) float64
    parts : the fitted score parts, the base part (`lstmae.scoring.combination.BASE_PART`) first
    weights : {part name: weight} of scorer="combined", as fitted (the weights table's row for this input)
    threshold : float, the score above which a timestep (or sample) is anomalous
    settings : the settings the state was fitted with
    training : the training rows' fingerprints (`lstmae.scoring.seen`), None in older files: scored
    windows that are training windows are scored leave-self-out, as the threshold saw them
    """

    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    parts: tuple[ScorePart, ...]
    weights: dict[str, float]
    threshold: float
    settings: ScoringSettings
    training: TrainingRows | None = None

    def scale(self, values: np.ndarray) -> torch.Tensor:
        """Values (n, F) or (S, T, F) in the units the network was trained in, float32."""
        return torch.from_numpy(transform(values, self.scaler_mean, self.scaler_scale))

    def part(self, name: str) -> ScorePart | None:
        """The fitted part called ``name``, or None."""
        return next((part for part in self.parts if part.name == name), None)

    @property
    def levels(self) -> dict[str, float | None]:
        """{part name: its level}, in the parts' order."""
        return {part.name: part.level for part in self.parts}

    def combination(self, settings: ScoringSettings) -> Combination:
        """How ``settings.scorer`` makes one score of this state's parts."""
        needs = part_class(settings.scorer).needs if settings.scorer != "combined" else ""
        return combination_for(settings.scorer, self.weights, self.levels, needs)

    def parts_for(self, settings: ScoringSettings) -> list[ScorePart]:
        """The parts a scorer reads: the base part (per-feature scores), then those the score weighs."""
        used = {name for name, weight in self.combination(settings).terms if weight}
        return [part for number, part in enumerate(self.parts) if number == 0 or part.name in used]

    def score(
        self, network: torch.nn.Module, values: np.ndarray, is_panel: bool, settings: ScoringSettings | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores (n,) or (S,), per-feature reconstruction scores (n, F) or (S, F)) of ``values`` (n, F) or (S, T, F)."""
        settings = self.settings if settings is None else settings
        parts = self.parts_for(settings)
        scaled = self.scale(values)
        merged = inference.parts_pass(network, scaled, is_panel, settings.score_stride, parts, self.locate(scaled))
        return self.scores_of(merged, is_panel, settings)

    def locate(self, scaled: torch.Tensor) -> Locator | None:
        """Where the training windows are in scaled data (n, F) or (S, T, F), for the parts; None without fingerprints."""
        return None if self.training is None else self.training.locate(scaled)

    def seen_rows(self, values: np.ndarray) -> np.ndarray:
        """Which timesteps (samples) of ``values`` (n, F) or (S, T, F) lie in a training window: (n,) or (S,) bool."""
        if self.training is None:
            return np.zeros(values.shape[0], dtype=bool)
        return self.training.seen_rows(self.scale(values), self.settings.timesteps)

    def scores_of(self, merged: dict[str, np.ndarray], is_panel: bool, settings: ScoringSettings) -> tuple[np.ndarray, np.ndarray]:
        """(scores, per-feature scores) of the parts' merged values {name: (n, C) or (S, ., C)} (`parts_pass`)."""
        values = {part.name: part.values(merged[part.name], is_panel, settings) for part in self.parts if part.name in merged}
        scores, per = self.combine(values, settings)
        return aggregation.peak(scores, is_panel, settings.aggregation, settings.timesteps), per

    def combine(self, values: dict[str, tuple[np.ndarray, np.ndarray | None]], settings: ScoringSettings) -> tuple[np.ndarray, np.ndarray]:
        """(scores, per-feature scores) from each part's (values, per-feature values) (`ScorePart.values`)."""
        per = next(per for _, per in values.values() if per is not None)
        return self.combination(settings).score({name: value for name, (value, _) in values.items()}, self.levels), per

    def attributes(self) -> dict[str, Any]:
        """The fitted attributes the estimator shows for its parts (``feature_levels_``, ``latent_reference_``, ...)."""
        shown: dict[str, Any] = {}
        for part in self.parts:
            shown.update(part.attributes(self.levels))
        return shown

    # ------------------------------------------------------------- files
    def to_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON-able fields) as stored in a model file; `from_tensors` reads them back."""
        tensors = {
            "scaler.mean": torch.from_numpy(np.asarray(self.scaler_mean, dtype=np.float64)),
            "scaler.scale": torch.from_numpy(np.asarray(self.scaler_scale, dtype=np.float64)),
        }
        for part in self.parts:
            tensors.update({PART_PREFIX.format(part.name) + name: tensor for name, tensor in part.tensors().items()})
        if self.training is not None:
            tensors[TRAINING_ROWS] = self.training.tensor()
        fields = {
            "threshold_": self.threshold,
            "parts": [{"name": part.name, **part.fields()} for part in self.parts],
            "weights": dict(self.weights),
            "scoring_settings": {field: getattr(self.settings, field) for field in ScoringSettings.__dataclass_fields__},
        }
        return tensors, fields

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], fields: dict[str, Any], settings: ScoringSettings) -> "ScoringState":
        """The state from a model file's tensors and fitted fields; ``settings`` where the file has none (older files).

        Reads both layouts: the parts by name (format 2) and the flat fields of format 1.
        Raises KeyError, TypeError or ValueError on missing or inconsistent content.
        """
        stored = fields.get("scoring_settings")
        settings = settings if stored is None else ScoringSettings(**stored)
        if "parts" in fields:
            parts = []
            for entry in fields["parts"]:
                prefix = PART_PREFIX.format(entry["name"])
                own = {name[len(prefix):]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}
                parts.append(part_class(entry["name"]).restore(own, entry, settings))
            weights = {str(name): float(weight) for name, weight in fields["weights"].items()}
        else:  # format 1: each part finds its own flat fields
            parts = [found for found in (cls.from_legacy(tensors, fields, settings) for cls in PARTS.values()) if found is not None]
            weights = combination.format1_weights(fields.get("combined_weights_"), [part.name for part in parts])
        if not parts or parts[0].name != combination.BASE_PART:
            raise ValueError(f"the scoring state's first part is not {combination.BASE_PART!r}")
        return cls(
            scaler_mean=tensors["scaler.mean"].numpy().astype(np.float64),
            scaler_scale=tensors["scaler.scale"].numpy().astype(np.float64),
            parts=tuple(parts),
            weights=weights,
            threshold=float(fields["threshold_"]),
            settings=settings,
            training=TrainingRows.from_tensor(tensors[TRAINING_ROWS]) if TRAINING_ROWS in tensors else None,
        )


# ------------------------------------------------------ the post-training pass
def fit_state(
    network: torch.nn.Module,
    values: np.ndarray,
    is_panel: bool,
    scaler: tuple[np.ndarray, np.ndarray],
    settings: ScoringSettings,
    validation_split: float,
    threshold: float | str,
    contamination: float | None,
    weights: dict[str, float] | None = None,
) -> ScoringState:
    """The whole scoring state from the trained network and the training data, in one pass.

    The parts are the scorer's (`lstmae.scoring.combination.fitted_parts`; ``weights``:
    scorer="combined"'s weights, default the weights table's row for this input, whose nearest-window weight
    then follows that part's coverage, `lstmae.scoring.combination.covered_weights`), each made
    with the options table's row for this input (`lstmae.scoring.combination.kind_options`). One
    `lstmae.scoring.inference.run` over the training data runs, in this order: the
    encoder over the windows the parts compare with (`ScorePart.reference_jobs`: the
    latent reference), the whole network over the scored windows of all the training
    data (each part's values there, trivial matches skipped: feature levels and the
    threshold's scores) and, when the score weighs several parts, over the scored
    windows of the held-out part (each part's level). Parts that read only the input
    run beside it (`lstmae.scoring.inference.input_pass`). The chunks are the ones
    separate passes would run, so the result is bit-identical to them.

    Parameters
    ----------
    values : (n, F) or (S, T, F), the training data in its units
    scaler : (mean, scale) fitted on ``values``
    validation_split : the share held out during training (the last windows)
    threshold, contamination : the threshold rule (`lstmae.scoring.thresholds.fit_threshold`)
    """
    table_row = weights is None  # the weights table's row: the nearest-window part's weight follows its coverage
    weights = kind_weights(is_panel, values.shape[-1]) if table_row else dict(weights)
    options = kind_options(settings.scorer, is_panel, values.shape[-1])
    parts = [_new_part(name, settings.scorer, is_panel, options.get(name, {})) for name in fitted_parts(settings.scorer, weights)]
    state = ScoringState(*scaler, tuple(parts), weights, float("nan"), settings)
    scaled = state.scale(values)
    state = replace(state, training=TrainingRows.of(scaled))
    fit_rows, held_rows = training_split(scaled.shape[0], is_panel, settings.timesteps, validation_split)
    data = TrainingData(scaled, is_panel, fit_rows, held_rows, settings)
    leveled = len(parts) > 1  # the score weighs several parts: each over its level on held-out data
    held_out = scaled[held_rows] if leveled else scaled[:0]
    stride = settings.score_stride

    references = [(part, list(part.reference_jobs(network, data))) for part in parts]
    for part, jobs in references:
        if not jobs:
            part.fit_reference(data, None)
    n_reference = sum(len(jobs) for _, jobs in references)
    owners = [part for part, jobs in references for _ in jobs]  # the part each reference chunk is for

    def all_jobs() -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
        for _, jobs in references:
            yield from ((where, batch, False) for where, batch in jobs)
        yield from ((where, batch, True) for where, batch in inference.batches(network, scaled, is_panel, stride))
        if leveled:
            yield from ((where, batch, True) for where, batch in inference.batches(network, held_out, is_panel, stride))

    n_training = sum(1 for _ in inference.batches(network, scaled, is_panel, stride))
    embeddings: dict[str, list[torch.Tensor]] = {part.name: [] for part, jobs in references if jobs}
    training = held = None
    for number, chunk in enumerate(inference.run(network, all_jobs())):
        if number < n_reference:
            embeddings[owners[number].name].append(chunk.embedding.float())
            continue
        if number == n_reference:  # every reference is complete: the training windows' values skip their trivial matches
            for part, jobs in references:
                if jobs:
                    part.fit_reference(data, torch.cat(embeddings[part.name]))
            training = inference.PassMerger(tuple(scaled.shape), is_panel, parts, seen=Locator.itself())
        if number == n_reference + n_training:
            held = inference.PassMerger(tuple(held_out.shape), is_panel, parts)
        (training if held is None else held).add(chunk)

    timesteps = settings.timesteps
    training_merged = training.result()
    for part in parts:
        if not part.from_network:
            training_merged[part.name] = inference.input_pass(scaled, part, is_panel, stride, timesteps, seen=Locator.itself())
        part.fit_training(training_merged[part.name])
    training_values = {part.name: part.values(training_merged[part.name], is_panel, settings) for part in parts}
    if leveled:
        held_merged = held.result()
        for part in parts:
            if not part.from_network:
                held_merged[part.name] = inference.input_pass(held_out, part, is_panel, stride, timesteps)
            held_value, _ = part.values(held_merged[part.name], is_panel, settings)
            part.fit_level(training_values[part.name][0], held_value)
        if table_row and not is_panel:
            state = replace(state, weights=combination.covered_weights(weights, state.levels, values.shape[-1]))
    train_scores, _ = state.combine(training_values, settings)
    train_scores = aggregation.peak(train_scores, is_panel, settings.aggregation, settings.timesteps)  # as `scores_of`
    return replace(state, threshold=fit_threshold(train_scores, threshold, contamination, validation_split))


def _new_part(name: str, scorer: str, is_panel: bool, options: dict[str, str]) -> ScorePart:
    """A new, unfitted part made with ``options`` (`lstmae.scoring.combination.kind_options`); a scorer whose part
    does not apply to this kind of input is a ParameterError."""
    kind = part_class(name)
    if (is_panel and not kind.for_panels) or (not is_panel and not kind.for_series):
        data = "3-D input (samples)" if is_panel else "a long series"
        raise ParameterError(f"scorer={scorer!r} {kind.applies_to}; {data} has none: use scorer='combined'.")
    return kind(**options)


def training_split(n: int, is_panel: bool, timesteps: int, validation_split: float) -> tuple[slice, slice]:
    """(rows trained on, rows held out) of the training data, as training split them (the last windows held out).

    Each part falls back to all rows when too short for one window (or sample).
    """
    if is_panel:
        cut = n_train(n, validation_split)
        fit_rows, held_rows = slice(0, cut), slice(cut, n)
    else:
        cut = n_train(n - timesteps + 1, validation_split)  # the first validation window
        fit_rows, held_rows = slice(0, cut + timesteps - 1), slice(cut, n)
    minimum = 1 if is_panel else timesteps
    length = lambda rows: len(range(*rows.indices(n)))  # noqa: E731
    return (fit_rows if length(fit_rows) >= minimum else slice(0, n)), (held_rows if length(held_rows) >= minimum else slice(0, n))


__all__ = ["SCORE_WINDOWS_PER_STEP", "ScoringSettings", "ScoringState", "fit_state", "resolve_settings", "training_split"]
