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
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator

from lstmae.config import ARCHITECTURES, NetworkConfig
from lstmae.data.frames import Prepared, prepare
from lstmae.data.period import auto_timesteps
from lstmae.data.scaling import fit_scaler, inverse_transform, transform
from lstmae.data.windows import TimestepAccumulator, window_starts
from lstmae.errors import (
    DataError,
    FeatureMismatchError,
    ModelFileError,
    NotFittedError,
    ParameterError,
)
from lstmae.nn import LSTMAutoencoder as _Network
from lstmae.scoring import auto_threshold, interval_table

# Numbers (windows x timesteps x the wider of features and 4 x units, the size of
# the network's gate buffers) per inference chunk: bounds memory whatever the
# series length, and keeps chunks small enough to stay in cache (a few hundred
# windows of 40 x 100 units: about 1.5x faster than 50,000 on a CPU, bench/perf.py).
_INFERENCE_CHUNK_VALUES = 1 << 22


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
    units : int or sequence of int, default=64
        Hidden size of each encoder LSTM layer; the last is the latent size. The
        decoder mirrors the encoder: ``(64, 16)`` encodes 64 -> 16, decodes 16 -> 64.
    architecture : {"repeat", "sequence"}, default="repeat"
        "repeat": the bottleneck design, the encoder's last state repeated over
        time (Keras ``RepeatVector``). "sequence": every layer
        ``return_sequences=True``; with units >= features it can learn the identity.
    batch_size : int, default=32
        Windows per gradient step.
    epochs : int, default=50
        Maximum passes over the training windows.
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
    threshold : "auto" or float, default="auto"
        Score above which a timestep is anomalous. "auto": 1.25 x the largest
        per-timestep score on the training data (see `lstmae.scoring`).
    random_state : int or None, default=None
        Seed for weights and shuffling. Same seed and data give bit-identical
        scores on the CPU.
    device : str, default="auto"
        "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
    verbose : int, default=1
        0: silent. 1: a progress bar when writing to a terminal (never in pipes).
    score_stride : int or "auto", default=1
        Step between the starts of the windows a long series is scored (and
        reconstructed) with; the last window always ends on the last timestep.
        Each timestep's score is the mean over the windows that cover it, so
        every timestep is scored whatever the step. 1: every window; larger
        steps score about ``score_stride`` times faster. "auto": ``timesteps // 4``.
        At most ``timesteps``.

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
    history_ : dict of str -> list of float
        "loss", "mae" and, with validation, "val_loss", "val_mae", per epoch.
    input_kind_ : {"series", "panel"}
    timesteps_reason_ : str
    seed_ : int
    fit_seconds_ : float
    """

    def __init__(
        self,
        timesteps: int | str = "auto",
        stride: int = 1,
        units: int | Sequence[int] = 64,
        architecture: str = "repeat",
        batch_size: int = 32,
        epochs: int = 50,
        validation_split: float = 0.1,
        learning_rate: float = 1e-3,
        patience: int = 5,
        shuffle: bool = True,
        threshold: float | str = "auto",
        random_state: int | None = None,
        device: str = "auto",
        verbose: int = 1,
        score_stride: int | str = 1,
    ) -> None:
        self.timesteps = timesteps
        self.stride = stride
        self.units = units
        self.architecture = architecture
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_split = validation_split
        self.learning_rate = learning_rate
        self.patience = patience
        self.shuffle = shuffle
        self.threshold = threshold
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.score_stride = score_stride

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: None = None) -> "LSTMAutoencoder":
        """Train on data believed normal.

        Parameters
        ----------
        X : array-like of shape (n_timesteps,), (n_timesteps, n_features) or
            (samples, timesteps, features), or a DataFrame / Series
        y : ignored

        Returns
        -------
        self
        """
        started = time.perf_counter()
        units = self._validate_params()
        device = resolve_device(self.device)
        data = prepare(X)
        timesteps, reason = self._resolve_timesteps(data)
        if self.stride > timesteps:
            raise ParameterError(
                f"stride={self.stride} is larger than timesteps={timesteps}: training windows would skip "
                f"timesteps; use stride <= {timesteps}."
            )
        if _is_int(self.score_stride) and self.score_stride > timesteps:
            raise ParameterError(
                f"score_stride={self.score_stride} is larger than timesteps={timesteps}: scoring windows would "
                f"skip timesteps; use score_stride <= {timesteps} or 'auto'."
            )
        mean, scale = fit_scaler(data.values)
        scaled = torch.from_numpy(transform(data.values, mean, scale))
        seed = self._seed()
        config = NetworkConfig(data.n_features, timesteps, units, self.architecture)
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
        )
        history = train(network, train_set, val_set, plan)
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
        train_scores = self._scores(data)
        self.threshold_ = (
            auto_threshold(train_scores) if isinstance(self.threshold, str) else float(self.threshold)
        )
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _validate_params(self) -> tuple[int, ...]:
        """Check every parameter before any work; return units as a tuple."""
        if not (self.timesteps == "auto" or _is_int(self.timesteps)):
            raise ParameterError(f"timesteps must be 'auto' or an integer >= 2, got {self.timesteps!r}.")
        if _is_int(self.timesteps) and self.timesteps < 2:
            raise ParameterError(f"timesteps must be >= 2 (a window of at least two steps), got {self.timesteps!r}.")
        _require_int("stride", self.stride, 1)
        units = (self.units,) if _is_int(self.units) else self.units
        if isinstance(units, str) or not isinstance(units, Sequence) or len(units) == 0 or not all(_is_int(u) for u in units):
            raise ParameterError(f"units must be a positive integer or a non-empty list of them, got {self.units!r}.")
        if any(u < 1 or u > 4096 for u in units):
            raise ParameterError(f"every entry of units must be in [1, 4096], got {self.units!r}.")
        if self.architecture not in ARCHITECTURES:
            raise ParameterError(f"architecture must be one of {list(ARCHITECTURES)}, got {self.architecture!r}.")
        _require_int("batch_size", self.batch_size, 1)
        _require_int("epochs", self.epochs, 1)
        _require_int("patience", self.patience, 1)
        _require_int("verbose", self.verbose, 0)
        if not _is_number(self.validation_split) or not 0 <= self.validation_split < 1:
            raise ParameterError(f"validation_split must be in [0, 1), got {self.validation_split!r}.")
        if not _is_number(self.learning_rate) or not 0 < self.learning_rate <= 10:
            raise ParameterError(f"learning_rate must be in (0, 10], got {self.learning_rate!r}.")
        if not isinstance(self.shuffle, (bool, np.bool_)):
            raise ParameterError(f"shuffle must be True or False, got {self.shuffle!r}.")
        if not (self.threshold == "auto" or (_is_number(self.threshold) and np.isfinite(self.threshold) and self.threshold >= 0)):
            raise ParameterError(f"threshold must be 'auto' or a finite number >= 0, got {self.threshold!r}.")
        if self.random_state is not None and not (_is_int(self.random_state) and 0 <= self.random_state < 2**63):
            raise ParameterError(f"random_state must be None or an integer >= 0, got {self.random_state!r}.")
        if not (self.score_stride == "auto" or (_is_int(self.score_stride) and self.score_stride >= 1)):
            raise ParameterError(f"score_stride must be 'auto' or an integer >= 1, got {self.score_stride!r}.")
        return tuple(int(u) for u in units)

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
            return auto_timesteps(data.values)
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
        device = self._device()
        with torch.inference_mode():
            outputs = [
                self.module_.encode(batch.to(device)).cpu().numpy()
                for _, batch in self._batches(scaled, data.is_panel, step)
            ]
        return np.concatenate(outputs, axis=0)

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
            ``length``, ``peak_score``, ``mean_score``, ``severity`` (peak / threshold).
        """
        data = self._prepare_fitted(X)
        scores = self._scores(data)
        limit = self.threshold_ if threshold is None else threshold
        if not _is_number(limit) or not np.isfinite(limit) or limit < 0:
            raise ParameterError(f"threshold must be a finite number >= 0, got {limit!r}.")
        gap = (1 if data.is_panel else self.timesteps_) if min_gap is None else min_gap
        _require_int("min_gap", gap, 1)
        index = None if data.is_panel else data.index
        return interval_table(scores, float(limit), gap, index=index)

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
        return explain_shapes(
            timesteps=timesteps,
            n_features=features,
            units=units,
            architecture=self.config_.architecture if fitted else self.architecture,
            stride=self.stride,
            batch_size=self.batch_size,
            validation_split=self.validation_split,
            notes=[reason],
            **sizes,
        ).text

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

    def _pass(self, data: Prepared, want_reconstruction: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Squared errors (and reconstructions) in scaled units, merged per timestep.

        Returns
        -------
        errors : ndarray
            Long series: ``(n_timesteps, F)``, each timestep's squared error
            averaged over the windows (every ``score_stride``-th, and the last)
            that cover it. Panel: ``(S, T, F)``.
        reconstruction : ndarray of the same shape, or None
        """
        scaled = self._scaled(data)
        device = self._device()
        if data.is_panel:
            errors = np.empty(scaled.shape, dtype=np.float64)
            recon = np.empty(scaled.shape, dtype=np.float64) if want_reconstruction else None
        else:
            n, features = scaled.shape
            error_acc = TimestepAccumulator(n, features)
            recon_acc = TimestepAccumulator(n, features) if want_reconstruction else None
        with torch.inference_mode():
            for where, batch in self._batches(scaled, data.is_panel, self._score_stride()):
                output = self.module_(batch.to(device)).cpu()  # (B, T, F)
                squared = (output - batch).pow(2).double().numpy()
                if data.is_panel:
                    errors[where.numpy()] = squared
                    if recon is not None:
                        recon[where.numpy()] = output.double().numpy()
                else:
                    error_acc.add(where.numpy(), squared)
                    if recon_acc is not None:
                        recon_acc.add(where.numpy(), output.double().numpy())
        if data.is_panel:
            return errors, recon
        return error_acc.mean(), (recon_acc.mean() if recon_acc is not None else None)

    def _score_stride(self) -> int:
        """The step between scoring windows: ``score_stride``, "auto" resolved, at most ``timesteps_``."""
        step = max(1, self.timesteps_ // 4) if self.score_stride == "auto" else int(self.score_stride)
        if not 1 <= step <= self.timesteps_:
            raise ParameterError(
                f"score_stride must be 'auto' or an integer in [1, timesteps={self.timesteps_}], got {self.score_stride!r}."
            )
        return step

    def _scores(self, data: Prepared, per_feature: bool = False) -> np.ndarray:
        errors, _ = self._pass(data)
        if data.is_panel:
            per = errors.mean(axis=1)  # (S, F)
        else:
            per = errors  # (n, F)
        return per if per_feature else per.mean(axis=1)

    # --------------------------------------------------------------- files
    def save(self, path: str | os.PathLike) -> "os.PathLike":
        """Write the fitted model to one safetensors file (weights + JSON header). Atomic."""
        from lstmae.io import save_model

        self._check_fitted()
        tensors = {f"net.{k}": v for k, v in self.module_.state_dict().items()}
        tensors["scaler.mean"] = torch.from_numpy(np.asarray(self.scaler_mean_, dtype=np.float64))
        tensors["scaler.scale"] = torch.from_numpy(np.asarray(self.scaler_scale_, dtype=np.float64))
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
                "feature_names_in_": None if names is None else [str(n) for n in names],
            },
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
    """Parameters as JSON values (tuples -> lists, numpy scalars -> Python)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, (tuple, list)):
            value = [int(v) for v in value]
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


__all__ = ["LSTMAutoencoder", "resolve_device"]
