"""The input policy for values read from files: missing values, infinities, repeated times.

`lstmae.data.readers.read_data` applies it to every file; `fill_missing` is
the same rule for data already in memory (the estimator itself rejects NaN).

* **Infinities** and a column with **no value at all** are always errors that
  name the column and the first bad row.
* **Missing values** (empty cells, NaN): ``missing="interpolate"`` (the
  default) fills them linearly in time (in position without a time axis;
  leading and trailing gaps take the nearest value) and warns with their
  number; ``"error"`` refuses them, naming the column and the first row;
  ``"keep"`` leaves NaN in place (Python only).
* **Repeated times**: ``duplicates="error"`` (the default) names the first
  repeated time; ``"mean"`` averages the rows of one time (ignoring missing
  cells); ``"first"`` keeps the first of them in file order.

Every computation survives values near the float64 limit (1e308): nothing
here adds two large numbers without scaling them first.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from lstmae.errors import DataError, DataFileError, LstmaeWarning
from lstmae.inputs import DUPLICATE_POLICIES, MISSING_POLICIES, check_policies

__all__ = ["DUPLICATE_POLICIES", "MISSING_POLICIES", "check_policies", "fill_missing"]

def check_values(matrix: np.ndarray, names: list[str], source: str, missing: str, row: str = "data row") -> None:
    """Refuse infinities, all-missing columns and (with ``missing="error"``) any missing value.

    ``matrix`` is ``(n_rows, n_features)`` in file order, so the row named in a
    message is the row of the file: ``{row} k`` with k counted from 1.

    Raises
    ------
    DataError
        (a `DataFileError` when raised through the readers)
    """
    infinite = np.isinf(matrix)
    if infinite.any():
        r, c = _first(infinite)
        raise DataFileError(
            f"column {names[c]!r} in {source} holds an infinite value ({matrix[r, c]}) at {row} {r + 1}"
            f"{_more(infinite)}; values must be finite numbers: fix that cell or leave it empty "
            "(empty cells are interpolated)."
        )
    nan = np.isnan(matrix)
    if not nan.any():
        return
    empty = nan.all(axis=0)
    if empty.any():
        c = int(np.argmax(empty))
        raise DataFileError(
            f"column {names[c]!r} in {source} has no values: all {len(matrix)} rows are missing; "
            "fill it in, or leave it out with --columns."
        )
    if missing == "error":
        r, c = _first(nan)
        raise DataFileError(
            f"column {names[c]!r} in {source} has a missing value at {row} {r + 1}{_more(nan)} "
            "and --missing error was given; fill the gaps, or pass --missing interpolate."
        )


def _first(mask: np.ndarray) -> tuple[int, int]:
    """(row, column) of the first True in row-major (file) order."""
    flat = int(np.argmax(mask.ravel()))
    return divmod(flat, mask.shape[1])


def _more(mask: np.ndarray) -> str:
    count = int(mask.sum())
    return f" ({count} such cells in all)" if count > 1 else ""


def group_rows(keys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rows sharing every key: ``(group code per row, first row of each group)``.

    Groups are numbered in order of first appearance.
    """
    frame = pd.DataFrame({f"k{i}": key for i, key in enumerate(keys)})
    codes = frame.groupby(list(frame.columns), sort=False, dropna=False).ngroup().to_numpy()
    _, first_rows = np.unique(codes, return_index=True)
    return codes, first_rows


