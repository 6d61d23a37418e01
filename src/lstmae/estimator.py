"""`LSTMAutoencoder`: the scikit-learn style estimator users work with.

Public methods validate, convert the input with `lstmae.data.frames.prepare`,
then call a small private core. Data flows one way::

    input -> canonical array -> scaled -> windows -> network -> per-window errors
          -> per-timestep scores -> threshold -> intervals
"""

from __future__ import annotations

import numbers
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator

from lstmae.config import NetworkConfig
from lstmae.data.frames import Prepared, prepare
from lstmae.data.period import auto_timesteps
from lstmae.data.scaling import fit_scaler, inverse_transform, transform
from lstmae.data.windows import TimestepAccumulator, n_windows, window_starts
from lstmae.errors import (
    DataError,
    DegenerateModelWarning,
    FeatureMismatchError,
    ModelFileError,
    NotFittedError,
    ParameterError,
    describe,
)
from lstmae.diagnostics import Diagnostics, diagnose
from lstmae.latent import nearest_distances
from lstmae.parallel import cpu_workers, ordered_map
from lstmae.params import MAX_LSTM_STEPS, check_windows, resolve_frame
from lstmae.params import validate as validate_params
from lstmae.nn import LSTMAutoencoder as _Network
from lstmae.scoring import (
    auto_threshold,
    centred_mean,
    contamination_threshold,
    interval_table,
    pot_threshold,
)

# Numbers (windows x timesteps x the wider of features and 4 x units, the size of
# the network's gate buffers) per inference chunk: bounds memory whatever the
# series length, and keeps chunks small enough to stay in cache (a few hundred
# windows of 40 x 100 units: about 1.5x faster than 50,000 on a CPU, bench/perf.py).
_INFERENCE_CHUNK_VALUES = 1 << 22

#: threshold="pot" fits the held-out part when it has at least this many scores, else all training scores.
POT_MIN_HELD_OUT = 200
#: normalize_errors: floor of a feature's error level, relative to the largest feature's.
FEATURE_LEVEL_FLOOR = 1e-3
#: scorer="combined": weight of the latent distance beside the reconstruction
#: error, each over its held-out level. Measured on the dev benchmark (46 series,
#: bench/RESULTS-quality.md): 0.25 / 0.5 / 1 gave mean VUS-PR 0.484 / 0.466 / 0.452
#: univariate and 0.561 / 0.578 / 0.590 multivariate; reconstruction alone 0.427 / 0.495.
LATENT_WEIGHT = 0.25
#: Training embeddings kept for the latent distance: every training window up to
#: this many, else evenly spaced ones. Denser is better: on the dev benchmark,
#: the embeddings of every timesteps_ // 8-th window (as scored) instead of every
#: window lost up to 0.5 VUS-PR on narrow anomalies (bench/RESULTS.md, issue 4).
LATENT_REFERENCE_MAX = 20_000
#: Training windows the diagnostics look at (evenly spaced).
DIAGNOSTIC_WINDOWS = 256
#: score_stride="auto": about this many scored windows cover each timestep.
SCORE_WINDOWS_PER_STEP = 8


