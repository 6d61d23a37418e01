"""`LSTMAutoencoder`: the scikit-learn style estimator users work with.

Public methods validate, convert the input with `lstmae.data.frames.prepare`,
then delegate. Data flows one way, each stage in its own module::

    input -> canonical array (lstmae.data) -> scaled windows -> network (lstmae.scoring.inference)
          -> merged errors / embeddings -> scores (lstmae.scoring) -> threshold -> intervals

What scoring needs after training is one `lstmae.scoring.state.ScoringState`, built in
one pass over the training data and saved as a unit.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from lstmae.backends.device import resolve_device
from lstmae.backends.network import LSTMAutoencoder as _Network
from lstmae.config import NetworkConfig
from lstmae.data import collection
from lstmae.data.frames import Prepared, prepare
from lstmae.data.period import choose_timesteps
from lstmae.data.scaling import inverse_transform
from lstmae.data.windows import n_windows
from lstmae.detector import Detector, check_input, labelled, labelled_embeddings
from lstmae.diagnostics import Diagnostics, diagnose, early_stop, floored_levels, too_few_windows
from lstmae.errors import (
    DataError,
    DegenerateModelWarning,
    NotFittedError,
    ParameterError,
)
from lstmae.params import check_integer, check_windows, jsonable_params, n_train, resolve_frame
from lstmae.params import validate as validate_params
from lstmae.persistence.atomic import is_rank_zero
from lstmae.persistence.model_file import StoredModel, model_document, read_model, save_model, scoring_tensors
from lstmae.reports.explain import explain_shapes
from lstmae.reports.html import write_report
from lstmae.scoring import inference
from lstmae.scoring.state import ScoringSettings, ScoringState, fit_state, resolve_settings
from lstmae.streaming.scorer import StreamScorer

#: Training windows the diagnostics look at (evenly spaced).
DIAGNOSTIC_WINDOWS = 256


class LSTMAutoencoder(Detector, BaseEstimator):
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
    windows_per_series : int, "auto" or None, default="auto"
        A collection of series (`lstmae.data.collection`): each epoch draws at most
        this many training windows from every series, so a long series does not
        drown the short ones. "auto": ``windows_per_epoch`` shared equally
        between the series (all windows when that is None). None: no cap.
    series_scaling : {"series", "global"}, default="series"
        A collection of series: "series" scales each series by its own training
        mean and scale (each series' state keeps its scaler); "global": one
        scaler fitted on all series pooled.
    score_stride : int or "auto", default="auto"
        Step between the windows scored by `anomaly_score`/`detect` (and
        `reconstruct`), at most ``timesteps``; every
        timestep stays covered and its errors are averaged over the windows
        that cover it (exact merge). "auto": timesteps // 8, so each timestep is
        seen by about 8 windows. 1 scores every stride-1 window.
    scorer : {"auto", "reconstruction", "latent", "neighbours", "input", "combined"}, default="auto"
        What a score measures. "reconstruction": the reconstruction error.
        "latent": the distance from the window's embedding to the nearest
        training window's (`lstmae.scoring.latent`; "has the encoder seen a window like
        this?"). "neighbours" (series only): the distance from each z-normalised
        window of timesteps // 2 steps to the nearest z-normalised training
        window of that length (`lstmae.scoring.neighbours`,
        the matrix profile's discord distance against the training data; it
        finds a single odd cycle that the network rebuilds well). "combined":
        for a series, reconstruction over its held-out level plus a weight x
        latent over its held-out level plus a weight x neighbours over its
        held-out level (`lstmae.scoring.combination.SERIES_WEIGHTS`: 0.25 and 4 for one
        feature, the nearest-window weight scaled down where the training
        windows cover held-out ones poorly; 2 and 16 for several; selected by cross-validation over source
        families, bench/RESULTS-quality.md); on several features the
        reconstruction is the maximum over features and the nearest windows
        compare the continuous (not two-valued) features alone
        (`lstmae.scoring.combination.SERIES_OPTIONS`); for a panel, each sample against
        the training samples: `lstmae.scoring.combination.PANEL_WEIGHTS` of the
        reconstruction, the latent distance and the input-space distance to the
        nearest training sample, each over its level (bench/RESULTS-panel.md).
        "input" (panels only): that input-space distance alone. Every part is
        one module of `lstmae.scoring.parts`.
        "auto": "combined" for the "repeat" design, "reconstruction" for
        "sequence" (which has no window embedding).
    normalize_errors : bool, default=True
        Divide each feature's squared error by its mean on the training data,
        so every feature's error is in units of its own typical error and no
        feature (a rare flag, a noisy sensor) dominates the mean over features.
        Per-feature scores are then "times the usual error". False: squared
        errors in the scaled units the model was trained in.
    aggregation : {"window", "peak", "timestep"}, default="peak"
        From per-window errors to one score per timestep. "timestep": the
        timestep's squared error averaged over the windows covering it.
        "window": that, then averaged over the T-long stretch centred on the
        timestep, so a timestep is scored by how badly its whole surrounding
        window is reconstructed (smooth scores, better at localising
        anomalies on benchmark data; see bench/RESULTS-quality.md). "peak":
        the score of the most anomalous of the T-long stretches that contain
        the timestep (each scored as "window" scores its centre), so every
        timestep of an odd window is flagged, not only those near its centre;
        a stream's score waits T - 1 points more than at the centre. Chosen
        by cross-validation over source families on every labelled dev
        series (bench/RESULTS-quality.md). Panels score whole samples and
        ignore it.
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
        fixed). Not part of a checkpoint's fingerprint. Distributed training:
        ``strategy="ddp"`` with ``devices``/``num_nodes`` (docs/guide/scaling.md);
        ``batch_size`` is then per process, Lightning's convention (the global
        batch is ``batch_size x devices x num_nodes``), ``random_state`` must be
        set (every process draws the same windows), and only the process of
        rank 0 writes files (`save`).

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (`lstmae.backends.network.LSTMAutoencoder`).
    config_ : NetworkConfig
    timesteps_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only for DataFrame input (a series, or a panel indexed by (id, time))
    scaler_mean_, scaler_scale_ : ndarray of shape (n_features,)
    threshold_ : float
    scoring_states_ : dict of key -> lstmae.scoring.state.ScoringState
        What scores each series the model was fitted on: one entry, key None,
        for a model of one series or panel; one per series (its key) for a
        global model. Every method scores through this one mapping.
    scoring_state_ : lstmae.scoring.state.ScoringState, only for a model of one series or panel
        Everything scoring needs besides the network (scaler, ``feature_levels_``,
        ``latent_reference_``, ``score_levels_``, ``threshold_``: read-only views of it).
    metadata_ : dict
        User metadata given to `save` and read back by `load`; empty after `fit`.
    diagnostics_ : dict
        Is the model degenerate? ``identity_ratio`` (error on shuffled,
        reversed and noise inputs over training error; near 1: it reconstructs
        anything), ``noise_explained``, ``collapse_ratio`` (error over the error
        of predicting each window's mean; near 1: it learned only the mean) and
        ``warnings`` in words (also issued as `DegenerateModelWarning`). See
        `lstmae.diagnostics`.
    history_ : dict of str -> list of float
        "loss", "mae" and, with validation, "val_loss", "val_mae", per epoch.
    early_stopping_ : dict or None
        How early stopping ended the fit: {"stopped_epoch", "epochs", "best_epoch",
        "best_val_loss"} (epochs from 1; the model has the best epoch's weights), or None
        when it ran every epoch asked for.
    input_kind_ : {"series", "panel"}
    series_states_ : dict of key -> lstmae.scoring.state.ScoringState, only for a global model (``scoring_states_``)
        Fitted on a collection of series: each series' scaler, levels and
        threshold (such a model has no single ``scoring_state_``/``threshold_``).
    timesteps_reason_ : str
    seed_ : int
    fit_seconds_ : float
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
        windows_per_series: int | str | None = "auto",
        series_scaling: str = "series",
        score_stride: int | str = "auto",
        aggregation: str = "peak",
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
        self.windows_per_series = windows_per_series
        self.series_scaling = series_scaling
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
        self, X: Any, y: None = None, *, checkpoint: str | os.PathLike | None = None, resume: bool = False,
        series_column: str | None = None,
    ) -> "LSTMAutoencoder":
        """Train on data believed normal.

        Parameters
        ----------
        X : array-like of shape (n_timesteps,), (n_timesteps, n_features) or
            (samples, timesteps, features), or a DataFrame / Series, or a collection
            of series; a DataFrame indexed by (id, time) is a panel (one sample per
            id), whose ids and column names the model keeps
            Finite values only: fill gaps first (`lstmae.data.cleaning.fill_missing`,
            or read files with `lstmae.data.readers.read_data`, which does).
            A collection (a list or dict of series, or a long DataFrame with
            ``series_column``) trains one global model on the windows of all
            series (`lstmae.data.collection`); scoring then takes a collection too.
        y : ignored
        series_column : str, optional
            ``X`` is a long DataFrame whose rows of each value of this column form one series.
        checkpoint : path, optional
            Write a checkpoint (safetensors, see `lstmae.persistence.checkpoint`) after every
            epoch. It is left in place after fit; delete it once the model is saved.
        resume : bool, default=False
            Continue from ``checkpoint``, which must come from a fit on the same
            data with the same parameters (``epochs`` may differ). A checkpoint
            that already holds ``epochs`` epochs or more (or had stopped early)
            trains nothing more: the model gets its best weights and a
            `lstmae.errors.ResumeWarning` names their epoch.

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
        data = collection.split(X, series_column)  # one part for a plain series or panel
        timesteps, reason = choose_timesteps(data.longest, self.timesteps, self.frame)
        collection.check_lengths(data, timesteps)
        config = NetworkConfig(data.n_features, timesteps, units, self.architecture, resolve_frame(self.frame, timesteps))
        check_windows(timesteps, stride=self.stride, score_stride=self.score_stride)
        scalers = collection.fit_scalers(data, self.series_scaling)
        scaled = collection.scaled(data, scalers)
        network, history, seed, train_set = _train(self, config, data, scaled, device, checkpoint, resume)

        self.module_ = network.to(device)
        self.config_ = config
        self.timesteps_, self.timesteps_reason_ = timesteps, reason
        self.n_features_in_ = data.n_features
        first = data.parts[0]
        if first.columns is not None and first.input_ndim == 2:
            self.feature_names_in_ = np.asarray(first.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.input_kind_, self.seed_, self.history_, self.metadata_ = first.kind, seed, history, {}
        self.early_stopping_ = early_stop(history, self.epochs)
        few = too_few_windows(len(train_set), data.values.shape[0], timesteps, data.is_panel, self.validation_split)
        self.diagnostics_ = _diagnose(self.module_, train_set, self.architecture, seed, self.early_stopping_, [few] if few else [])
        states = [
            fit_state(self.module_, part.values, part.is_panel, scaler, self._settings(), self.validation_split, self.threshold, self.contamination)
            for part, scaler in zip(data.parts, scalers)
        ]
        combined = self._settings().scorer == "combined"  # the only score that divides parts by their levels
        floored = [[part.name for part in state.parts_for(self._settings()) if combined and part.clean] for state in states]
        names = sorted({name for found in floored for name in found})
        note = floored_levels(names, sum(1 for found in floored if found), len(states))
        if note:
            self.diagnostics_["warnings"] = [*self.diagnostics_["warnings"], note]
        for message in self.diagnostics_["warnings"]:
            warnings.warn(message, DegenerateModelWarning, stacklevel=2)
        self.scoring_states_ = dict(zip(data.keys, states))  # plain input: the one key None
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _validate_params(self) -> tuple[int, ...]:
        """Check every parameter before any work (`lstmae.params`, the one table); return units as a tuple."""
        return validate_params(self.get_params())["units"]

    def _settings(self) -> ScoringSettings:
        """The scoring parameters in force now, "auto" resolved (they may change after fit, as in scikit-learn)."""
        return resolve_settings(self.scorer, self.config_.architecture, self.score_stride, self.aggregation, self.timesteps_, self.normalize_errors)

    # ------------------------------------------------------------ inference
    def encode(self, X: Any, *, stride: int | None = None, series_column: str | None = None) -> Any:
        """The encoder output (the embeddings).

        Parameters
        ----------
        X : series or 3-D panel, as in `fit`; or a collection (then a dict {series: embeddings})
        stride : int, optional
            Step between windows of a long series; default: the model's ``stride``.
            Window ``i`` starts at ``lstmae.window_starts(n, timesteps_, stride)[i]``.

        Returns
        -------
        ndarray, float32, or a DataFrame for pandas input
            "repeat": ``(n_windows, latent)``; "sequence": ``(n_windows, timesteps, latent)``.
            For 3-D input ``n_windows`` is the number of samples. Pandas input gives
            the "repeat" embeddings as a DataFrame (columns ``z0``, ``z1``, ...) indexed by
            the samples' ids (a panel indexed by (id, time)) or by each window's first
            index label (a series).
        """
        step = self.stride if stride is None else stride

        def embeddings(data: Prepared, state: ScoringState) -> Any:
            check_integer("stride", step, 1)
            found = inference.embeddings(self.module_, state.scale(data.values), data.is_panel, step).numpy()
            return labelled_embeddings(data, found, self.timesteps_, step)

        return self._each_series(X, series_column, "encode", embeddings)

    def reconstruct(self, X: Any, *, series_column: str | None = None) -> Any:
        """The model's reconstruction, in the layout and units of ``X``.

        Overlapping windows of a long series are averaged per timestep. A 1-D
        input gives 1-D, ``(n, F)`` gives ``(n, F)``, 3-D gives 3-D, a DataFrame
        a DataFrame with the same index and columns; a collection a dict
        {series: reconstruction}, a long DataFrame the same table reconstructed.
        """
        def reconstruction(data: Prepared, state: ScoringState) -> Any:
            passed = inference.merged(self.module_, state.scale(data.values), data.is_panel, self._settings().score_stride, reconstruction=True)
            return data.restore(inverse_transform(passed.reconstruction, state.scaler_mean, state.scaler_scale))

        return self._each_series(X, series_column, "reconstruct", reconstruction)

    def anomaly_score(self, X: Any, *, per_feature: bool = False, series_column: str | None = None) -> Any:
        """Score per timestep (long series) or per sample (3-D); higher = more anomalous.

        Parameters
        ----------
        X : series or 3-D panel, or a collection of series
        per_feature : bool, default=False
            Keep one (reconstruction) score per feature instead of the model's score.
        series_column : str, optional
            ``X`` is a long DataFrame split into series by this column.

        Returns
        -------
        scores : ndarray of float64, or a pandas Series named "score" for pandas input
            Long series: ``(n_timesteps,)`` (or ``(n_timesteps, n_features)``, a
            DataFrame with the input's columns for pandas input), every timestep
            scored, first and last included. 3-D input: ``(samples,)`` (or ``(samples, n_features)``),
            each sample scored against the training samples (see ``scorer``); a
            Series (DataFrame) indexed by id for a DataFrame indexed by (id, time).
            A collection: a dict {series: scores}, or for a long DataFrame one
            table with the series column and "score", the input's index and row order.
        """
        def score(data: Prepared, state: ScoringState) -> Any:
            scores, per = self._score_parts(data, state)
            return labelled(data, per if per_feature else scores)

        return self._each_series(X, series_column, "anomaly_score", score)

    def detect(self, X: Any, *, threshold: float | None = None, min_gap: int | None = None, series_column: str | None = None) -> Any:
        """Anomalous intervals (`lstmae.detector.Detector.detect`, its options); a collection of series gives a
        dict {series: intervals}, or for a long DataFrame one table of intervals with the series column first.
        Each series is detected with its own threshold (a global model) unless ``threshold`` is given."""
        return self._each_series(X, series_column, "detect", lambda data, state: self._intervals(data, state, threshold, min_gap))

    def seen_in_training(self, X: Any, *, series_column: str | None = None) -> Any:
        """Which timesteps (samples) of ``X`` the model was trained on.

        A timestep is seen when it lies in a window of ``timesteps_`` rows that equals, bit for bit
        once scaled, a window of the training data (a sample: a training sample), wherever it sits
        in ``X`` (`lstmae.scoring.seen`). Those windows are scored as the threshold saw them:
        leave-self-out, never matched with themselves or their overlapping neighbours, so scores do
        not step up where the training data ends. The plots and the report shade these timesteps.

        Returns
        -------
        ndarray of bool, shape (n_timesteps,) or (samples,); a collection: a dict {series: mask}.
        All False for a model saved before lstmae kept the training rows' fingerprints.
        """
        return self._each_series(X, series_column, "seen_in_training", lambda data, state: state.seen_rows(data.values))

    # -------------------------------------------------- one path for every input
    def _each_series(self, X: Any, series_column: str | None, method: str, one: Callable[[Prepared, ScoringState], Any]) -> Any:
        """``one(prepared series, its scoring state)`` for every series of ``X``; the results as the input came.

        What ``X`` is (a series, a panel, a collection) is decided once, by `lstmae.data.collection.split`;
        which state scores which series, once, by `_states_for`. A plain input is the collection of one
        series (key None), and its result is returned as it is (`lstmae.data.collection.assemble`).
        """
        self._check_fitted()
        given = collection.split(X, series_column)
        states = self._states_for(given)
        results = {}
        for key, data in zip(given.keys, given.parts):
            check_input(self, data)
            results[key] = one(data, states[key])
        return collection.assemble(given, results, method)

    def _states_for(self, given: collection.Collection) -> dict[Any, ScoringState]:
        """{series key of ``given``: the scoring state that scores it}.

        A model of one series or panel scores every series with its one state; a global model scores
        each series with the state fitted on it, and knows only the series it was fitted on.
        """
        states = self.scoring_states_
        if None in states:
            return {key: states[None] for key in given.keys}
        if not given.many:
            raise DataError(
                f"this is a global model over {len(states)} series; pass a collection: a dict {{series: data}}, a list in "
                "the order of fit, or a long DataFrame with series_column (each series is scored by its own state)."
            )
        unknown = [key for key in given.keys if key not in states]
        if unknown:
            known = list(states)
            raise DataError(
                f"series {unknown[:5]} were not in the data this global model was fitted on (it knows {known[:10]}"
                f"{' ...' if len(known) > 10 else ''}); every series is scored by its own fitted state: fit on them too."
            )
        return states

    def _state(self) -> ScoringState:
        """The one scoring state of a model of one series or panel (``threshold_`` and the other views read it)."""
        states = vars(self).get("scoring_states_")
        if states is None:
            raise AttributeError(f"this {type(self).__name__} is not fitted yet: it has no scoring state.")
        if None not in states:
            raise AttributeError(
                f"this is a global model over {len(states)} series, each with its own scoring state "
                "(scaler, threshold): read series_states_[series]."
            )
        return states[None]

    @property
    def scoring_state_(self) -> ScoringState:
        """Everything scoring needs besides the network, for a model of one series or panel (``scoring_states_[None]``)."""
        return self._state()

    @property
    def series_states_(self) -> dict[Any, ScoringState]:
        """A global model's {series: scoring state} (``scoring_states_``); a model of one series or panel has none."""
        states = vars(self).get("scoring_states_")
        if states is None or None in states:
            raise AttributeError(f"this {type(self).__name__} is not a global model over a collection of series: it has no series_states_.")
        return states

    def _score_parts(self, data: Prepared, state: ScoringState) -> tuple[np.ndarray, np.ndarray]:
        """(scores (n,) or (S,), per-feature reconstruction scores (n, F) or (S, F)) of prepared input."""
        return state.score(self.module_, data.values, data.is_panel, self._settings())

    def stream(self, *, min_gap: int | None = None, missing: str = "interpolate", series: Any = None) -> "StreamScorer":
        """A scorer that takes a long series as it arrives (`lstmae.streaming.scorer.StreamScorer`).

        ``update(values, timestamps=None)`` returns the points whose score became
        final (``delay`` points later), ``flush()`` the rest; with ``score_stride=1``
        (and with any stride, after ``flush``) the scores equal `anomaly_score` of
        the whole series. ``min_gap``: as in `detect` (default ``timesteps_``);
        ``missing``: "interpolate" (a gap is filled once its next value arrives,
        with a warning) or "error"; ``series``: for a global model, the key of the
        series (as fitted) whose scoring state scores the stream.
        """
        self._check_fitted()
        if self.input_kind_ == "panel":
            raise DataError(
                "this model was fitted on a panel of separate sequences (3-D input); a stream scores one long "
                "series point by point. Score panels in batch with model.anomaly_score(X)."
            )
        names = getattr(self, "feature_names_in_", None)
        if series is None:
            state = self._state()
        else:
            states = self.scoring_states_
            if None in states:
                raise DataError(f"series={series!r}: this model was fitted on one series, not a collection; leave series out.")
            if series not in states:
                known = list(states)
                raise DataError(
                    f"series {series!r} was not in the data this global model was fitted on (it knows {known[:10]}"
                    f"{' ...' if len(known) > 10 else ''}); every series is scored by its own fitted state."
                )
            state = states[series]
        return StreamScorer(
            self.module_, state, self._settings(), n_features=self.n_features_in_,
            feature_names=None if names is None else [str(n) for n in names], min_gap=min_gap, missing=missing,
        )

    def explain(self, X: Any = None) -> str:
        """The shape walk: how ``X`` becomes windows and flows through each layer, in Keras terms."""
        return _explain(self, X)

    def report(self, X: Any, path: str | os.PathLike, *, labels: Any = None) -> "os.PathLike":
        """Write an interactive, self-contained HTML report of ``X`` to ``path``; see `lstmae.reports.html`.

        ``labels`` (n_timesteps,), optional: known anomalies (non-zero), shaded in the plots.
        """
        return write_report(self, X, path, labels=labels)

    # --------------------------------------------------------------- files
    def save(self, path: str | os.PathLike, *, metadata: Mapping[str, Any] | None = None) -> "os.PathLike":
        """Write the fitted model to one safetensors file (weights + JSON header). Atomic.

        metadata : mapping of str -> JSON value, optional
            Stored in the file and given back by `load` as ``metadata_``.
            Default: the model's ``metadata_`` (what `load` read; empty after `fit`).
        """
        self._check_fitted()
        if not is_rank_zero():  # DDP: every process holds the same model; one writes it
            return Path(path)
        tensors, fields = scoring_tensors(self.scoring_states_)
        tensors.update({f"net.{k}": v for k, v in self.module_.state_dict().items()})
        names = getattr(self, "feature_names_in_", None)
        fitted = {
            **fields,
            "history_": self.history_,
            "timesteps_reason_": self.timesteps_reason_,
            "input_kind_": self.input_kind_,
            "seed_": self.seed_,
            "fit_seconds_": self.fit_seconds_,
            "diagnostics_": getattr(self, "diagnostics_", None),
            "feature_names_in_": None if names is None else [str(n) for n in names],
        }
        info = model_document(self.get_params(), self.config_, fitted, getattr(self, "metadata_", {}) if metadata is None else metadata)
        return save_model(path, tensors, info)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto") -> "LSTMAutoencoder":
        """Read a model written by `save` (`lstmae.persistence.model_file.read_model`). Never executes code from the file."""
        stored = read_model(path, device)
        try:  # a file without "aggregation" was saved when every model aggregated by "window"
            model = cls(**{"aggregation": "window", **stored.params})
        except TypeError as exc:  # a parameter this lstmae does not have
            raise stored.inconsistent(exc) from None
        model._restore(stored)
        return model

    def _restore(self, stored: StoredModel) -> None:
        """Become the fitted model that ``stored`` holds: network, scoring state(s) and fitted attributes."""
        config, fitted = stored.config, stored.fitted
        self.config_, self.timesteps_, self.n_features_in_ = config, config.timesteps, config.n_features
        self.scoring_states_ = stored.scoring_states(self._settings())
        self.module_ = stored.network
        self.metadata_ = stored.metadata
        try:
            self.history_ = {k: [float(x) for x in v] for k, v in fitted["history_"].items()}
            self.early_stopping_ = early_stop(self.history_, self.epochs)
            if fitted.get("diagnostics_") is not None:
                self.diagnostics_ = Diagnostics.from_dict(fitted["diagnostics_"]).to_dict()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise stored.inconsistent(exc) from None
        self.timesteps_reason_ = fitted.get("timesteps_reason_", "")
        self.input_kind_ = fitted.get("input_kind_", "series")
        self.seed_ = fitted.get("seed_")
        self.fit_seconds_ = fitted.get("fit_seconds_")
        if fitted.get("feature_names_in_") is not None:
            self.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)


