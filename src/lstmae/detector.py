"""Threshold and labels for a fitted detector, as PyOD's BaseDetector keeps them in a base.

`Detector` gives a model that has ``anomaly_score(X)`` (higher = more anomalous)
and a ``scoring_state_`` (`lstmae.scoring.state.ScoringState`) scikit-learn's outlier
API: ``decision_function = threshold_ - anomaly_score`` (negative = anomalous,
as IsolationForest), ``predict`` -> -1 anomalous / +1 normal by the rule
`detect` uses (score > threshold_), ``fit_predict`` (OutlierMixin), and the
fitted state's fields as read-only attributes. It also checks new input
against what was fitted (feature count and names, as scikit-learn does) and
labels outputs like the input (pandas in -> pandas out).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import OutlierMixin
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

from lstmae.data.frames import Prepared, prepare
from lstmae.data.windows import window_starts
from lstmae.errors import FeatureMismatchError, NotFittedError
from lstmae.params import check_score_threshold
from lstmae.scoring.intervals import detection_gap, detections, sample_table
from lstmae.scoring.state import ScoringState


class _NotFitted(NotFittedError, SklearnNotFittedError):
    """lstmae's NotFittedError that scikit-learn's tools (and users catching its error) also recognise."""


class Detector(OutlierMixin):
    """Outlier-detector methods shared by lstmae models.

    Subclasses fit ``scoring_state_`` (or override ``_state``) and define ``anomaly_score(X)`` and
    ``_score_parts(prepared, state) -> (scores, per-feature scores)``.
    """

    threshold_ = property(lambda self: self._state().threshold, doc="Score above which a timestep (or sample) is anomalous.")
    scaler_mean_ = property(lambda self: self._state().scaler_mean, doc="Per-feature mean, (n_features,).")
    scaler_scale_ = property(lambda self: self._state().scaler_scale, doc="Per-feature scale, (n_features,).")

    def __getattr__(self, name: str) -> Any:
        """The fitted attributes the score parts show (``feature_levels_``, ``latent_reference_``, ``score_levels_``:
        `lstmae.scoring.state.ScoringState.attributes`); called only for names the model does not hold itself."""
        if name.endswith("_") and not name.startswith("_"):
            shown = self._state().attributes()  # no single state (unfitted, a global model): its own AttributeError
            if name in shown:
                return shown[name]
            raise AttributeError(f"this model has no {name} (fitted without it, or read from an older file).")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _state(self) -> ScoringState:
        if "scoring_state_" not in vars(self):
            raise AttributeError(f"this {type(self).__name__} is not fitted yet: it has no scoring state.")
        return self.scoring_state_

    def score_samples(self, X: Any) -> Any:
        """scikit-learn convention (higher = more normal): ``-anomaly_score(X)``."""
        return -self.anomaly_score(X)

    def decision_function(self, X: Any) -> Any:
        """``threshold_ - anomaly_score(X)``: negative for anomalous timesteps (or samples), as IsolationForest."""
        scores = self.anomaly_score(X)  # first: it raises NotFittedError on an unfitted model
        return self.threshold_ - scores

    def predict(self, X: Any) -> Any:
        """-1 for anomalous timesteps (or samples: score > ``threshold_``, as in `detect`), +1 for normal ones."""
        scores = self.anomaly_score(X)
        labels = np.where(np.asarray(scores) > self.threshold_, -1, 1)
        return pd.Series(labels, index=scores.index, name="score") if isinstance(scores, pd.Series) else labels

    def detect(self, X: Any, *, threshold: float | None = None, min_gap: int | None = None) -> pd.DataFrame:
        """Anomalous intervals of a long series, or anomalous samples of a panel.

        Parameters
        ----------
        X : series or 3-D panel
        threshold : float, optional
            Default: ``threshold_`` fitted during `fit`.
        min_gap : int, optional
            Long series only: runs separated by fewer than ``min_gap`` normal
            timesteps are merged (default ``timesteps_``: a window cannot
            localise more finely). A panel's samples are independent: never merged.

        Returns
        -------
        DataFrame
            Long series, one row per interval: ``start``, ``end`` (inclusive
            timesteps), ``start_time``/``end_time`` when ``X`` has a time index,
            ``length``, ``peak_score``, ``mean_score``, ``severity`` (peak /
            threshold), ``top_features`` (the features contributing most to the
            interval's reconstruction error, with their share).
            Panel, one row per anomalous sample, most anomalous first (see
            `sample_table`): ``sample`` (position), ``id`` (for a DataFrame
            indexed by (id, time)), ``score``, ``severity``, ``top_features``.
        """
        return self._intervals(self._prepare_fitted(X), self._state(), threshold, min_gap)

    def _intervals(self, data: Prepared, state: ScoringState, threshold: float | None, min_gap: int | None) -> pd.DataFrame:
        """`detect` of prepared, checked input with ``state`` (whose threshold is the default)."""
        limit = state.threshold if threshold is None else threshold
        check_score_threshold(limit)
        gap = detection_gap(data.kind, min_gap, self.timesteps_)  # checked before the (long) scoring
        scores, per_feature = self._score_parts(data, state)
        names = getattr(self, "feature_names_in_", None)
        names = None if names is None else [str(n) for n in names]
        return detections(data.kind, scores, float(limit), gap, index=data.index, feature_scores=per_feature, feature_names=names)

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise _NotFitted(
                f"this {type(self).__name__} is not fitted yet; call fit(X) first or load a model with {type(self).__name__}.load(path)."
            )

    def _prepare_fitted(self, X: Any) -> Prepared:
        self._check_fitted()
        data = prepare(X)
        check_input(self, data)
        return data


def check_input(model: Detector, data: Prepared) -> None:
    """Is ``data`` what the fitted model can score? Feature names are checked as scikit-learn does."""
    names = getattr(model, "feature_names_in_", None)
    if data.n_features != model.n_features_in_:
        fitted_on = f" ({list(names)})" if names is not None else ""
        reshape = f" Reshape your data: a 1-D array is one feature, pass shape (n_timesteps, {model.n_features_in_})." if data.input_ndim == 1 else ""
        raise FeatureMismatchError(
            f"X has {data.n_features} feature(s) but the model was fitted on {model.n_features_in_}{fitted_on}; "
            f"pass the same columns as during fit (X has {data.n_features} features, but {type(model).__name__} "
            f"is expecting {model.n_features_in_} features as input).{reshape}"
        )
    named = data.columns is not None and data.input_ndim == 2
    if names is not None and named and list(names) != data.columns:
        raise FeatureMismatchError(
            f"X has columns {data.columns} but the model was fitted on {list(names)}; "
            "pass the same columns, in the same order."
        )
    if names is not None and not named and data.input_ndim == 2:
        warnings.warn(f"X does not have valid feature names, but {type(model).__name__} was fitted with feature names", UserWarning, stacklevel=3)
    if names is None and named and model.input_kind_ == "series" and data.index is not None:
        warnings.warn(f"X has feature names, but {type(model).__name__} was fitted without feature names", UserWarning, stacklevel=3)
    data.check_window(model.timesteps_)


def labelled(data: Prepared, values: np.ndarray) -> Any:
    """Scores (n,) or per-feature scores (n, F) as the input came: pandas in -> pandas out (same index), else ndarray.

    A panel given as a DataFrame indexed by (id, time) gets one row per id.
    """
    if data.index is None:
        return values
    if values.ndim == 1:
        return pd.Series(values, index=data.index, name="score")
    return pd.DataFrame(values, index=data.index, columns=data.columns)


def labelled_embeddings(data: Prepared, embeddings: np.ndarray, timesteps: int, stride: int) -> Any:
    """Embeddings (N, L) as the input came: for pandas input a DataFrame (columns ``z0``, ``z1``, ...) indexed by the
    samples' ids (a panel) or by the index label of each window's first timestep (a series, windows at
    `window_starts`); (N, T, L) embeddings of the "sequence" design, and array input, stay arrays."""
    if data.index is None or embeddings.ndim != 2:
        return embeddings
    names = [f"z{i}" for i in range(embeddings.shape[1])]
    if data.is_panel:
        return pd.DataFrame(embeddings, index=data.index, columns=names)
    starts = window_starts(data.values.shape[0], timesteps, stride)
    return pd.DataFrame(embeddings, index=data.index[starts], columns=names)


__all__ = ["Detector", "check_input", "labelled", "labelled_embeddings", "sample_table"]