class LSTMAutoencoder(BaseEstimator):
    """LSTM sequence autoencoder for time series: train on normal data, score everything.

    Parameters
    ----------
    timesteps : int or "auto", default="auto"
        Window length T: how many consecutive timesteps one sample holds. "auto"
        takes the length of each sample for 3-D input, and the dominant period
        of a long series (bounded to [16, 256]; `explain` says what it found).
    stride : int, default=1
        Step between the starts of consecutive training windows of a long series.
        The last window always ends on the last timestep.
    frame : int or "auto", default="auto"
        Timesteps the LSTM reads as one step: a window (T, F) is read as T/frame
        steps of frame*F values, so a window of one long period (hundreds of
        timesteps) trains in seconds without averaging values away. Must divide
        T. "auto": 1 for windows of at most 50 timesteps (the plain Keras
        design), else the smallest divisor keeping the LSTM at <= 50 steps.
    units : int or sequence of int, default=32
        Hidden size of each encoder LSTM layer; the last is the latent size. The
        decoder mirrors the encoder: ``(64, 16)`` encodes 64 -> 16, decodes 16 -> 64.
        32 with a window of one period (framed to <= 50 steps) trains in seconds
        and does well on the dev benchmark.
    architecture : {"repeat", "sequence"}, default="repeat"
        "repeat": the bottleneck design, the encoder's last state repeated over
        time (Keras ``RepeatVector``). "sequence": every layer
        ``return_sequences=True``; with units >= features it can learn the identity.
    batch_size : int, default=64
        Windows per gradient step.
    epochs : int, default=30
        Maximum epochs (each of at most ``windows_per_epoch`` windows); early
        stopping usually ends sooner.
    validation_split : float in [0, 1), default=0.1
        Fraction of windows held out for early stopping: the last ones, taken
        before shuffling (Keras semantics). 0 disables early stopping.
    learning_rate : float, default=1e-3
        Adam's learning rate.
    patience : int, default=5
        Epochs without a better validation loss before training stops; the best
        epoch's weights are restored.
    shuffle : bool, default=True
        Shuffle the training windows every epoch.
    windows_per_epoch : int or None, default=2048
        With shuffling, each epoch trains on this many windows drawn afresh
        from all training windows, so a 250,000-point series costs what a
        short one does per epoch. None: every window every epoch (Keras).
        Validation uses at most half as many, evenly spaced.
    score_stride : int or "auto", default="auto"
        Step between the windows scored by `anomaly_score`/`detect` (and
        `reconstruct`), at most ``timesteps``; every
        timestep stays covered and its errors are averaged over the windows
        that cover it (exact merge). "auto": timesteps // 8, so each timestep is
        seen by about 8 windows. 1 scores every stride-1 window.
    scorer : {"auto", "reconstruction", "latent", "combined"}, default="auto"
        What a score measures. "reconstruction": the reconstruction error.
        "latent": the distance from the window's embedding to the nearest
        training window's (`lstmae.latent`; "has the encoder seen a window like
        this?"). "combined": reconstruction over its held-out level plus 0.25 x
        latent over its held-out level. "auto": "combined" for the "repeat"
        design, "reconstruction" for "sequence" (which has no window
        embedding). Measured on the dev benchmark, see bench/RESULTS-quality.md.
    normalize_errors : bool, default=True
        Divide each feature's squared error by its mean on the training data,
        so every feature's error is in units of its own typical error and no
        feature (a rare flag, a noisy sensor) dominates the mean over features.
        Per-feature scores are then "times the usual error". False: squared
        errors in the scaled units the model was trained in.
    aggregation : {"window", "timestep"}, default="window"
        From per-window errors to one score per timestep. "timestep": the
        timestep's squared error averaged over the windows covering it.
        "window": that, then averaged over the T-long stretch centred on the
        timestep, so a timestep is scored by how badly its whole surrounding
        window is reconstructed (smooth scores, better at localising
        anomalies on benchmark data; see bench/RESULTS-quality.md).
    threshold : "auto", "pot" or float, default="auto"
        Score above which a timestep is anomalous. "auto": 1.25 x the largest
        per-timestep score on the training data. "pot": Peaks-Over-Threshold,
        a generalized Pareto tail fitted to the held-out (validation) part's
        scores, exceeded by normal data with probability 1e-4. A number: that
        value. See `lstmae.scoring`.
    contamination : float in (0, 0.5] or None, default=None
        Expected share of anomalous timesteps: the threshold becomes the
        ``1 - contamination`` quantile of the training scores. Use with
        threshold="auto" (the two are exclusive).
    random_state : int or None, default=None
        Seed for weights and shuffling. Same seed and data give bit-identical
        scores on the CPU.
    device : str, default="auto"
        "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
    verbose : int, default=1
        0: silent. 1: a progress bar when writing to a terminal (never in pipes).
    trainer_kwargs : dict or None, default=None
        Lightning ``Trainer`` options for training, passed through as given:
        ``logger`` (receives "loss", "mae", "val_loss", "val_mae" per epoch),
        ``callbacks`` (run after lstmae's own), ``precision`` ("64-true" trains
        in float64; "16-mixed" / "bf16-mixed" only on CUDA), ``accelerator``,
        ``devices``, ``strategy``, ``num_nodes`` (these override what ``device``
        chooses, for training only), ``enable_progress_bar`` (overrides
        ``verbose``), ``enable_model_summary``, ``deterministic``, ``benchmark``,
        ``detect_anomaly``, ``profiler``, ``default_root_dir``. Options lstmae sets
        itself are refused with the parameter to use instead (``max_epochs``:
        ``epochs``; ``limit_train_batches``: ``windows_per_epoch``;
        ``enable_checkpointing``: ``fit(checkpoint=...)``; gradient clipping is
        fixed). Not part of a checkpoint's fingerprint.
    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (`lstmae.nn.LSTMAutoencoder`).
    config_ : NetworkConfig
    timesteps_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only for DataFrame input
    scaler_mean_, scaler_scale_ : ndarray of shape (n_features,)
    threshold_ : float
    diagnostics_ : dict
        Is the model degenerate? ``identity_ratio`` (error on shuffled,
        reversed and noise inputs over training error; near 1: it reconstructs
        anything), ``noise_explained``, ``collapse_ratio`` (error over the error
        of predicting each window's mean; near 1: it learned only the mean) and
        ``warnings`` in words (also issued as `DegenerateModelWarning`). See
        `lstmae.diagnostics`.
    history_ : dict of str -> list of float
        "loss", "mae" and, with validation, "val_loss", "val_mae", per epoch.
    input_kind_ : {"series", "panel"}
    timesteps_reason_ : str
    seed_ : int
    fit_seconds_ : float
    metadata_ : dict, only after `load`
        What `save` was given as ``metadata`` ({} when nothing).
    """

    def __init__(
        self,
        timesteps: int | str = "auto",
        stride: int = 1,
        frame: int | str = "auto",
        units: int | Sequence[int] = 32,
        architecture: str = "repeat",
        batch_size: int = 64,
        epochs: int = 30,
        validation_split: float = 0.1,
        learning_rate: float = 1e-3,
        patience: int = 5,
        shuffle: bool = True,
        windows_per_epoch: int | None = 2048,
        score_stride: int | str = "auto",
        aggregation: str = "window",
        scorer: str = "auto",
        normalize_errors: bool = True,
        threshold: float | str = "auto",
        contamination: float | None = None,
        random_state: int | None = None,
        device: str = "auto",
        verbose: int = 1,
        trainer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.timesteps = timesteps
        self.stride = stride
        self.frame = frame
        self.units = units
        self.architecture = architecture
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_split = validation_split
        self.learning_rate = learning_rate
        self.patience = patience
        self.shuffle = shuffle
        self.windows_per_epoch = windows_per_epoch
        self.score_stride = score_stride
        self.aggregation = aggregation
        self.scorer = scorer
        self.normalize_errors = normalize_errors
        self.threshold = threshold
        self.contamination = contamination
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.trainer_kwargs = trainer_kwargs

    # ------------------------------------------------------------------ fit
    def fit(
        self, X: Any, y: None = None, *, checkpoint: str | os.PathLike | None = None, resume: bool = False
    ) -> "LSTMAutoencoder":
        """Train on data believed normal.

        Parameters
        ----------
        X : array-like of shape (n_timesteps,), (n_timesteps, n_features) or
            (samples, timesteps, features), or a DataFrame / Series
            Finite values only: fill gaps first (`lstmae.data.cleaning.fill_missing`,
            or read files with `lstmae.data.readers.read_data`, which does).
        y : ignored
        checkpoint : path, optional
            Write a checkpoint (safetensors, see `lstmae.checkpoint`) after every
            epoch. It is left in place after fit; delete it once the model is saved.
        resume : bool, default=False
            Continue from ``checkpoint``, which must come from a fit on the same
            data with the same parameters (``epochs`` may be raised).

        Returns
        -------
        self

        Raises
        ------
        lstmae.errors.Interrupted
            Ctrl-C or SIGTERM during training (a KeyboardInterrupt); with
            ``checkpoint``, the last finished epoch is kept there.
        """
        started = time.perf_counter()
        units = self._validate_params()
        if resume and checkpoint is None:
            raise ParameterError("resume=True needs checkpoint=PATH, the checkpoint of the fit to continue.")
        device = resolve_device(self.device)
        data = prepare(X)
        timesteps, reason = self._resolve_timesteps(data)
        frame = self._resolve_frame(timesteps)
        check_windows(timesteps, stride=self.stride, score_stride=self.score_stride)
        mean, scale = fit_scaler(data.values)
        scaled = torch.from_numpy(transform(data.values, mean, scale))
        resumed = None
        if resume:
            from lstmae.checkpoint import load_checkpoint

            resumed = load_checkpoint(checkpoint)
        seed = resumed.seed if resumed is not None and self.random_state is None else self._seed()
        config = NetworkConfig(data.n_features, timesteps, units, self.architecture, frame)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = _Network(config)

        train_set, val_set = self._datasets(scaled, data.is_panel, timesteps)
        from lstmae.training import TrainingPlan, train  # Lightning is slow to import: only when training

        plan = TrainingPlan(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            shuffle=self.shuffle,
            seed=seed,
            patience=self.patience,
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=[device.index or 0] if device.type == "cuda" else 1,
            verbose=self.verbose,
            max_windows=self.windows_per_epoch,
            trainer_kwargs=self.trainer_kwargs,
        )
        if checkpoint is None:
            history = train(network, train_set, val_set, plan)
        else:
            from lstmae.checkpoint import fingerprint, train_resumable

            # What shapes training must match on resume; epochs may grow, the rest only affects use.
            ignored = ("epochs", "threshold", "verbose", "device", "random_state")
            shaping = {k: v for k, v in _jsonable_params(self.get_params()).items() if k not in ignored}
            mark = fingerprint(data.values, {**shaping, "timesteps": timesteps, "seed": seed})
            history = train_resumable(network, train_set, val_set, plan, checkpoint, mark, resumed)
        network.eval()

        self.module_ = network.to(device)
        self.config_ = config
        self.timesteps_ = timesteps
        self.timesteps_reason_ = reason
        self.n_features_in_ = data.n_features
        if data.columns is not None and data.input_ndim == 2:
            self.feature_names_in_ = np.asarray(data.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.scaler_mean_ = mean
        self.scaler_scale_ = scale
        self.input_kind_ = data.kind
        self.seed_ = seed
        self.history_ = history
        self.diagnostics_ = self._diagnose(train_set, seed)
        for message in self.diagnostics_["warnings"]:
            warnings.warn(message, DegenerateModelWarning, stacklevel=2)
        self.feature_levels_ = self._feature_levels(data)
        exclude = None
        if self._scorer() != "reconstruction":
            exclude = self._fit_latent(data)
        elif hasattr(self, "latent_reference_"):
            del self.latent_reference_, self.score_levels_
        # The threshold's training scores: each window's latent distance skips the
        # reference windows overlapping it (itself included, at distance 0).
        train_scores = self._scores(data, exclude=exclude)
        self.threshold_ = self._fit_threshold(train_scores, data.is_panel)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _validate_params(self) -> tuple[int, ...]:
        """Check every parameter before any work (`lstmae.params`, the one table); return units as a tuple."""
        return validate_params(self.get_params())["units"]

    def _scorer(self) -> str:
        """The scorer in use: "auto" is "combined" for the repeat design, "reconstruction" otherwise."""
        if self.scorer != "auto":
            return self.scorer
        architecture = self.config_.architecture if hasattr(self, "config_") else self.architecture
        return "combined" if architecture == "repeat" else "reconstruction"

    def _feature_levels(self, data: Prepared) -> np.ndarray:
        """Each feature's mean squared error on the training data (F,), floored.

        With normalize_errors, errors are divided by these: a flag column that is
        rarely 1, or a noisy sensor, weighs no more in the score than a smooth one.
        The floor (1e-3 of the largest level) keeps a feature the model
        reconstructs perfectly from dividing by ~0.
        """
        errors, _ = self._pass(data, normalize=False)
        per = errors.reshape(-1, errors.shape[-1]).mean(axis=0)  # (F,)
        return per + FEATURE_LEVEL_FLOOR * float(per.max()) + 1e-12

    def _fit_latent(self, data: Prepared) -> tuple[torch.Tensor, int]:
        """latent_reference_: embeddings of the windows trained on (not the validation part):
        every window, or LATENT_REFERENCE_MAX evenly spaced ones;
        score_levels_: mean reconstruction score and mean latent distance on the validation part.

        Returns (the reference rows' positions in ``data``: window starts or sample
        indices, the exclusion radius: timesteps or 1) for `lstmae.latent.nearest_distances`.
        """
        n = data.values.shape[0]
        timesteps = self.timesteps_
        if data.is_panel:
            cut = int(n * (1 - self.validation_split))
            fit_rows, held_rows = slice(0, cut), slice(cut, n)
        else:
            cut = int((n - timesteps + 1) * (1 - self.validation_split))  # first validation window, as in fit
            fit_rows, held_rows = slice(0, cut + timesteps - 1), slice(cut, n)
        part = lambda rows: Prepared(data.values[rows], data.kind, data.input_ndim, None, data.columns)  # noqa: E731
        fit_part, held_out = part(fit_rows), part(held_rows)
        if fit_part.values.shape[0] < (1 if data.is_panel else timesteps):
            fit_part = data  # too little data to hold any out: compare with everything
        encode = lambda _, batch: self._encode(batch).float()  # noqa: E731
        stride = 1  # panels: every sample, whatever the stride
        if data.is_panel:
            positions, exclusion = torch.arange(fit_part.values.shape[0]), 1
        else:
            stride = max(1, -(-n_windows(fit_part.values.shape[0], timesteps, 1) // LATENT_REFERENCE_MAX))
            positions, exclusion = torch.from_numpy(window_starts(fit_part.values.shape[0], timesteps, stride)), timesteps
        embeddings = list(self._infer(encode, self._scaled(fit_part), data.is_panel, stride))
        self.latent_reference_ = torch.cat(embeddings)  # (M, L)
        if held_out.values.shape[0] < (1 if data.is_panel else timesteps):
            held_out = data
        floor = 1e-12
        reconstruction, latent, _ = self._parts(held_out, self.latent_reference_)  # one pass for both levels
        self.score_levels_ = (max(float(reconstruction.mean()), floor), max(float(latent.mean()), floor))
        return positions, exclusion

    def _fit_threshold(self, train_scores: np.ndarray, is_panel: bool) -> float:
        """threshold_ from the training scores by the chosen rule."""
        if self.contamination is not None:
            return contamination_threshold(train_scores, self.contamination)
        if self.threshold == "auto":
            return auto_threshold(train_scores)
        if self.threshold == "pot":
            # Held out: the validation part, which the weights were not fitted on.
            first = int(len(train_scores) * (1 - self.validation_split))
            held_out = train_scores[first:] if len(train_scores) - first >= POT_MIN_HELD_OUT else train_scores
            return pot_threshold(held_out)
        return float(self.threshold)

    def _diagnose(self, train_set: Any, seed: int) -> dict:
        """Identity and mean-collapse ratios on up to DIAGNOSTIC_WINDOWS training windows."""
        count = min(len(train_set), DIAGNOSTIC_WINDOWS)
        picks = torch.linspace(0, len(train_set) - 1, count).round().long().tolist()
        windows = train_set.__getitems__(picks)  # (N, T, F), scaled
        device = self._device()
        result = diagnose(lambda w: self.module_(w.to(device)).cpu(), windows, self.architecture, seed)
        return result.to_dict()

    def _resolve_frame(self, timesteps: int) -> int:
        """Timesteps per LSTM step: "auto" keeps windows at most MAX_LSTM_STEPS steps long."""
        return resolve_frame(self.frame, timesteps)

    def _resolve_timesteps(self, data: Prepared) -> tuple[int, str]:
        if data.is_panel:
            length = data.values.shape[1]
            if self.timesteps == "auto":
                return length, f"timesteps={length}: the length of each sample of the 3-D input"
            if self.timesteps != length:
                raise DataError(
                    f"3-D input has {length} timesteps per sample but timesteps={self.timesteps}; "
                    f"pass timesteps={length} or timesteps='auto'."
                )
            return length, f"timesteps={length}: given, equal to the length of each sample"
        n = data.values.shape[0]
        if self.timesteps == "auto":
            if n < 4:
                raise DataError(f"the series has {n} timesteps; at least 4 are needed to learn anything.")
            chosen, reason = auto_timesteps(data.values)
            if self.frame == "auto" and chosen > MAX_LSTM_STEPS:
                frame = -(-chosen // MAX_LSTM_STEPS)
                rounded = frame * round(chosen / frame)
                if rounded != chosen and rounded <= n:
                    reason += f", rounded to {rounded} (a multiple of frame={frame})"
                    chosen = rounded
            return chosen, reason
        if n < self.timesteps:
            raise DataError(
                f"the series has {n} timesteps, fewer than timesteps={self.timesteps}; "
                f"use a longer series or timesteps <= {n}."
            )
        return int(self.timesteps), f"timesteps={self.timesteps}: given"

    def _seed(self) -> int:
        if self.random_state is not None:
            return int(self.random_state) % (2**63)
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] % (2**63))

    def _datasets(self, scaled: torch.Tensor, is_panel: bool, timesteps: int):
        """Training and validation datasets: the last ``validation_split`` of windows is validation."""
        from lstmae.training import PanelSamples, SeriesWindows

        if is_panel:
            order = torch.arange(scaled.shape[0])
        else:
            order = torch.from_numpy(window_starts(scaled.shape[0], timesteps, self.stride))
        n_train = int(len(order) * (1 - self.validation_split))
        if n_train < 1:
            raise DataError(
                f"only {len(order)} training window(s) and validation_split={self.validation_split} "
                "leaves none to train on; use more data or a smaller validation_split."
            )
        parts = (order[:n_train], order[n_train:])
        cap = self.windows_per_epoch
        if cap is not None and len(parts[1]) > cap // 2:  # evenly spaced: validation costs at most half an epoch
            keep = torch.linspace(0, len(parts[1]) - 1, cap // 2).round().long()
            parts = (parts[0], parts[1][keep])
        if is_panel:
            sets = [PanelSamples(scaled, part) for part in parts]
        else:
            sets = [SeriesWindows(scaled, part, timesteps) for part in parts]
        return sets[0], (sets[1] if len(parts[1]) else None)

    # ------------------------------------------------------------ inference
    def encode(self, X: Any, *, stride: int | None = None) -> np.ndarray:
        """The encoder output (the embeddings).

        Parameters
        ----------
        X : series or 3-D panel, as in `fit`
        stride : int, optional
            Step between windows of a long series; default: the model's ``stride``.
            Window ``i`` starts at ``lstmae.window_starts(n, timesteps_, stride)[i]``.

        Returns
        -------
        ndarray, float32
            "repeat": ``(n_windows, latent)``; "sequence": ``(n_windows, timesteps, latent)``.
            For 3-D input ``n_windows`` is the number of samples.
        """
        data = self._prepare_fitted(X)
        scaled = self._scaled(data)
        step = self.stride if stride is None else stride
        _require_int("stride", step, 1)
        outputs = self._infer(lambda _, batch: self._encode(batch).numpy(), scaled, data.is_panel, step)
        return np.concatenate(list(outputs), axis=0)

    def reconstruct(self, X: Any) -> Any:
        """The model's reconstruction, in the layout and units of ``X``.

        Overlapping windows of a long series are averaged per timestep. A 1-D
        input gives 1-D, ``(n, F)`` gives ``(n, F)``, 3-D gives 3-D, a DataFrame
        a DataFrame with the same index and columns.
        """
        data = self._prepare_fitted(X)
        _, reconstruction = self._pass(data, want_reconstruction=True)
        return data.restore(inverse_transform(reconstruction, self.scaler_mean_, self.scaler_scale_))

    def anomaly_score(self, X: Any, *, per_feature: bool = False) -> np.ndarray:
        """Reconstruction error per timestep (long series) or per sample (3-D); higher = more anomalous.

        Parameters
        ----------
        X : series or 3-D panel
        per_feature : bool, default=False
            Keep one score per feature instead of their mean.

        Returns
        -------
        scores : ndarray, float64
            Long series: ``(n_timesteps,)`` (or ``(n_timesteps, n_features)``),
            every timestep scored, first and last included. 3-D input:
            ``(samples,)`` (or ``(samples, n_features)``).
        """
        data = self._prepare_fitted(X)
        return self._scores(data, per_feature=per_feature)

    def score_samples(self, X: Any) -> np.ndarray:
        """scikit-learn convention (higher = more normal): ``-anomaly_score(X)``."""
        return -self.anomaly_score(X)

    def detect(self, X: Any, *, threshold: float | None = None, min_gap: int | None = None) -> pd.DataFrame:
        """Anomalous intervals: runs of scores above the threshold.

        Parameters
        ----------
        X : series or 3-D panel
        threshold : float, optional
            Default: ``threshold_`` fitted during `fit`.
        min_gap : int, optional
            Runs separated by fewer than ``min_gap`` normal timesteps are merged.
            Default: ``timesteps_`` for a long series (a window cannot localise
            more finely), 1 (no merging) for samples of a panel.

        Returns
        -------
        DataFrame
            ``start``, ``end`` (inclusive positions: timesteps, or samples for
            3-D input), ``start_time``/``end_time`` when ``X`` has a time index,
            ``length``, ``peak_score``, ``mean_score``, ``severity`` (peak / threshold),
            ``top_features`` (the features contributing most to the interval's
            score, with their share).
        """
        data = self._prepare_fitted(X)
        per_feature = self._scores(data, per_feature=True)  # (n, F) or (S, F)
        scores = per_feature.mean(axis=1)
        limit = self.threshold_ if threshold is None else threshold
        if not _is_number(limit) or not np.isfinite(limit) or limit < 0:
            raise ParameterError(f"threshold must be a finite number >= 0, got {limit!r}.")
        gap = (1 if data.is_panel else self.timesteps_) if min_gap is None else min_gap
        _require_int("min_gap", gap, 1)
        index = None if data.is_panel else data.index
        names = getattr(self, "feature_names_in_", None)
        return interval_table(
            scores, float(limit), gap, index=index, feature_scores=per_feature,
            feature_names=None if names is None else [str(n) for n in names],
        )

    def explain(self, X: Any = None) -> str:
        """The shape walk: how ``X`` becomes windows and flows through each layer, in Keras terms."""
        from lstmae.explain import explain_shapes

        fitted = hasattr(self, "module_")
        units = self.config_.units if fitted else self._validate_params()
        data = prepare(X) if X is not None else None
        if fitted:
            timesteps, reason, features = self.timesteps_, self.timesteps_reason_, self.n_features_in_
        elif data is not None:
            (timesteps, reason), features = self._resolve_timesteps(data), data.n_features
        else:
            raise NotFittedError("explain() needs data or a fitted model: call explain(X) or fit first.")
        sizes: dict[str, int] = {}
        if data is not None:
            if data.is_panel:
                sizes["n_samples"] = data.values.shape[0]
            else:
                sizes["n_timesteps"] = data.values.shape[0]
        notes = [reason]
        n_all = sizes.get("n_samples") or (n_windows(sizes["n_timesteps"], timesteps, self.stride) if sizes else 0)
        n_fit = int(n_all * (1 - self.validation_split))
        if self.shuffle and self.windows_per_epoch is not None and n_fit > self.windows_per_epoch:
            notes.append(
                f"windows_per_epoch={self.windows_per_epoch}: each epoch trains on {self.windows_per_epoch} of the "
                f"{n_fit} training windows, drawn afresh every epoch "
                f"({-(-self.windows_per_epoch // self.batch_size)} batches, not the count below)"
            )
        return explain_shapes(
            timesteps=timesteps,
            n_features=features,
            units=units,
            architecture=self.config_.architecture if fitted else self.architecture,
            stride=self.stride,
            batch_size=self.batch_size,
            validation_split=self.validation_split,
            notes=notes,
            frame=self.config_.frame if fitted else self._resolve_frame(timesteps),
            **sizes,
        ).text

    def report(self, X: Any, path: str | os.PathLike, *, labels: Any = None) -> "os.PathLike":
        """Write an interactive, self-contained HTML report of ``X`` to ``path``; see `lstmae.html_report`.

        ``labels`` (n_timesteps,), optional: known anomalies (non-zero), shaded in the plots.
        """
        from lstmae.html_report import write_report

        return write_report(self, X, path, labels=labels)

    # ------------------------------------------------------------ internals
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError(
                "this LSTMAutoencoder is not fitted yet; call fit(X) first or load a model with LSTMAutoencoder.load(path)."
            )

    def _prepare_fitted(self, X: Any) -> Prepared:
        self._check_fitted()
        data = prepare(X)
        if data.n_features != self.n_features_in_:
            names = getattr(self, "feature_names_in_", None)
            fitted_on = f" ({list(names)})" if names is not None else ""
            raise FeatureMismatchError(
                f"X has {data.n_features} feature(s) but the model was fitted on {self.n_features_in_}{fitted_on}; "
                "pass the same columns as during fit."
            )
        names = getattr(self, "feature_names_in_", None)
        if names is not None and data.columns is not None and data.input_ndim == 2 and list(names) != data.columns:
            raise FeatureMismatchError(
                f"X has columns {data.columns} but the model was fitted on {list(names)}; "
                "pass the same columns, in the same order."
            )
        if data.is_panel and data.values.shape[1] != self.timesteps_:
            raise FeatureMismatchError(
                f"3-D input has {data.values.shape[1]} timesteps per sample but the model was fitted with "
                f"timesteps={self.timesteps_}; reshape the samples to {self.timesteps_} timesteps."
            )
        if not data.is_panel and data.values.shape[0] < self.timesteps_:
            raise DataError(
                f"the series has {data.values.shape[0]} timesteps, fewer than the model's timesteps={self.timesteps_}; "
                "pass at least one full window."
            )
        return data

    def _device(self) -> torch.device:
        return next(self.module_.parameters()).device

    def _scaled(self, data: Prepared) -> torch.Tensor:
        return torch.from_numpy(transform(data.values, self.scaler_mean_, self.scaler_scale_))

    def _batches(self, scaled: torch.Tensor, is_panel: bool, stride: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(window starts or sample indices (B,), windows (B, T, F)) in bounded chunks."""
        timesteps = self.timesteps_
        width = max(scaled.shape[-1], 4 * max(self.config_.units))
        chunk = max(1, _INFERENCE_CHUNK_VALUES // (timesteps * width))
        if is_panel:
            for first in range(0, scaled.shape[0], chunk):
                index = torch.arange(first, min(first + chunk, scaled.shape[0]))
                yield index, scaled[index]
            return
        view = scaled.unfold(0, timesteps, 1)  # (n - T + 1, F, T): a view, nothing copied
        starts = torch.from_numpy(window_starts(scaled.shape[0], timesteps, stride))
        for first in range(0, len(starts), chunk):
            part = starts[first : first + chunk]
            yield part, view[part].transpose(1, 2)

    def _infer(self, function: Any, scaled: torch.Tensor, is_panel: bool, stride: int) -> Iterator[Any]:
        """``function(where, batch)`` for every chunk of `_batches`, in order, chunks on every core (`lstmae.parallel`)."""
        with torch.inference_mode():
            yield from ordered_map(function, self._batches(scaled, is_panel, stride), cpu_workers(self._device()))

    def _encode(self, batch: torch.Tensor) -> torch.Tensor:
        """Windows (B, T, F) on the CPU -> their encoder output on the CPU."""
        return self.module_.encode(batch.to(self._device())).cpu()

    def _pass(
        self,
        data: Prepared,
        want_reconstruction: bool = False,
        reference: torch.Tensor | None = None,
        normalize: bool | None = None,
        exclude: tuple[torch.Tensor, int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Squared errors (and reconstructions) in scaled units, merged per timestep.

        Parameters
        ----------
        normalize : bool, optional
            Divide each feature's squared errors by ``feature_levels_``;
            default: the ``normalize_errors`` parameter (when fitted levels exist).
        reference : Tensor of shape (M, L), optional
            Training embeddings: then the second result is each window's
            distance to the nearest of them (see `lstmae.latent`), merged per
            timestep like the errors, instead of the reconstruction.
        exclude : (reference positions (M,), radius), optional
            With ``reference``: skip the reference rows within ``radius`` of
            each window's position (window start or sample index), as for the
            training scores in `fit` (see `_fit_latent`).

        Returns
        -------
        errors : ndarray
            Long series: ``(n_timesteps, F)``, each timestep's squared error
            averaged over the windows (every ``score_stride``-th, and the last)
            that cover it. Panel: ``(S, T, F)``.
        reconstruction : ndarray of the same shape, or None
            With ``reference``: latent distances, ``(n_timesteps, 1)`` or ``(S, 1, 1)``.
        """
        scaled = self._scaled(data)
        device = self._device()
        second = reference is not None or want_reconstruction
        if data.is_panel:
            errors = np.empty(scaled.shape, dtype=np.float64)
            shape = (scaled.shape[0], 1, 1) if reference is not None else scaled.shape
            recon = np.empty(shape, dtype=np.float64) if second else None
        else:
            n, features = scaled.shape
            error_acc = TimestepAccumulator(n, features)
            recon_acc = TimestepAccumulator(n, 1 if reference is not None else features) if second else None

        def chunk(where: torch.Tensor, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
            z = self.module_.encode(batch.to(device))  # (B, L) for the repeat design
            output = self.module_.decode(z, batch.shape[1]).cpu()  # (B, T, F)
            return where.numpy(), (output - batch).pow(2).double().numpy(), z.cpu() if reference is not None else output

        for where, squared, output in self._infer(chunk, scaled, data.is_panel, self._score_stride()):
            if reference is not None:
                # In this thread, not the workers: measured, a distance search running beside the
                # workers' networks made their results vary in the last bits from run to run.
                at = None if exclude is None else (torch.from_numpy(np.asarray(where)), *exclude)
                distance = nearest_distances(output, reference, at).double()  # (B,)
                output = distance[:, None, None].expand(-1, 1 if data.is_panel else squared.shape[1], 1)
            output = output.double().numpy() if second else None
            if data.is_panel:
                errors[where] = squared
                if recon is not None:
                    recon[where] = output
            else:
                error_acc.add(where, squared)
                if recon_acc is not None:
                    recon_acc.add(where, output)
        if not data.is_panel:
            errors = error_acc.mean()
            recon = recon_acc.mean() if recon_acc is not None else None
        if normalize is None:
            normalize = self.normalize_errors and hasattr(self, "feature_levels_")
        if normalize:
            errors = errors / self.feature_levels_  # broadcast over the last axis (F)
        return errors, recon

    def _score_stride(self) -> int:
        """The step between scoring windows: ``score_stride``, "auto" resolved, at most ``timesteps_``."""
        step = max(1, self.timesteps_ // SCORE_WINDOWS_PER_STEP) if self.score_stride == "auto" else int(self.score_stride)
        if not 1 <= step <= self.timesteps_:
            raise ParameterError(
                f"score_stride must be 'auto' or an integer in [1, timesteps={self.timesteps_}], got {self.score_stride!r}."
            )
        return step

    def _scores(self, data: Prepared, per_feature: bool = False, exclude: Any = None) -> np.ndarray:
        total, per = self._score_parts(data, exclude=exclude)
        return per if per_feature else total

    def _score_parts(self, data: Prepared, scorer: str | None = None, exclude: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores (n,) or (S,), per-feature reconstruction scores (n, F) or (S, F)).

        With the "combined" scorer the score is the reconstruction score over
        its held-out level plus LATENT_WEIGHT times the latent distance over
        its held-out level; per-feature scores are always the reconstruction's.
        """
        scorer = self._scorer() if scorer is None else scorer
        reference = getattr(self, "latent_reference_", None) if scorer != "reconstruction" else None
        if scorer != "reconstruction" and reference is None:
            raise ParameterError(
                f"scorer={scorer!r} needs the training embeddings, which this model was fitted without "
                "(scorer='reconstruction'); refit with that scorer or use scorer='reconstruction'."
            )
        reconstruction, latent, per = self._parts(data, reference, exclude)
        if latent is None:
            return reconstruction, per
        if scorer == "latent":
            return latent, per
        levels = self.score_levels_
        return reconstruction / levels[0] + LATENT_WEIGHT * latent / levels[1], per

    def _parts(
        self, data: Prepared, reference: torch.Tensor | None, exclude: Any = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """One pass: (reconstruction score (n,), latent distance (n,) or None without ``reference``,
        per-feature reconstruction scores (n, F)), each aggregated per timestep (or per sample)."""
        errors, distances = self._pass(data, reference=reference, exclude=exclude)
        if data.is_panel:
            per = errors.mean(axis=1)  # (S, F)
        elif self.aggregation == "window":
            per = centred_mean(errors, self.timesteps_)  # (n, F)
        else:
            per = errors  # (n, F)
        reconstruction = per.mean(axis=1)
        if reference is None:
            return reconstruction, None, per
        latent = distances.reshape(len(reconstruction))
        if not data.is_panel and self.aggregation == "window":
            latent = centred_mean(latent, self.timesteps_)
        return reconstruction, latent, per

    # --------------------------------------------------------------- files
    def save(self, path: str | os.PathLike, *, metadata: Mapping[str, Any] | None = None) -> "os.PathLike":
        """Write the fitted model to one safetensors file (weights + JSON header). Atomic.

        ``metadata``: JSON values kept in the header, given back by `load` as ``metadata_``
        (the command line keeps how the data was read: ``{"read": {"id_column": ...}}``).
        """
        import json

        from lstmae.io import save_model

        self._check_fitted()
        try:
            metadata = json.loads(json.dumps(dict(metadata or {}), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"metadata must be a mapping of JSON values, got {describe(metadata)} ({exc}).") from None
        tensors = {f"net.{k}": v for k, v in self.module_.state_dict().items()}
        tensors["scaler.mean"] = torch.from_numpy(np.asarray(self.scaler_mean_, dtype=np.float64))
        tensors["scaler.scale"] = torch.from_numpy(np.asarray(self.scaler_scale_, dtype=np.float64))
        if hasattr(self, "latent_reference_"):
            tensors["scoring.latent_reference"] = self.latent_reference_.contiguous()
        if hasattr(self, "feature_levels_"):
            tensors["scoring.feature_levels"] = torch.from_numpy(np.asarray(self.feature_levels_, dtype=np.float64))
        names = getattr(self, "feature_names_in_", None)
        info = {
            "params": _jsonable_params(self.get_params()),
            "tuple_params": [key for key, value in self.get_params().items() if isinstance(value, tuple)],
            "network": self.config_.to_dict(),
            "fitted": {
                "threshold_": self.threshold_,
                "history_": self.history_,
                "timesteps_reason_": self.timesteps_reason_,
                "input_kind_": self.input_kind_,
                "seed_": self.seed_,
                "fit_seconds_": self.fit_seconds_,
                "diagnostics_": getattr(self, "diagnostics_", None),
                "score_levels_": list(self.score_levels_) if hasattr(self, "score_levels_") else None,
                "feature_names_in_": None if names is None else [str(n) for n in names],
            },
            "metadata": metadata,
        }
        return save_model(path, tensors, info)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto") -> "LSTMAutoencoder":
        """Read a model written by `save`. Never executes code from the file."""
        from lstmae.io import load_model

        tensors, info = load_model(path)
        try:
            params = dict(info["params"])
            params["device"] = device
            for key in info.get("tuple_params", []):  # JSON has no tuples: give back what was given
                params[key] = tuple(params[key])
            model = cls(**params)
            config = NetworkConfig.from_dict(info["network"])
            network = _Network(config)
            state = {k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")}
            network.load_state_dict(state, strict=True)
            fitted = info["fitted"]
            model.scaler_mean_ = tensors["scaler.mean"].numpy().astype(np.float64)
            model.scaler_scale_ = tensors["scaler.scale"].numpy().astype(np.float64)
            model.metadata_ = dict(info.get("metadata") or {})  # {} in files written before metadata existed
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{str(path)!r} is an lstmae file with incomplete or inconsistent content ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}).") from None
        network.eval()
        model.module_ = network.to(resolve_device(device))
        model.config_ = config
        model.timesteps_ = config.timesteps
        model.n_features_in_ = config.n_features
        model.threshold_ = float(fitted["threshold_"])
        model.history_ = {k: [float(x) for x in v] for k, v in fitted["history_"].items()}
        model.timesteps_reason_ = fitted.get("timesteps_reason_", "")
        model.input_kind_ = fitted.get("input_kind_", "series")
        model.seed_ = fitted.get("seed_")
        model.fit_seconds_ = fitted.get("fit_seconds_")
        if "scoring.feature_levels" in tensors:
            model.feature_levels_ = tensors["scoring.feature_levels"].numpy().astype(np.float64)
        if "scoring.latent_reference" in tensors:
            if fitted.get("score_levels_") is None:
                raise ModelFileError(f"{str(path)!r} has latent reference embeddings but no score levels; the file is incomplete.")
            model.latent_reference_ = tensors["scoring.latent_reference"].float()
            model.score_levels_ = tuple(float(v) for v in fitted["score_levels_"])
        if fitted.get("diagnostics_") is not None:
            model.diagnostics_ = Diagnostics.from_dict(fitted["diagnostics_"]).to_dict()
        if fitted.get("feature_names_in_") is not None:
            model.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
        return model


def resolve_device(device: str) -> torch.device:
    """"auto" -> CUDA when available, else CPU; validates explicit names."""
    if not isinstance(device, str):
        raise ParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}.")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}.") from None
    if resolved.type not in ("cpu", "cuda"):
        raise ParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}.")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device={device!r} but no CUDA device is available here; use device='auto' or 'cpu'.")
    return resolved


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _require_int(name: str, value: Any, minimum: int) -> None:
    if not _is_int(value) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def _jsonable_params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as JSON values (tuples -> lists, numpy scalars -> Python).

    ``trainer_kwargs`` is left out: Lightning objects (loggers, callbacks) for one
    training run, neither saved with a model nor part of a checkpoint's fingerprint.
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == "trainer_kwargs":
            continue
        if isinstance(value, (tuple, list)):
            value = [int(v) for v in value]
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


__all__ = ["LSTMAutoencoder", "resolve_device"]