# ---------------------------------------------------------------- training
def _train(model: LSTMAutoencoder, config: NetworkConfig, data: collection.Collection, scaled: torch.Tensor, device: torch.device,
           checkpoint: str | os.PathLike | None, resume: bool) -> tuple[_Network, dict, int, Any]:
    """Build the network from the seed and train it: (network in eval mode, history, seed, training set)."""
    # Lightning takes seconds to import: training and its checkpoints load when a fit starts, so that
    # scoring, loading a model and the command line's error paths never wait for it.
    from lstmae.persistence.checkpoint import fingerprint, load_checkpoint, train_resumable
    from lstmae.training import TrainingPlan, train, window_datasets

    timesteps = config.timesteps
    resumed = None
    if resume:
        resumed = load_checkpoint(checkpoint)
    seed = resumed.seed if resumed is not None and model.random_state is None else _seed(model.random_state)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = _Network(config)

    plan_windows = collection.window_plan(data, timesteps, model.stride, model.validation_split, model.windows_per_epoch)
    train_set, val_set = window_datasets(plan_windows.train, plan_windows.held_out, scaled, data.is_panel, timesteps)
    cap = model.windows_per_epoch
    if data.many:
        cap = collection.series_cap(model.windows_per_series, model.windows_per_epoch, len(data.parts))
    plan = TrainingPlan(
        epochs=model.epochs,
        batch_size=model.batch_size,
        learning_rate=model.learning_rate,
        shuffle=model.shuffle,
        seed=seed,
        patience=model.patience,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=[device.index or 0] if device.type == "cuda" else 1,
        verbose=model.verbose,
        max_windows=cap,
        groups=plan_windows.groups,
        trainer_kwargs=model.trainer_kwargs,
    )
    if checkpoint is None:
        history = train(network, train_set, val_set, plan)
    else:
        # What shapes training must match on resume; epochs may grow, the rest only affects use.
        ignored = ("epochs", "threshold", "verbose", "device", "random_state")
        if not data.many:  # parameters of collections only: a checkpoint of one series keeps its fingerprint
            ignored += ("windows_per_series", "series_scaling")
        shaping = {k: v for k, v in jsonable_params(model.get_params()).items() if k not in ignored}
        if data.many:
            shaping["series"] = data.keys
        mark = fingerprint(data.values, {**shaping, "timesteps": timesteps, "seed": seed})
        history = train_resumable(network, train_set, val_set, plan, checkpoint, mark, resumed)
    network.eval()
    return network, history, seed, train_set