def merge_rows(matrix: np.ndarray, codes: np.ndarray, first_rows: np.ndarray, policy: str) -> np.ndarray:
    """One row per group: the first row, or the mean of each column's non-missing values.

    Parameters
    ----------
    matrix : ndarray of shape (n_rows, n_features)
    codes : ndarray of shape (n_rows,), group of each row, 0..n_groups-1
    first_rows : ndarray of shape (n_groups,), first row of each group
    policy : {"first", "mean"}

    Returns
    -------
    ndarray of shape (n_groups, n_features)
        NaN where a group has no value in a column.
    """
    if policy == "first":
        return matrix[first_rows]
    shape = (len(first_rows), matrix.shape[1])
    present = ~np.isnan(matrix)
    counts = np.zeros(shape)
    np.add.at(counts, codes, present)
    sums = np.zeros(shape)
    with np.errstate(over="ignore", invalid="ignore"):
        np.add.at(sums, codes, np.where(present, matrix, 0.0))
    if not np.isfinite(sums).all():
        # Sums of values near 1e308 overflow: average the values divided by the column's magnitude.
        magnitude = np.max(np.abs(np.where(present, matrix, 0.0)), axis=0)
        magnitude[magnitude == 0] = 1.0
        sums = np.zeros(shape)
        np.add.at(sums, codes, np.where(present, matrix / magnitude, 0.0))
        return np.where(counts > 0, sums / np.maximum(counts, 1) * magnitude, np.nan)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def interpolate_column(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y`` with NaN replaced linearly along increasing ``x``; ends take the nearest value.

    Needs at least one non-NaN value. Weighted as ``(1 - w) * left + w * right``
    so that values near the float64 limit never overflow.
    """
    known = ~np.isnan(y)
    if known.all():
        return y
    xs, ys = x[known], y[known]
    targets = np.flatnonzero(~known)
    right = np.clip(np.searchsorted(xs, x[targets]), 1, max(len(xs) - 1, 1))
    left = right - 1
    out = y.copy()
    if len(xs) == 1:
        out[targets] = ys[0]
        return out
    span = xs[right] - xs[left]
    weight = np.clip((x[targets] - xs[left]) / span, 0.0, 1.0)
    line = (1.0 - weight) * ys[left] + weight * ys[right]
    # Rounding may step an ulp outside the two neighbours (past 1.7e308 even): stay between them.
    out[targets] = np.clip(line, np.minimum(ys[left], ys[right]), np.maximum(ys[left], ys[right]))
    return out


def fill_series(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Interpolate a sorted series DataFrame in time (position without a time index); warn with the count."""
    values = frame.to_numpy(dtype=np.float64, copy=True)
    missing = np.isnan(values)
    if not missing.any():
        return frame
    empty = missing.all(axis=0)
    if empty.any():  # possible after merging repeated times: the kept rows may be the empty ones
        raise DataFileError(
            f"column {str(frame.columns[int(np.argmax(empty))])!r} in {source} has no values left: all "
            f"{len(values)} rows are missing after merging repeated times; fill the column in, "
            "or pass --duplicates mean (it averages the values that are there)."
        )
    x = _axis(frame.index)
    for c in np.flatnonzero(missing.any(axis=0)):
        values[:, c] = interpolate_column(x, values[:, c])
    how = "in time" if isinstance(frame.index, pd.DatetimeIndex) else "between neighbouring rows"
    warn_filled(missing, [str(n) for n in frame.columns], source, how)
    return pd.DataFrame(values, index=frame.index, columns=frame.columns)


def fill_panel(panel: np.ndarray, names: list[str], ids: list | None, source: str) -> np.ndarray:
    """Interpolate each sample of ``(samples, timesteps, features)`` along its timesteps; warn."""
    missing = np.isnan(panel)
    if not missing.any():
        return panel
    empty = missing.all(axis=1)  # (samples, features)
    if empty.any():
        s, c = _first(empty)
        sample = ids[s] if ids is not None else s
        raise DataError(
            f"sample {sample!r} of {source} has no value in column {names[c]!r} (all {panel.shape[1]} timesteps "
            "are missing); fill them in, or drop that sample."
        )
    out = panel.copy()
    steps = np.arange(panel.shape[1], dtype=np.float64)
    for s, c in zip(*np.nonzero(missing.any(axis=1))):
        out[s, :, c] = interpolate_column(steps, out[s, :, c])
    warn_filled(missing.reshape(-1, panel.shape[2]), names, source, "within each sample")
    return out


def _axis(index: pd.Index) -> np.ndarray:
    """Interpolation positions: time (ns since the first row), numeric labels, or row positions."""
    if isinstance(index, pd.DatetimeIndex):
        ns = index.asi8
        return (ns - ns[0]).astype(np.float64)
    if pd.api.types.is_numeric_dtype(index.dtype) and not isinstance(index, pd.RangeIndex):
        return index.to_numpy(dtype=np.float64)
    return np.arange(len(index), dtype=np.float64)


def warn_filled(missing: np.ndarray, names: list[str], source: str, how: str) -> None:
    per_column = missing.sum(axis=0)
    parts = ", ".join(f"{per_column[c]} in {names[c]!r}" for c in np.flatnonzero(per_column))
    warnings.warn(
        f"{source}: filled {int(missing.sum())} missing value(s) by linear interpolation"
        f"{' ' + how if how else ''} ({parts}); pass --missing error to refuse gaps instead.",
        LstmaeWarning,
        stacklevel=4,
    )


def fill_missing(X: Any) -> Any:
    """Fill NaN in a series or panel the way `read_data` does, for data already in memory.

    Parameters
    ----------
    X : DataFrame, Series or array-like of shape (n_timesteps,), (n_timesteps, n_features)
        or (samples, timesteps, features)
        A DataFrame/Series with a DatetimeIndex is interpolated in time; any
        other input by position (each sample of a 3-D array along its steps).

    Returns
    -------
    Same type and shape as ``X``, float64, without NaN.

    Raises
    ------
    DataError
        An infinite value, or a column (sample and feature, for 3-D) with no value at all.
    """
    if isinstance(X, pd.Series):
        return fill_missing(X.to_frame())[X.name if X.name is not None else 0].rename(X.name)
    if isinstance(X, pd.DataFrame):
        frame = X.astype(np.float64)
        names = [str(c) for c in frame.columns]
        check_values(frame.to_numpy(), names, "the data", "interpolate", row="row")
        order = np.arange(len(frame))
        if isinstance(frame.index, pd.DatetimeIndex) and not frame.index.is_monotonic_increasing:
            order = np.argsort(frame.index.asi8, kind="stable")
        filled = fill_series(frame.iloc[order], "the data")
        return filled.iloc[np.argsort(order, kind="stable")]
    array = np.array(X, dtype=np.float64)
    if array.ndim == 3:
        flat = array.reshape(-1, array.shape[2])
        names = [str(i) for i in range(array.shape[2])]
        check_values(flat, names, "the data", "keep", row="row")
        return fill_panel(array, names, None, "the data")
    if array.ndim not in (1, 2):
        raise DataError(f"X must have 1, 2 or 3 axes; got shape {array.shape}.")
    two = array.reshape(len(array), -1)
    filled = fill_missing(pd.DataFrame(two)).to_numpy()
    return filled.reshape(array.shape)
