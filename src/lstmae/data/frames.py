"""User input (arrays, lists, DataFrames) -> one canonical float64 array, and back.

Two layouts exist and every public method accepts both:

* a **long series**: 1-D ``(n_timesteps,)``, 2-D ``(n_timesteps, n_features)``,
  a ``pandas.Series`` or a ``DataFrame`` (rows = timesteps, columns = features);
  canonical form ``(n_timesteps, n_features)``;
* a **panel** of equal-length sequences: 3-D ``(samples, timesteps, features)``,
  exactly what Keras takes, or a ``DataFrame`` indexed by (id, time), one row
  per sample and timestep (``df.set_index(["user", "day"])``), which keeps the
  ids and column names; canonical form ``(samples, timesteps, features)``.

`Prepared.restore` turns per-timestep results back into the caller's layout
(1-D stays 1-D, a DataFrame keeps its index and columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lstmae.errors import DataError, FeatureMismatchError, describe


@dataclass(frozen=True)
class Prepared:
    """Input converted to the canonical layout.

    Attributes
    ----------
    values : ndarray, float64
        ``(n_timesteps, n_features)`` for a series, ``(samples, timesteps, features)``
        for a panel. Finite.
    kind : "series" or "panel"
    input_ndim : int
        1, 2 or 3: the number of axes the caller gave (2 for a DataFrame panel).
    index : pandas.Index or None
        Row labels of a DataFrame/Series input (timestamps, usually); for a
        DataFrame panel, the id of each sample.
    columns : list of str or None
        Column names of a DataFrame input (or the Series name).
    rows, order : pandas.Index and ndarray, or None
        A DataFrame panel: the input's own row index (id, time) and, for each value of
        ``values`` flattened to (S * T, F), the input row it came from (`restore` puts it back).
    """

    values: np.ndarray
    kind: str
    input_ndim: int
    index: pd.Index | None = None
    columns: list[str] | None = None
    rows: pd.Index | None = None
    order: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return int(self.values.shape[-1])

    @property
    def is_panel(self) -> bool:
        return self.kind == "panel"

    @property
    def sizes(self) -> dict[str, int]:
        """How much data this is: ``{"n_samples": S}`` for a panel, ``{"n_timesteps": n}`` for a series."""
        return {"n_samples" if self.is_panel else "n_timesteps": int(self.values.shape[0])}

    def check_window(self, timesteps: int) -> None:
        """Does this input hold a model's windows of ``timesteps``? A panel's samples are that long; a series holds one."""
        if self.is_panel and self.values.shape[1] != timesteps:
            raise FeatureMismatchError(
                f"3-D input has {self.values.shape[1]} timesteps per sample but the model was fitted with "
                f"timesteps={timesteps}; reshape the samples to {timesteps} timesteps."
            )
        if not self.is_panel and self.values.shape[0] < timesteps:
            raise DataError(
                f"the series has {self.values.shape[0]} timesteps, fewer than the model's timesteps={timesteps}; "
                "pass at least one full window."
            )

    def restore(self, values: np.ndarray) -> Any:
        """Give per-timestep ``values`` the caller's layout.

        ``values`` has the canonical shape of this input. A DataFrame input (a
        panel indexed by (id, time) included) returns a DataFrame with the same
        index, row order and columns, a Series a Series, a 1-D array a 1-D
        array, anything else an ndarray.
        """
        if self.kind == "panel":
            if self.rows is None:
                return values
            flat = values.reshape(-1, values.shape[-1])  # (S * T, F), in the panel's order
            back = np.empty_like(flat)
            back[self.order] = flat  # each value to the input row it came from
            return pd.DataFrame(back, index=self.rows, columns=self.columns)
        if self.index is not None and self.columns is not None:
            if self.input_ndim == 1:
                return pd.Series(values[:, 0], index=self.index, name=self.columns[0])
            return pd.DataFrame(values, index=self.index, columns=self.columns)
        if self.input_ndim == 1:
            return values[:, 0]
        return values


def prepare(X: Any, name: str = "X") -> Prepared:
    """Validate and convert any supported input.

    Raises
    ------
    DataError
        Non-numeric values, NaN or infinity, an empty input, or a number of
        axes other than 1, 2 or 3. The message names the first offending
        column / position.
    """
    if isinstance(X, pd.DataFrame):
        return _panel_from_frame(X, name) if X.index.nlevels == 2 else _from_frame(X, name)
    if isinstance(X, pd.Series):
        frame = X.to_frame(name=X.name if X.name is not None else "value")
        prepared = _from_frame(frame, name)
        # Keep the caller's name, None included, so that restore() gives the Series back as it came.
        return Prepared(prepared.values, "series", 1, prepared.index, [X.name])
    if isinstance(X, np.ndarray) and np.iscomplexobj(X):  # asarray would silently drop the imaginary part
        raise DataError(
            f"{name} must hold real numbers; got complex values {describe(X)}. "
            "Complex data not supported: pass a numeric array, a list of numbers or a DataFrame of numeric columns."
        )
    try:
        array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{name} must hold numbers only; could not convert {describe(X)} to float ({exc}). "
            "Pass a numeric array, a list of numbers or a DataFrame of numeric columns."
        ) from None
    if array.ndim not in (1, 2, 3):
        raise DataError(
            f"{name} must have 1, 2 or 3 axes (series, series x features, "
            f"samples x timesteps x features); got shape {array.shape}."
        )
    if array.size == 0:
        none = f" It has 0 feature(s) (shape={array.shape}) while a minimum of 1 is required." if array.shape[-1] == 0 else ""
        raise DataError(f"{name} is empty (shape {array.shape}); pass at least one full window of data.{none}")
    _check_finite(array, name, columns=None)
    if array.ndim == 3:
        return Prepared(array, "panel", 3)
    values = array[:, None] if array.ndim == 1 else array
    return Prepared(values, "series", array.ndim)


def _from_frame(frame: pd.DataFrame, name: str) -> Prepared:
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {frame.shape}); pass at least one full window of data.")
    bad = [
        str(c)
        for c in frame.columns
        if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
        or pd.api.types.is_complex_dtype(frame[c])  # numeric to pandas, but float() would drop the imaginary part
    ]
    if bad:
        raise DataError(
            f"{name} has non-numeric column(s) {bad}; set a time column as the index "
            "(df.set_index('timestamp')) or select the numeric columns."
        )
    columns = [str(c) for c in frame.columns]
    values = frame.to_numpy(dtype=np.float64)
    _check_finite(values, name, columns=columns)
    return Prepared(values, "series", 2, frame.index, columns)


def _panel_from_frame(frame: pd.DataFrame, name: str) -> Prepared:
    """A DataFrame indexed by (id, time) -> a panel: samples in the order ids first appear, rows by time."""
    rows = _from_frame(frame, name)
    ids, times = frame.index.get_level_values(0), frame.index.get_level_values(1)
    repeated = frame.index.duplicated()
    if repeated.any():
        at = int(np.argmax(repeated))
        raise DataError(
            f"{name} is indexed by (id, time) but id {ids[at]!r} has time {times[at]} more than once; "
            "each id needs one row per timestep: drop or average the repeated rows."
        )
    if ids.hasnans or times.hasnans:
        raise DataError(f"{name} is indexed by (id, time) and has a missing id or time; every row needs both.")
    codes, uniques = pd.factorize(ids, sort=False)
    counts = np.bincount(codes)
    usual = int(np.bincount(counts).argmax())  # the most common length
    if (counts != usual).any():
        bad = int(np.flatnonzero(counts != usual)[0])
        raise DataError(
            f"{name} is a panel indexed by (id, time): id {uniques[bad]!r} has {counts[bad]} rows but most ids have "
            f"{usual}; every id needs the same number of timesteps: pad or trim the sequences."
        )
    order = np.lexsort((pd.factorize(times, sort=True)[0], codes))  # by id (first appearance), then by time
    values = rows.values[order].reshape(len(uniques), int(counts[0]), rows.n_features)  # (S, T, F)
    return Prepared(values, "panel", 2, pd.Index(uniques, name=frame.index.names[0]), rows.columns, frame.index, order)


def _check_finite(values: np.ndarray, name: str, columns: list[str] | None) -> None:
    finite = np.isfinite(values)
    if finite.all():
        return
    position = np.unravel_index(int(np.flatnonzero(~finite.ravel())[0]), values.shape)
    bad = values[position]
    what = "a missing value (NaN)" if np.isnan(bad) else f"an infinite value ({bad})"
    if columns is not None:
        where = f"column {columns[position[1]]!r}, row {position[0]}"
    else:
        where = f"position {tuple(int(p) for p in position)}"
    count = int((~finite).sum())
    raise DataError(
        f"{name} has {count} non-finite value(s); the first is {what} at {where}. "
        "Fill or drop them first (e.g. df.interpolate())."
    )