def _seed(random_state: int | None) -> int:
    if random_state is not None:
        return int(random_state) % (2**63)
    return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] % (2**63))


def _diagnose(network: _Network, train_set: Any, architecture: str, seed: int, early_stopped: dict | None,
              notes: list[str]) -> dict:
    """Identity and mean-collapse ratios on up to DIAGNOSTIC_WINDOWS training windows."""
    count = min(len(train_set), DIAGNOSTIC_WINDOWS)
    picks = torch.linspace(0, len(train_set) - 1, count).round().long().tolist()
    windows = train_set.__getitems__(picks)  # (N, T, F), scaled
    device = inference.network_device(network)
    result = diagnose(lambda w: network(w.to(device)).cpu(), windows, architecture, seed, early_stopped, notes)
    return result.to_dict()


# ------------------------------------------------------------- the window plan
def _explain(model: LSTMAutoencoder, X: Any) -> str:
    fitted = hasattr(model, "module_")
    units = model.config_.units if fitted else model._validate_params()
    data = prepare(X) if X is not None else None
    if fitted:
        timesteps, reason, features = model.timesteps_, model.timesteps_reason_, model.n_features_in_
    elif data is not None:
        (timesteps, reason), features = choose_timesteps(data, model.timesteps, model.frame), data.n_features
    else:
        raise NotFittedError("explain() needs data or a fitted model: call explain(X) or fit first.")
    sizes = data.sizes if data is not None else {}
    notes = [reason]
    n_all = sizes.get("n_samples") or (n_windows(sizes["n_timesteps"], timesteps, model.stride) if sizes else 0)
    n_fit = n_train(n_all, model.validation_split)
    if model.shuffle and model.windows_per_epoch is not None and n_fit > model.windows_per_epoch:
        notes.append(
            f"windows_per_epoch={model.windows_per_epoch}: each epoch trains on {model.windows_per_epoch} of the "
            f"{n_fit} training windows, drawn afresh every epoch "
            f"({-(-model.windows_per_epoch // model.batch_size)} batches, not the count below)"
        )
    return explain_shapes(
        timesteps=timesteps,
        n_features=features,
        units=units,
        architecture=model.config_.architecture if fitted else model.architecture,
        stride=model.stride,
        batch_size=model.batch_size,
        validation_split=model.validation_split,
        notes=notes,
        frame=model.config_.frame if fitted else resolve_frame(model.frame, timesteps),
        **sizes,
    ).text


__all__ = ["LSTMAutoencoder", "resolve_device"]
