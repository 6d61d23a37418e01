"""Measure whole-sequence novelty on labelled panels: the code path of `lstmae evaluate --format panel`.

The protocol of bench/panel.py: for each class c (or only ``normal_class``),
fit ``LSTMAutoencoder(**params)`` on the training samples of class c, score
every test sample with ``anomaly_score``, and take every other class as
anomalous; AUC-ROC and AUC-PR per class (`lstmae.evaluation.metrics`). A class whose fit
fails is recorded as a row with ``status='error'`` and the message.

Inputs (`list_panels`): a ``Name_TRAIN.ts`` file (its ``Name_TEST.ts`` beside
it), a folder of such pairs (also one folder per dataset, as aeon ships them),
or a 3-D ``.npy`` file with one label per sample (``labels``: ``.npy`` or text,
one per line), split into the first ``train_end`` samples (training) and the
rest (test).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from lstmae.data.ts import LabelledPanel, read_ts
from lstmae.errors import DataFileError, LstmaeError, ParameterError
from lstmae.estimator import LSTMAutoencoder
from lstmae.evaluation import metrics

__all__ = ["PANEL_COLUMNS", "evaluate_panel", "list_panels"]

#: Every column of a result row.
PANEL_COLUMNS: tuple[str, ...] = (
    "name", "normal_class", "n_train", "n_test", "anomalies", "timesteps", "d", "auc_roc", "auc_pr", "seconds", "status", "error",
)


def list_panels(
    path: str | os.PathLike, *, labels: str | os.PathLike | None = None, train_end: int | None = None
) -> list[tuple[str, LabelledPanel, LabelledPanel]]:
    """The labelled panels under ``path`` as (name, training part, test part).

    Parameters
    ----------
    path : a ``*_TRAIN.ts`` file, a folder holding such files (directly or one folder down), or a 3-D ``.npy``
    labels : path, only with a ``.npy``: one label per sample (``.npy`` or a text file, one label a line)
    train_end : int, only with a ``.npy``: the first ``train_end`` samples are the training part (default: half)
    """
    root = Path(path)
    if not root.exists():
        raise DataFileError(f"panel path {str(root)!r} does not exist; give a Name_TRAIN.ts file, a folder of them, or a 3-D .npy.")
    if root.suffix.lower() == ".npy":
        return [_npy_panel(root, labels, train_end)]
    if labels is not None or train_end is not None:
        raise ParameterError("--labels and --train-end apply to a .npy panel only; a .ts pair has its own labels and split.")
    if root.is_file():
        files = [root]
    else:
        files = sorted({*root.glob("*_TRAIN.ts"), *root.glob("*/*_TRAIN.ts")})
    if not files or not all(f.name.endswith("_TRAIN.ts") for f in files):
        raise DataFileError(
            f"no *_TRAIN.ts file at {str(root)!r}; give Name_TRAIN.ts (with Name_TEST.ts beside it) or a folder of them."
        )
    panels = []
    for file in files:
        test_file = file.with_name(file.name.removesuffix("_TRAIN.ts") + "_TEST.ts")
        if not test_file.is_file():
            raise DataFileError(f"{str(file)!r} has no {test_file.name} beside it; the test samples are scored from there.")
        train = read_ts(file)
        panels.append((file.name.removesuffix("_TRAIN.ts"), train, read_ts(test_file, length=train.values.shape[1])))
    return panels


def _npy_panel(path: Path, labels: str | os.PathLike | None, train_end: int | None) -> tuple[str, LabelledPanel, LabelledPanel]:
    if labels is None:
        raise ParameterError(f"a .npy panel needs --labels FILE: one class label per sample of {path.name}.")
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataFileError(f"cannot read {str(path)!r} as a .npy array: {exc}.") from None
    if values.ndim != 3 or not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
        raise DataFileError(
            f"{str(path)!r} must hold a finite numeric array (samples, timesteps, features); got shape {values.shape}, "
            f"dtype {values.dtype}."
        )
    given = _read_labels(Path(labels))
    if len(given) != len(values):
        raise DataFileError(f"{labels} has {len(given)} labels but {path.name} has {len(values)} samples; give one label per sample.")
    cut = len(values) // 2 if train_end is None else train_end
    if isinstance(cut, bool) or not isinstance(cut, (int, np.integer)) or not 1 <= cut < len(values):
        raise ParameterError(f"train_end must be an integer in [1, {len(values) - 1}] (samples to train on), got {train_end!r}.")
    classes = tuple(str(c) for c in np.unique(given))
    values = values.astype(np.float64)
    parts = [
        LabelledPanel(values[rows], given[rows], classes, path.stem, np.full(len(values[rows]), values.shape[1]))
        for rows in (slice(0, cut), slice(cut, None))
    ]
    return path.stem, parts[0], parts[1]


def _read_labels(path: Path) -> np.ndarray:
    """One label per sample, as strings."""
    try:
        if path.suffix.lower() == ".npy":
            found = np.load(path, allow_pickle=False).ravel()
        else:
            found = np.array([line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()])
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataFileError(f"cannot read the labels {str(path)!r}: {exc}; give a .npy or a text file, one label a line.") from None
    if found.dtype.kind == "f" and np.all(found == np.round(found)):
        found = found.astype(np.int64)  # 0.0 and 0 are the same class
    return found.astype(str)


def evaluate_panel(
    name: str, train: LabelledPanel, test: LabelledPanel, params: dict[str, Any] | None = None, normal_class: str | None = None
) -> list[dict[str, Any]]:
    """One row per normal class: fit on its training samples, score all test samples, anomaly = another class.

    Returns rows with the keys of `PANEL_COLUMNS`; ``auc_roc``/``auc_pr`` are NaN where the
    test part lacks normal or anomalous samples (``status`` says which).
    """
    if train.labels is None or test.labels is None:
        raise DataFileError(f"{name}: the panel has no class labels (@classLabel false); evaluation needs them.")
    classes = [c for c in dict.fromkeys(train.classes or np.unique(train.labels).tolist())]
    if normal_class is not None:
        if str(normal_class) not in classes:
            raise ParameterError(f"--normal-class {normal_class!r} is not a class of {name}; its classes: {classes}.")
        classes = [str(normal_class)]
    rows = []
    for label in classes:
        normal = train.values[train.labels == label]
        truth = (test.labels != label).astype(np.int64)
        row: dict[str, Any] = {
            "name": name, "normal_class": label, "n_train": len(normal), "n_test": len(truth), "anomalies": int(truth.sum()),
            "timesteps": train.values.shape[1], "d": train.values.shape[2], "auc_roc": math.nan, "auc_pr": math.nan,
            "seconds": math.nan, "status": "ok", "error": "",
        }
        rows.append(row)
        if len(normal) == 0:
            row.update(status="error", error=f"no training sample of class {label!r}")
            continue
        try:
            began = time.perf_counter()
            model = LSTMAutoencoder(**{"verbose": 0, **(params or {})}).fit(normal)
            score = np.asarray(model.anomaly_score(test.values), dtype=np.float64)
            row["seconds"] = time.perf_counter() - began
        except LstmaeError as exc:
            row.update(status="error", error=" ".join(str(exc).split()))
            continue
        if truth.all() or not truth.any():
            row.update(status="all-anomaly" if truth.all() else "no-anomaly")
            continue
        row.update(auc_roc=metrics.auc_roc(truth, score), auc_pr=metrics.auc_pr(truth, score))
    return rows
