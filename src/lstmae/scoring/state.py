"""What scoring needs after training, as one object, built in one pass over the training data.

`ScoringState` holds the scaler, the per-feature error levels, the latent
reference, the score levels, the threshold and the scoring settings resolved
at fit. With a trained network it scores new data (`ScoringState.score`) without
the estimator, so a streaming scorer or a fleet worker can reuse it; `save` and
`load` write it as one unit (`to_tensors` / `from_tensors`).

Data flows one way: scaled windows -> `lstmae.scoring.inference` -> merged errors,
latent and nearest-neighbour distances -> `lstmae.scoring.combination.aggregate` ->
`lstmae.scoring.combination.combine` -> scores. Every part of a series' score is computed
per window from that window and this state alone, so a stream can score window
by window. A panel's "combined" score also measures each sample against the
training samples in the input space (`ScoringState.input_distances`), weighted
by `PANEL_WEIGHTS`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lstmae.scoring import inference
from lstmae.data.scaling import transform
from lstmae.data.windows import n_windows, window_starts
from lstmae.errors import ParameterError
from lstmae.scoring.latent import CentredReference, nearest_distances
from lstmae.scoring.neighbours import WindowReference, part_length, reference_windows
from lstmae.params import n_train
from lstmae.scoring.combination import aggregate, combine, combined_weights
from lstmae.scoring.thresholds import fit_threshold

#: normalize_errors: floor of a feature's error level, relative to the largest feature's.
FEATURE_LEVEL_FLOOR = 1e-3
#: Training embeddings kept for the latent distance: every training window up to
#: this many, else evenly spaced ones. Denser is better: on the dev benchmark,
#: the embeddings of every timesteps_ // 8-th window (as scored) instead of every
#: window lost up to 0.5 VUS-PR on narrow anomalies (bench/RESULTS.md, issue 4).
LATENT_REFERENCE_MAX = 20_000
#: Training windows the nearest-neighbour part compares each scored window with:
#: every one up to this many, else evenly spaced ones. Each scored window is
#: compared with all of them (T x F values each), so this bounds the part's cost per
#: window, which is what a stream's update pays (bench/stream.py); the quality at
#: this cap was checked by bench/quality.py --cv (bench/RESULTS-quality.md).
NEIGHBOUR_REFERENCE_MAX = 8_192
#: score_stride="auto": about this many scored windows cover each timestep.
SCORE_WINDOWS_PER_STEP = 8
#: Smallest score level: keeps a perfectly reconstructed held-out part from dividing by 0.
LEVEL_FLOOR = 1e-12
#: Panels: the training samples kept for the input-space distance, at most this
#: many values (samples x timesteps x features) in all (64 MB of float32); a
#: larger panel keeps evenly spaced samples.
INPUT_REFERENCE_MAX_VALUES = 1 << 24
#: scorer="combined" on a panel: weights of the reconstruction error, the latent
#: distance and the input-space distance (a sample's distance to the nearest
#: training sample, in scaled units), each over its level on the training data.
#: Chosen by leave-one-dataset-out over a grid on bench/panel.py's development
#: datasets (bench/RESULTS-panel.md): every fold gave the reconstruction weight
#: 0, and the input-space distance carried most of the score. On panels of a few
#: dozen training samples the reconstruction ranked other classes no better than
#: chance; it still gives ``top_features``.
PANEL_WEIGHTS = (0.0, 0.25, 4.0)


@dataclass(frozen=True)
class ScoringSettings:
    """How scores are computed (the estimator's parameters, "auto" resolved)."""

    scorer: str  # "reconstruction", "latent", "neighbours" or "combined"
    aggregation: str  # "window" or "timestep"
    score_stride: int  # step between scored windows of a series, in [1, timesteps]
    timesteps: int  # window length T
    normalize_errors: bool  # divide each feature's squared error by its training level


def resolve_settings(
    scorer: str, architecture: str, score_stride: int | str, aggregation: str, timesteps: int, normalize_errors: bool
) -> ScoringSettings:
    """Settings from an estimator's parameters: scorer "auto" is "combined" for the repeat design, else
    "reconstruction"; score_stride "auto" is timesteps // SCORE_WINDOWS_PER_STEP (at least 1)."""
    if scorer == "auto":
        scorer = "combined" if architecture == "repeat" else "reconstruction"
    step = max(1, timesteps // SCORE_WINDOWS_PER_STEP) if score_stride == "auto" else score_stride
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 1 <= step <= timesteps:
        raise ParameterError(f"score_stride must be 'auto' or an integer in [1, timesteps={timesteps}], got {score_stride!r}.")
    return ScoringSettings(scorer, aggregation, int(step), timesteps, bool(normalize_errors))


@dataclass(frozen=True, eq=False)
class ScoringState:
    """The fitted scoring state of a model (everything but the network's weights).

    scaler_mean, scaler_scale : (F,) float64
    feature_levels : (F,) float64, each feature's mean squared training error (floored), or None (old files)
    latent_reference : (M, L) float32 training embeddings, or None (scorer "reconstruction")
    score_levels : (reconstruction, latent) mean held-out scores, or None without a reference
    threshold : float, the score above which a timestep (or sample) is anomalous
    settings : the settings the state was fitted with
    neighbour_reference : (m, F) float32, the scaled training series whose windows the
        nearest-neighbour part compares with, or None (panels, scorers without it, older files)
    neighbour_level : float, the mean held-out nearest-neighbour part, or None
    neighbour_length : int, the steps of each scored window its nearest-neighbour part compares
        (`lstmae.scoring.neighbours.part_length`); None: the whole window (files saved before it was half)
    weights : (latent, nearest-neighbour) weights of scorer="combined" on a series, fitted by
        `lstmae.scoring.combination.combined_weights`; None for a panel and for files saved before them (the
        score they were saved with: `lstmae.scoring.combination.LATENT_WEIGHT` and no nearest-neighbour part)
    input_reference : (M, T*F) float32 scaled training samples, flattened (panels fitted with the
        "combined" scorer), or None
    input_level : the mean leave-one-out input-space distance of the training samples, or None
    """

    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    feature_levels: np.ndarray | None
    latent_reference: torch.Tensor | None
    score_levels: tuple[float, float] | None
    threshold: float
    settings: ScoringSettings
    neighbour_reference: torch.Tensor | None = None
    neighbour_level: float | None = None
    weights: tuple[float, float] | None = None
    input_reference: torch.Tensor | None = None
    input_level: float | None = None
    neighbour_length: int | None = None

    def scale(self, values: np.ndarray) -> torch.Tensor:
        """Values (n, F) or (S, T, F) in the units the network was trained in, float32."""
        return torch.from_numpy(transform(values, self.scaler_mean, self.scaler_scale))

    def normalized(self, errors: np.ndarray, settings: ScoringSettings) -> np.ndarray:
        """Squared errors (..., F) over each feature's level, when the settings ask for it."""
        if settings.normalize_errors and self.feature_levels is not None:
            return errors / self.feature_levels  # broadcast over the last axis (F)
        return errors

    def score(
        self, network: torch.nn.Module, values: np.ndarray, is_panel: bool, settings: ScoringSettings | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores (n,) or (S,), per-feature reconstruction scores (n, F) or (S, F)) of ``values`` (n, F) or (S, T, F)."""
        settings = self.settings if settings is None else settings
        reference = self.reference_for(settings.scorer)
        scaled = self.scale(values)
        neighbours = None if is_panel else self.neighbours_for(settings.scorer)
        passed = inference.merged(network, scaled, is_panel, settings.score_stride, reference=reference,
                                  neighbours=neighbours)
        near = self.input_distances(scaled, settings) if is_panel else None
        return self.scores_of(passed, is_panel, settings, near)

    def scores_of(
        self, passed: inference.Merged, is_panel: bool, settings: ScoringSettings, input_distances: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, per-feature reconstruction scores) of a pass; with ``input_distances`` (S,), a panel's PANEL_WEIGHTS score."""
        parts = aggregate(self.normalized(passed.errors, settings), passed.distances, is_panel, settings.aggregation,
                          settings.timesteps, passed.neighbours)
        if input_distances is None:
            return combine(settings.scorer, parts, self.score_levels, self.neighbour_level, self.weights), parts.per
        # A panel scored by "combined": each sample against the training samples.
        (by_reconstruction, by_latent, by_input), levels = PANEL_WEIGHTS, self.score_levels
        scores = by_reconstruction * parts.reconstruction / levels[0] + by_latent * parts.latent / levels[1]
        return scores + by_input * input_distances / self.input_level, parts.per

    def input_distances(self, scaled: torch.Tensor, settings: ScoringSettings, exclude_self: bool = False) -> np.ndarray | None:
        """Each sample's Euclidean distance to the nearest training sample, (S,) float64, in scaled units.

        Only for the "combined" scorer of a panel fitted with an input reference (else None).
        ``scaled`` (S, T, F); ``exclude_self``: sample i of ``scaled`` is training sample i, which is skipped.
        """
        if settings.scorer != "combined" or self.input_reference is None:
            return None
        flat = scaled.reshape(scaled.shape[0], -1).float()  # (S, T*F)
        positions = None
        if exclude_self:
            kept = _input_reference_rows(scaled.shape[0], flat.shape[1])
            positions = (torch.arange(scaled.shape[0]), kept, 1)
        return nearest_distances(flat, self.input_reference, positions).double().numpy()

    @functools.cached_property
    def neighbour_windows(self) -> WindowReference | None:
        """The z-normalised training windows of the nearest-neighbour part ((M, L * F), L = `lstmae.scoring.neighbours.part_length`,
        `lstmae.scoring.neighbours.reference_windows`, every `_neighbour_stride`-th), prepared once for every pass and stream update."""
        if self.neighbour_reference is None:
            return None
        length = self.settings.timesteps if self.neighbour_length is None else self.neighbour_length
        stride = _neighbour_stride(self.neighbour_reference.shape[0], length)
        return WindowReference.of(reference_windows(self.neighbour_reference, length, stride), length)

    def neighbours_for(self, scorer: str) -> WindowReference | None:
        """The reference windows a scorer needs for its nearest-neighbour part (series), or None."""
        if scorer == "neighbours" and self.neighbour_reference is None:
            raise ParameterError(
                "scorer='neighbours' needs the training windows, which this model was fitted without "
                "(a panel, or another scorer); refit with scorer='neighbours' or 'combined'."
            )
        return self.neighbour_windows if scorer in ("neighbours", "combined") else None

    @functools.cached_property
    def latent_prepared(self) -> CentredReference | None:
        """The training embeddings prepared once for every pass and stream update (`lstmae.scoring.latent.CentredReference`)."""
        return None if self.latent_reference is None else CentredReference.of(self.latent_reference)

    def reference_for(self, scorer: str) -> CentredReference | None:
        """The prepared training embeddings a scorer needs for its latent part, or None."""
        if scorer in ("reconstruction", "neighbours"):
            return None
        if self.latent_reference is None:
            raise ParameterError(
                f"scorer={scorer!r} needs the training embeddings, which this model was fitted without "
                "(scorer='reconstruction'); refit with that scorer or use scorer='reconstruction'."
            )
        return self.latent_prepared

    # ------------------------------------------------------------- files
    def to_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON-able fields) as stored in a model file; `from_tensors` reads them back."""
        tensors = {
            "scaler.mean": torch.from_numpy(np.asarray(self.scaler_mean, dtype=np.float64)),
            "scaler.scale": torch.from_numpy(np.asarray(self.scaler_scale, dtype=np.float64)),
        }
        if self.latent_reference is not None:
            tensors["scoring.latent_reference"] = self.latent_reference.contiguous()
        if self.feature_levels is not None:
            tensors["scoring.feature_levels"] = torch.from_numpy(np.asarray(self.feature_levels, dtype=np.float64))
        if self.neighbour_reference is not None:
            tensors["scoring.neighbour_reference"] = self.neighbour_reference.contiguous()
        if self.input_reference is not None:
            tensors["scoring.input_reference"] = self.input_reference.contiguous()
        fields = {
            "threshold_": self.threshold,
            "input_level": self.input_level,
            "score_levels_": list(self.score_levels) if self.score_levels is not None else None,
            "neighbour_level_": self.neighbour_level,
            "neighbour_length_": self.neighbour_length,
            "combined_weights_": None if self.weights is None else list(self.weights),
            "scoring_settings": dataclasses.asdict(self.settings),
        }
        return tensors, fields

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], fields: dict[str, Any], settings: ScoringSettings) -> "ScoringState":
        """The state from a model file's tensors and fitted fields; ``settings`` where the file has none (older files).

        Raises KeyError, TypeError or ValueError on missing or inconsistent content.
        """
        reference = tensors.get("scoring.latent_reference")
        if reference is not None and fields.get("score_levels_") is None:
            raise ValueError("latent reference embeddings but no score levels")
        levels = tensors.get("scoring.feature_levels")
        neighbours = tensors.get("scoring.neighbour_reference")
        if neighbours is not None and fields.get("neighbour_level_") is None:
            raise ValueError("nearest-neighbour reference but no neighbour level")
        stored = fields.get("scoring_settings")
        inputs = tensors.get("scoring.input_reference")
        if inputs is not None and not isinstance(fields.get("input_level"), (int, float)):
            raise ValueError("an input reference but no input level")
        return cls(
            scaler_mean=tensors["scaler.mean"].numpy().astype(np.float64),
            scaler_scale=tensors["scaler.scale"].numpy().astype(np.float64),
            feature_levels=None if levels is None else levels.numpy().astype(np.float64),
            latent_reference=None if reference is None else reference.float(),
            score_levels=None if reference is None else tuple(float(v) for v in fields["score_levels_"]),
            threshold=float(fields["threshold_"]),
            settings=settings if stored is None else ScoringSettings(**stored),
            neighbour_reference=None if neighbours is None else neighbours.float(),
            neighbour_level=None if neighbours is None else float(fields["neighbour_level_"]),
            neighbour_length=None if neighbours is None or fields.get("neighbour_length_") is None else int(fields["neighbour_length_"]),
            weights=None if fields.get("combined_weights_") is None else tuple(float(w) for w in fields["combined_weights_"]),
            input_reference=None if inputs is None else inputs.float(),
            input_level=None if inputs is None else float(fields["input_level"]),
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
) -> ScoringState:
    """The whole scoring state from the trained network and the training data, in one pass.

    One `lstmae.scoring.inference.run` over the training data runs, in this order: the
    encoder over the windows trained on (the latent reference: every window, or
    LATENT_REFERENCE_MAX evenly spaced ones; only for the "latent" and
    "combined" scorers), the whole network over the scored windows of all the
    training data (feature levels and the threshold's scores) and over the
    scored windows of the held-out part (the score levels). The nearest-neighbour
    part of a series ("neighbours" and "combined", `lstmae.scoring.inference.neighbour_pass`,
    no network) compares windows of L = `lstmae.scoring.neighbours.part_length` steps at the
    score stride with the z-normalised training windows of L steps (every one, or
    NEIGHBOUR_REFERENCE_MAX evenly spaced ones), skipping overlapping ones for the
    training data's own windows. The chunks are the ones separate passes would
    run, so the result is bit-identical to them.

    Parameters
    ----------
    values : (n, F) or (S, T, F), the training data in its units
    scaler : (mean, scale) fitted on ``values``
    validation_split : the share held out during training (the last windows)
    threshold, contamination : the threshold rule (`lstmae.scoring.thresholds.fit_threshold`)
    """
    if is_panel and settings.scorer == "neighbours":
        raise ParameterError(
            "scorer='neighbours' compares windows of a series with the training windows; 3-D input (samples) has none: "
            "use scorer='combined' or 'latent', which compare each sample with the training samples."
        )
    unfitted = ScoringState(*scaler, None, None, None, float("nan"), settings)
    scaled = unfitted.scale(values)
    timesteps = settings.timesteps
    latent = settings.scorer in ("latent", "combined")
    weights = None if is_panel else combined_weights(scaled.shape[-1])
    near = not is_panel and (settings.scorer == "neighbours" or (settings.scorer == "combined" and weights[1] > 0))
    fit_rows, held_rows = _split(scaled.shape[0], is_panel, timesteps, validation_split)
    reference_part = scaled[fit_rows] if latent else scaled[:0]
    held_out = scaled[held_rows] if latent or near else scaled[:0]
    reference_stride, positions, exclusion = _reference_windows(scaled[fit_rows].shape[0], is_panel, timesteps)
    if near:
        unfitted = dataclasses.replace(unfitted, neighbour_reference=scaled[fit_rows].contiguous(),
                                       neighbour_length=part_length(timesteps))
    windows = unfitted.neighbour_windows  # (M, T * F), or None
    if windows is not None:  # the training windows' own nearest-neighbour distances skip the overlapping reference windows
        fit_length = unfitted.neighbour_reference.shape[0]
        length = unfitted.neighbour_length
        neighbour_positions = torch.from_numpy(window_starts(fit_length, length, _neighbour_stride(fit_length, length)))

    def jobs() -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
        if latent:
            yield from ((where, batch, False) for where, batch in inference.batches(network, reference_part, is_panel, reference_stride))
        yield from ((where, batch, True) for where, batch in inference.batches(network, scaled, is_panel, settings.score_stride))
        if latent or near:
            yield from ((where, batch, True) for where, batch in inference.batches(network, held_out, is_panel, settings.score_stride))

    n_reference = _count(network, reference_part, is_panel, reference_stride) if latent else 0
    n_training = _count(network, scaled, is_panel, settings.score_stride)
    reference_chunks: list[torch.Tensor] = []
    reference = training = held = None
    for number, chunk in enumerate(inference.run(network, jobs())):
        if number < n_reference:
            reference_chunks.append(chunk.embedding.float())
            continue
        if number == n_reference:  # the reference is complete: the training windows' distances skip their neighbours
            reference = torch.cat(reference_chunks) if latent else None  # (M, L)
            prepared = None if reference is None else CentredReference.of(reference)  # once, for both passes
            training = inference.PassMerger(tuple(scaled.shape), is_panel, False, prepared, (positions, exclusion))
        if number == n_reference + n_training:
            held = inference.PassMerger(tuple(held_out.shape), is_panel, False, prepared, None)
        (training if held is None else held).add(chunk)

    stride = settings.score_stride
    training_pass = training.result(
        None if windows is None else inference.neighbour_pass(scaled, windows, stride, (neighbour_positions, exclusion)))
    per_feature = training_pass.errors.reshape(-1, training_pass.errors.shape[-1]).mean(axis=0)  # (F,)
    feature_levels = per_feature + FEATURE_LEVEL_FLOOR * float(per_feature.max()) + 1e-12
    state = dataclasses.replace(unfitted, feature_levels=feature_levels, latent_reference=reference, weights=weights)
    if latent or near:
        held_pass = held.result(None if windows is None else inference.neighbour_pass(held_out, windows, stride))
        parts = aggregate(state.normalized(held_pass.errors, settings), held_pass.distances, is_panel, settings.aggregation,
                          timesteps, held_pass.neighbours)
        level = lambda part: max(float(part.mean()), LEVEL_FLOOR)  # noqa: E731
        state = dataclasses.replace(
            state,
            score_levels=(level(parts.reconstruction), level(parts.latent)) if latent else None,
            neighbour_level=level(parts.neighbours) if near else None,
        )
    close = None
    if is_panel and settings.scorer == "combined":
        flat = scaled.reshape(scaled.shape[0], -1)  # (S, T*F)
        kept = _input_reference_rows(*flat.shape)
        state = dataclasses.replace(state, input_reference=flat[kept].float().contiguous(), input_level=1.0)
        close = state.input_distances(scaled, settings, exclude_self=True)  # leave-one-out: not the sample itself
        state = dataclasses.replace(state, input_level=max(float(close.mean()), LEVEL_FLOOR))
    train_scores, _ = state.scores_of(training_pass, is_panel, settings, close)
    return dataclasses.replace(state, threshold=fit_threshold(train_scores, threshold, contamination, validation_split))


def _split(n: int, is_panel: bool, timesteps: int, validation_split: float) -> tuple[slice, slice]:
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


def _reference_windows(n: int, is_panel: bool, timesteps: int) -> tuple[int, torch.Tensor, int]:
    """(stride of the reference windows, their positions: window starts or sample indices, the exclusion radius)."""
    if is_panel:
        return 1, torch.arange(n), 1  # every sample
    if n < timesteps:
        return 1, torch.zeros(0, dtype=torch.long), timesteps  # no reference (the reconstruction scorer)
    stride = max(1, -(-n_windows(n, timesteps, 1) // LATENT_REFERENCE_MAX))
    return stride, torch.from_numpy(window_starts(n, timesteps, stride)), timesteps


def _neighbour_stride(n: int, timesteps: int) -> int:
    """Stride of the nearest-neighbour part's reference windows over ``n`` training rows: at most NEIGHBOUR_REFERENCE_MAX windows."""
    return max(1, -(-n_windows(n, timesteps, 1) // NEIGHBOUR_REFERENCE_MAX))


def _input_reference_rows(samples: int, width: int) -> torch.Tensor:
    """The training samples a panel's input reference keeps: all, or evenly spaced ones within INPUT_REFERENCE_MAX_VALUES."""
    keep = max(1, min(samples, INPUT_REFERENCE_MAX_VALUES // max(width, 1)))
    return torch.linspace(0, samples - 1, keep).round().long() if keep < samples else torch.arange(samples)


def _count(network: torch.nn.Module, scaled: torch.Tensor, is_panel: bool, stride: int) -> int:
    """Chunks `lstmae.scoring.inference.batches` gives for these windows."""
    return sum(1 for _ in inference.batches(network, scaled, is_panel, stride))
