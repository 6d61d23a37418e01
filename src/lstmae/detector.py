"""Threshold and labels for a fitted detector, as PyOD's BaseDetector keeps them in a base.

`Detector` gives a model that has ``anomaly_score(X)`` (higher = more anomalous)
and a ``scoring_state_`` (`lstmae.state.ScoringState`) scikit-learn's outlier
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
from lstmae.errors import DataError, FeatureMismatchError, NotFittedError, ParameterError
from lstmae.params import check_integer, check_score_threshold
from lstmae.scoring import interval_table, top_features
from lstmae.state import ScoringState


class _NotFitted(NotFittedError, SklearnNotFittedError):
    """lstmae's NotFittedError that scikit-learn's tools (and users catching its error) also recognise."""


class Detector(OutlierMixin):
    """Outlier-detector methods shared by lstmae models.

    Subclasses fit ``scoring_state_`` and define ``anomaly_score(X)`` and
    ``_score_parts(prepared) -> (scores, per-feature scores)``.
    """

    threshold_ = property(lambda self: self._state().threshold, doc="Score above which a timestep (or sample) is anomalous.")
    scaler_mean_ = property(lambda self: self._state().scaler_mean, doc="Per-feature mean, (n_features,).")
    scaler_scale_ = property(lambda self: self._state().scaler_scale, doc="Per-feature scale, (n_features,).")
    feature_levels_ = property(lambda self: _present(self._state().feature_levels, "feature_levels_"))
    latent_reference_ = property(lambda self: _present(self._state().latent_reference, "latent_reference_"))
    score_levels_ = property(lambda self: _present(self._state().score_levels, "score_levels_"))

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
        data = self._prepare_fitted(X)
        limit = self.threshold_ if threshold is None else threshold
        check_score_threshold(limit)
        if data.is_panel and min_gap is not None:
            raise ParameterError(
                f"min_gap={min_gap!r} merges nearby timesteps of a long series; the samples of a panel are independent "
                "and each anomalous sample is its own row: leave min_gap out."
            )
        gap = None if data.is_panel else check_integer("min_gap", self.timesteps_ if min_gap is None else min_gap, 1)
        scores, per_feature = self._score_parts(data)
        names = getattr(self, "feature_names_in_", None)
        names = None if names is None else [str(n) for n in names]
        if data.is_panel:
            return sample_table(scores, float(limit), ids=data.index, feature_scores=per_feature, feature_names=names)
        return interval_table(scores, float(limit), gap, index=data.index, feature_scores=per_feature, feature_names=names)

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
    if data.is_panel and data.values.shape[1] != model.timesteps_:
        raise FeatureMismatchError(
            f"3-D input has {data.values.shape[1]} timesteps per sample but the model was fitted with "
            f"timesteps={model.timesteps_}; reshape the samples to {model.timesteps_} timesteps."
        )
    if not data.is_panel and data.values.shape[0] < model.timesteps_:
        raise DataError(
            f"the series has {data.values.shape[0]} timesteps, fewer than the model's timesteps={model.timesteps_}; "
            "pass at least one full window."
        )


def sample_table(
    scores: np.ndarray,
    threshold: float,
    ids: pd.Index | None = None,
    feature_scores: np.ndarray | None = None,
    feature_names: list[str] | None = None,
) -> pd.DataFrame:
    """The anomalous samples of a panel (score > threshold), one row each, most anomalous first.

    Parameters
    ----------
    scores : ndarray of shape (S,)
    threshold : float
    ids : pandas.Index of length S, optional
        The samples' ids; adds an ``id`` column.
    feature_scores : ndarray of shape (S, n_features), optional
        Per-feature reconstruction scores; adds ``top_features``.
    feature_names : list of str, optional
        Names for ``top_features``; default ``"0"``, ``"1"``, ...

    Returns
    -------
    DataFrame with columns ``sample`` (position in the panel), ``id`` (with
    ``ids``), ``score``, ``severity`` (score / threshold) and ``top_features``
    (the features with the largest share of the sample's reconstruction error,
    ``"name (share%)"``, as `lstmae.scoring.top_features`); ties keep sample order.
    """
    scores = np.asarray(scores, dtype=np.float64)
    chosen = np.flatnonzero(scores > threshold)
    chosen = chosen[np.argsort(-scores[chosen], kind="stable")]
    table = pd.DataFrame({"sample": chosen.astype(np.int64)})
    if ids is not None:
        table["id"] = ids[chosen] if len(chosen) else pd.Index([], dtype=ids.dtype)
    table["score"] = scores[chosen]
    table["severity"] = scores[chosen] / threshold if threshold > 0 else np.inf
    if feature_scores is not None:
        per = np.asarray(feature_scores, dtype=np.float64)
        names = [str(i) for i in range(per.shape[1])] if feature_names is None else feature_names
        table["top_features"] = pd.Series([top_features(per[i], names) for i in chosen], dtype=object)
    return table


def labelled(data: Prepared, values: np.ndarray) -> Any:
    """Scores (n,) or per-feature scores (n, F) as the input came: pandas in -> pandas out (same index), else ndarray.

    A panel given as a DataFrame indexed by (id, time) gets one row per id.
    """
    if data.index is None:
        return values
    if values.ndim == 1:
        return pd.Series(values, index=data.index, name="score")
    return pd.DataFrame(values, index=data.index, columns=data.columns)


def _present(value: Any, name: str) -> Any:
    if value is None:
        raise AttributeError(f"this model has no {name} (fitted without it, or read from an older file).")
    return value


__all__ = ["Detector", "check_input", "labelled", "sample_table"]
