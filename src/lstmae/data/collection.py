"""Many series, one model: splitting a collection, per-series scaling, windows that stay inside their series.

A **collection** is several independent series given at once, to train one
*global* network on the windows of all of them (`LSTMAutoencoder.fit`) and to
score each series by its own state:

* a list (or tuple) of arrays / DataFrames / Series: keys 0, 1, ...;
* a dict ``{key: series}``: its keys (str or int);
* a long DataFrame and ``series_column``: the rows of each value of that
  column are one series (in order of first appearance), the other columns its
  features. A panel's ``id_column`` (the command line's) is different: each id
  is one *sample* of equal length; a series column splits a long table into
  independent series of any lengths.

Every input, a plain series or panel included, becomes one `Collection` of
`lstmae.data.frames.Prepared` parts, so `fit` has one way through: one part is
exactly the single-series (or panel) fit.

Training data: each series is scaled by its own training statistics (or, with
``series_scaling="global"``, all by one scaler) and the scaled series are
concatenated; a window index lists only windows lying inside one series, so no
window crosses from one series into the next. Each series' last
``validation_split`` windows are held out (Keras semantics, per series), and
each epoch draws at most ``windows_per_series`` training windows from every
series (`lstmae.training.EpochDraw`). ``timesteps="auto"`` finds the period of
the longest series; every series must hold at least one window.

Outputs, per method: for list / dict input a dict ``{key: result}`` (each result
what the method gives for that one series); for a long DataFrame one long
table keyed by the series column (`assemble`), except `encode`, whose
embeddings are per window, not per row: always a dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from lstmae.data.frames import Prepared, prepare
from lstmae.data.scaling import fit_scaler, transform
from lstmae.data.windows import window_starts
from lstmae.errors import DataError, FeatureMismatchError, ParameterError, describe
from lstmae.params import n_train

@dataclass(frozen=True, eq=False)
class Collection:
    """Input split into series, each in the canonical layout.

    keys : series keys, in input order (0..k-1 for a list; None for one plain input)
    parts : one `Prepared` per series (or one series / panel for plain input)
    sources : what each series was given as (arrays, frames without the series column)
    layout : "one" (a plain series or panel), "list", "dict" or "long"
    series_column : the long DataFrame's series column
    positions : long input: each series' row positions in the input table
    """

    keys: list
    parts: list[Prepared]
    sources: list
    layout: str
    series_column: str | None = None
    positions: list[np.ndarray] = field(default_factory=list)
    table: pd.DataFrame | None = None

    @property
    def many(self) -> bool:
        return self.layout != "one"

    @property
    def is_panel(self) -> bool:
        return self.parts[0].is_panel

    @property
    def n_features(self) -> int:
        return self.parts[0].n_features

    @property
    def longest(self) -> Prepared:
        return max(self.parts, key=lambda part: part.values.shape[0])

    @property
    def values(self) -> np.ndarray:
        """Every series' values one after another (n_total, F); one part's values as they are."""
        return self.parts[0].values if len(self.parts) == 1 else np.concatenate([p.values for p in self.parts])

    def name(self, number: int) -> str:
        """How messages name a series: "" for plain input, else "series KEY: "."""
        return f"series {self.keys[number]!r}: " if self.many else ""


def is_collection(X: Any, series_column: str | None = None) -> bool:
    """True for a dict, a list/tuple of arrays or pandas objects, or any input with ``series_column``.

    A list of numbers (or of lists of numbers) stays one series, as before.
    """
    if series_column is not None or _is_mapping(X):
        return True
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(isinstance(x, (np.ndarray, pd.Series, pd.DataFrame)) for x in X)


def _is_mapping(X: Any) -> bool:
    """A dict of series; scipy's sparse matrices are dicts too (dok), and stay one (refused) input."""
    return isinstance(X, Mapping) and not hasattr(X, "tocsr")


def split(X: Any, series_column: str | None = None, name: str = "X") -> Collection:
    """Validate and split any input into a `Collection` (one part for a plain series or panel).

    Raises
    ------
    DataError
        An empty collection, a series that is a 3-D panel, series whose features
        differ, keys that are not str or int, a missing series column.
    """
    if not is_collection(X, series_column):
        return Collection([None], [prepare(X, name)], [X], "one")
    if series_column is not None:
        return _split_long(X, series_column, name)
    layout = "dict" if _is_mapping(X) else "list"
    items = list(X.items()) if layout == "dict" else list(enumerate(X))
    if not items:
        raise DataError(f"{name} is an empty collection; pass at least one series.")
    keys = [_key(key, name) for key, _ in items]
    sources = [value for _, value in items]
    parts = [prepare(value, f"{name}[{key!r}]") for key, value in zip(keys, sources)]
    collection = Collection(keys, parts, sources, layout)
    _check_parts(collection, name)
    return collection


def _split_long(X: Any, series_column: str, name: str) -> Collection:
    if not isinstance(X, pd.DataFrame):
        raise ParameterError(
            f"series_column={series_column!r} splits a long DataFrame, but {name} is {describe(X)}; "
            "pass a DataFrame with that column, or a dict / list of series without series_column."
        )
    if series_column not in X.columns:
        raise DataError(
            f"series_column {series_column!r} not found in {name}; columns found: {[str(c) for c in X.columns]}."
        )
    if len(X) == 0:
        raise DataError(f"{name} is empty (shape {X.shape}); pass at least one full window of data per series.")
    labels = X[series_column]
    if labels.isna().any():
        raise DataError(f"{name}[{series_column!r}] has {int(labels.isna().sum())} missing key(s); every row needs its series.")
    codes, uniques = pd.factorize(labels, sort=False)  # keys in order of first appearance
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(uniques)))[:-1]
    positions = np.split(order, bounds)
    values = X.drop(columns=[series_column])
    keys = [_key(key, f"{name}[{series_column!r}]") for key in uniques]
    sources = [values.iloc[rows] for rows in positions]
    parts = [prepare(source, f"{name}[{series_column}={key!r}]") for key, source in zip(keys, sources)]
    collection = Collection(keys, parts, sources, "long", series_column, positions, X)
    _check_parts(collection, name)
    return collection


def _key(key: Any, name: str) -> str | int:
    """A series key as a JSON value: str or int (numpy scalars converted)."""
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise DataError(f"{name} has series key {describe(key)}; series keys must be str or int.")
    return key


def _check_parts(collection: Collection, name: str) -> None:
    first = collection.parts[0]
    for number, part in enumerate(collection.parts):
        if part.is_panel:
            raise DataError(
                f"{name}: {collection.name(number)}is a 3-D panel; a collection holds long series "
                "(1-D, 2-D or DataFrames). Fit a panel on its own."
            )
        if part.n_features != first.n_features or (part.columns != first.columns and part.input_ndim == 2 and first.input_ndim == 2):
            raise FeatureMismatchError(
                f"{name}: {collection.name(number)}has features {part.columns or part.n_features}, but "
                f"{collection.name(0)}has {first.columns or first.n_features}; every series needs the same features."
            )


# ------------------------------------------------------------------ training
def check_lengths(collection: Collection, timesteps: int) -> None:
    """Every series holds at least one window of ``timesteps``."""
    if collection.is_panel:
        return
    for number, part in enumerate(collection.parts):
        if part.values.shape[0] < timesteps:
            raise DataError(
                f"{collection.name(number)}the series has {part.values.shape[0]} timesteps, fewer than "
                f"timesteps={timesteps} (chosen on the longest series); drop it or pass a smaller timesteps."
            )


def fit_scalers(collection: Collection, series_scaling: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mean, scale) per series: each its own ("series"), or one over all series pooled ("global")."""
    if series_scaling == "global" or len(collection.parts) == 1:
        pooled = fit_scaler(collection.values)
        return [pooled] * len(collection.parts)
    return [fit_scaler(part.values) for part in collection.parts]


def scaled(collection: Collection, scalers: list[tuple[np.ndarray, np.ndarray]]) -> torch.Tensor:
    """The scaled series one after another (n_total, F) float32, or the scaled panel (S, T, F)."""
    chunks = [transform(part.values, *scaler) for part, scaler in zip(collection.parts, scalers)]
    return torch.from_numpy(chunks[0] if len(chunks) == 1 else np.concatenate(chunks))


@dataclass(frozen=True)
class WindowPlan:
    """The windows training uses, as positions into the scaled data.

    train, held_out : (N,) int64 window starts into the concatenated series (or sample indices)
    groups : training windows per series, in ``train`` order (None for one series or a panel)
    """

    train: torch.Tensor
    held_out: torch.Tensor
    groups: list[int] | None


def window_plan(collection: Collection, timesteps: int, stride: int, validation_split: float, cap: int | None) -> WindowPlan:
    """Training and held-out windows: each series' last ``validation_split`` of windows is held out.

    Windows start every ``stride`` timesteps inside each series (the last ends
    on its last timestep), offset by where the series begins in the
    concatenation: none crosses a boundary. ``cap``: at most ``cap // 2``
    held-out windows are kept, evenly spaced (validation costs at most half an epoch).
    """
    fitted_parts, held_parts, groups, offset = [], [], [], 0
    for number, part in enumerate(collection.parts):
        length = part.values.shape[0]
        if part.is_panel:
            order = torch.arange(length)
        else:
            order = torch.from_numpy(window_starts(length, timesteps, stride)) + offset
        fitted = n_train(len(order), validation_split)
        if fitted < 1:
            raise DataError(
                f"{collection.name(number)}only {len(order)} training window(s) and validation_split={validation_split} "
                "leaves none to train on; use more data or a smaller validation_split."
            )
        fitted_parts.append(order[:fitted])
        held_parts.append(order[fitted:])
        groups.append(fitted)
        offset += length
    train, held = torch.cat(fitted_parts), torch.cat(held_parts)
    if cap is not None and len(held) > cap // 2:
        keep = torch.linspace(0, len(held) - 1, cap // 2).round().long()
        held = held[keep]
    return WindowPlan(train, held, groups if collection.many else None)


def series_cap(windows_per_series: int | str | None, windows_per_epoch: int | None, n_series: int) -> int | None:
    """Training windows drawn per series per epoch: "auto" shares ``windows_per_epoch`` equally between the series."""
    if windows_per_series == "auto":
        return None if windows_per_epoch is None else max(1, math.ceil(windows_per_epoch / n_series))
    return windows_per_series


# ------------------------------------------------------------------ outputs
def assemble(collection: Collection, results: dict, method: str) -> Any:
    """Per-series results as the input came: the result itself for a plain series or panel, a dict for a
    list / dict, one table for a long DataFrame.

    Long DataFrame input: ``anomaly_score`` gives a DataFrame with the series
    column and "score" (or one column per feature with ``per_feature``),
    ``reconstruct`` the input's table with reconstructed values, both with the
    input's index and row order; ``detect`` the intervals of every series with
    the series column first; ``encode`` and ``seen_in_training`` a dict.
    """
    if collection.layout == "one":  # a plain series or panel: its one result, as it is
        return results[None]
    if collection.layout != "long" or method in ("encode", "seen_in_training"):
        return results
    column = collection.series_column
    if method == "detect":
        tables = []
        for key, table in results.items():
            table = table.copy()
            table.insert(0, column, key)
            tables.append(table)
        return pd.concat(tables, ignore_index=True)
    table = collection.table
    first = next(iter(results.values()))
    names = ["score"] if isinstance(first, pd.Series) else [str(c) for c in first.columns]
    values = np.empty((len(table), len(names)), dtype=np.float64)
    for rows, result in zip(collection.positions, results.values()):
        values[rows] = np.asarray(result, dtype=np.float64).reshape(len(rows), -1)
    if method == "reconstruct":
        out = table.copy()
        out[list(first.columns)] = values
        return out
    out = pd.DataFrame(values, index=table.index, columns=names)
    out.insert(0, column, table[column].to_numpy())
    return out


__all__ = ["Collection", "assemble", "is_collection", "split"]
