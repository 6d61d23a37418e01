"""Training checkpoints: an interrupted `fit` resumes where its last finished epoch left off.

Everything here is Lightning's own machinery with a safe file format:

* Lightning's `ModelCheckpoint` saves after every training epoch, and
  ``trainer.fit(..., ckpt_path=...)`` resumes: Lightning restores the weights,
  Adam's state, its loops' progress and every callback's ``state_dict``
  (lstmae's `HistoryRecorder`, `BestWeights`, `ShuffleOrder`, Lightning's
  `EarlyStopping`, `FitRecord` below, and any user callback's).
* `SafetensorsCheckpointIO` writes Lightning's checkpoint dictionary as one
  safetensors file: every tensor as a tensor, everything else as JSON in its
  header. Never pickle: loading parses JSON and raw tensors only, exactly like
  model files (`lstmae.persistence.model_file`). Written atomically (the previous checkpoint
  survives an interruption mid-write) and checked against SHA-256 checksums
  of the tensors and of the JSON on load.
* `FitRecord` carries what is lstmae's own: a fingerprint of the training
  data and of every parameter that shapes training (``epochs`` excepted: it
  may differ on resume), the seed, the epochs done and whether early
  stopping had ended training. Resuming with other data or other parameters
  is refused, naming what differs. A checkpoint that already holds the epochs
  asked for (or more), or whose training had stopped early, trains nothing
  more: the fit ends with its best weights and a `ResumeWarning` says so.

Header ``"lstmae"`` (JSON): ``format`` ``lstmae.persistence.checkpoint``,
``format_version`` 2 (version 1, lstmae's hand-written layout, is refused with
a message), ``tensors_sha256``, ``content_sha256`` and ``checkpoint``:
Lightning's dictionary with each tensor replaced by ``{"__tensor__": name}``,
tuples by ``{"__tuple__": [...]}`` and dictionaries whose keys are not all
strings (Adam's per-parameter state) by ``{"__items__": [[key, value], ...]}``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.plugins.io import CheckpointIO
from safetensors import SafetensorError, safe_open

from lstmae.errors import ModelFileError, ParameterError, ResumeWarning
from lstmae.persistence.model_file import METADATA_KEY, tensors_digest, write_document
from lstmae.training import train
from lstmae.persistence.atomic import checkpoint_path  # noqa: F401  (defined with the other paths, without torch)

FORMAT_NAME = "lstmae.checkpoint"
FORMAT_VERSION = 2
#: Single-key dictionaries that stand for a value JSON has no type for.
_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"
_MARKERS = (_TENSOR, _TUPLE, _ITEMS)
_HINT = "delete it and fit without --resume to start over"




def fingerprint(values: np.ndarray, params: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: a SHA-256 of the data and the training parameters."""
    data = np.ascontiguousarray(values, dtype=np.float64)
    digest = hashlib.sha256(str(data.shape).encode())
    digest.update(data.tobytes())
    return {"data_sha256": digest.hexdigest(), "params": json.loads(json.dumps(params))}


# ----------------------------------------------------------------------------- the file format
class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning's checkpoint dictionary as safetensors (tensors) + JSON (everything else); never pickle."""
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        tensors: dict[str, torch.Tensor] = {}
        tree = _encode(checkpoint, tensors, Path(path), "checkpoint")
        document = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "tensors_sha256": tensors_digest(tensors),
            "content_sha256": _content_digest(tree),
            "checkpoint": tree,
        }
        write_document(Path(path), tensors, document, "the checkpoint")  # atomic: temporary file, then rename

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        """Read a checkpoint; tensors come back on the CPU (Lightning moves them where they belong).

        Raises
        ------
        ModelFileError
            Missing, damaged or truncated file, not a checkpoint, or another format version.
        """
        source = Path(path)
        name = str(source)
        if not source.is_file():
            raise ModelFileError(f"no checkpoint to resume from at {name!r}; fit without --resume to start training.")
        try:
            with safe_open(source, framework="pt", device="cpu") as stream:
                metadata = stream.metadata() or {}
                tensors = {key: stream.get_tensor(key) for key in stream.keys()}
            document = json.loads(metadata[METADATA_KEY])
        except (SafetensorError, OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelFileError(f"checkpoint {name!r} is damaged or not a checkpoint ({reason}); {_HINT}.") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
            raise ModelFileError(f"{name!r} is not an lstmae checkpoint; {_HINT}.")
        version = document.get("format_version")
        if version != FORMAT_VERSION or isinstance(version, bool):
            written = "an older lstmae's layout" if version == 1 else "an unknown layout"
            raise ModelFileError(
                f"checkpoint {name!r} has format version {version!r} ({written}); this lstmae reads version "
                f"{FORMAT_VERSION} only; {_HINT}."
            )
        if tensors_digest(tensors) != document.get("tensors_sha256"):
            raise ModelFileError(f"checkpoint {name!r} is damaged: its tensors do not match their checksum; {_HINT}.")
        tree = document.get("checkpoint")
        if _content_digest(tree) != document.get("content_sha256"):
            raise ModelFileError(f"checkpoint {name!r} is damaged: its contents do not match their checksum; {_HINT}.")
        try:
            checkpoint = _decode(tree, tensors)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"checkpoint {name!r} is incomplete ({type(exc).__name__}: {exc}); {_HINT}.") from None
        if not isinstance(checkpoint, dict):
            raise ModelFileError(f"checkpoint {name!r} is incomplete (no checkpoint dictionary); {_HINT}.")
        return checkpoint

    def remove_checkpoint(self, path: str | os.PathLike) -> None:
        Path(path).unlink(missing_ok=True)


def _encode(value: Any, tensors: dict[str, torch.Tensor], path: Path, where: str) -> Any:
    """A JSON-able copy of ``value``; its tensors are moved into ``tensors`` (contiguous CPU copies)."""
    if isinstance(value, torch.Tensor):
        name = str(len(tensors))
        # A copy: safetensors refuses tensors that share memory (views, a tensor saved twice).
        tensors[name] = value.detach().to("cpu", copy=True).contiguous()
        return {_TENSOR: name}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return [_encode(v, tensors, path, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, tensors, path, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not (len(value) == 1 and next(iter(value)) in _MARKERS):
            return {k: _encode(v, tensors, path, f"{where}[{k!r}]") for k, v in value.items()}
        return {_ITEMS: [[_encode(k, tensors, path, f"{where} key"), _encode(v, tensors, path, f"{where}[{k!r}]")] for k, v in value.items()]}
    raise ModelFileError(
        f"cannot write the checkpoint {str(path)!r}: {where} is a {type(value).__name__} ({value!r:.60}); "
        "lstmae checkpoints hold tensors, numbers, strings, lists and dicts only (never pickle); "
        "make that callback's state_dict return those."
    )


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (key, inner), = value.items()
            if key == _TENSOR:
                return tensors[inner]
            if key == _TUPLE:
                return tuple(_decode(v, tensors) for v in inner)
            if key == _ITEMS:
                return {_hashable(_decode(k, tensors)): _decode(v, tensors) for k, v in inner}
        return {k: _decode(v, tensors) for k, v in value.items()}
    return value


def _hashable(key: Any) -> Any:
    if isinstance(key, (list, dict, torch.Tensor)):
        raise ValueError(f"a dictionary key is a {type(key).__name__}")
    return key


def _content_digest(tree: Any) -> str:
    return hashlib.sha256(json.dumps(tree, sort_keys=True, allow_nan=True).encode()).hexdigest()


# ----------------------------------------------------------------------------- lstmae's own state
class FitRecord(pl.Callback):
    """The fingerprint and seed a checkpoint was made with, the epochs done, and whether training had ended.

    Its ``state_dict`` travels in every checkpoint. On resume, a record whose
    training had ended by early stopping stops the Trainer before its first
    epoch (Lightning itself stops a fit whose ``max_epochs`` are done).
    """
    def __init__(self, mark: dict[str, Any], seed: int) -> None:
        self.mark = mark
        self.seed = seed
        self.epochs_done = 0
        self.stopped = False
        self._trainer: pl.Trainer | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.stopped:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        # Read when the checkpoint is written: after every epoch-end hook, early stopping's included
        # (Lightning calls it after the other callbacks' on_train_epoch_end).
        if self._trainer is not None:
            self.epochs_done = self._trainer.fit_loop.epoch_progress.current.processed
            self.stopped = bool(self._trainer.should_stop)
        return {"fingerprint": self.mark, "seed": self.seed, "epochs_done": self.epochs_done, "stopped": self.stopped}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs_done = int(state_dict["epochs_done"])
        self.stopped = bool(state_dict["stopped"])


class EpochCheckpoint(pl.callbacks.ModelCheckpoint):
    """Lightning's ModelCheckpoint at exactly ``path``, rewritten after every training epoch.

    No ``.ckpt`` appended, no ``-v1`` versions, no ``{epoch}`` templates: the
    one file the user named.
    """
    FILE_EXTENSION = ""

    def __init__(self, path: str | os.PathLike) -> None:
        target = Path(path).absolute()
        super().__init__(
            dirpath=target.parent,
            filename=target.name,
            save_top_k=1,
            every_n_epochs=1,
            save_on_train_epoch_end=True,  # after HistoryRecorder has the epoch (validation runs before)
            enable_version_counter=False,
            auto_insert_metric_name=False,
        )
        self.path = target

    def format_checkpoint_name(self, *args: Any, **kwargs: Any) -> str:
        return str(self.path)  # braces in a user's file name are not a template

    def state_dict(self) -> dict[str, Any]:
        # Nothing of where earlier runs wrote: ModelCheckpoint would reload its last path and delete
        # that file at the next save, the original when a user resumes from a copied directory.
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass

    def _ModelCheckpoint__warn_if_dir_not_empty(self, dirpath: Any) -> None:  # noqa: N802
        """The model's directory holds other files; that is expected, not worth a warning."""


# ----------------------------------------------------------------------------- reading and resuming
@dataclass
class Resumed:
    """What lstmae reads from a checkpoint before resuming."""
    path: Path
    epochs_done: int
    stopped: bool
    seed: int
    mark: dict[str, Any]
    best_weights: bool = False  # it holds best weights (BestWeights): a resumed fit ends with them, else with its last
    best_epoch: int | None = None  # their epoch (None in checkpoints written before BestWeights kept it)

    def check(self, mark: dict[str, Any]) -> None:
        """Refuse to resume with other data or parameters than the checkpoint was made with."""
        if mark["data_sha256"] != self.mark.get("data_sha256"):
            raise ParameterError(
                f"cannot resume from {str(self.path)!r}: it was written while training on different data "
                "(its fingerprint does not match this file, its columns or --train-end); "
                "use the same data and options, or fit without --resume to start over."
            )
        ours, theirs = mark["params"], self.mark.get("params", {})
        differ = [f"{k}={ours.get(k)!r} (checkpoint: {theirs.get(k)!r})" for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]
        if differ:
            raise ParameterError(
                f"cannot resume from {str(self.path)!r}: parameters differ from the interrupted fit: "
                f"{'; '.join(differ)}; pass the same options, or fit without --resume to start over."
            )

    def nothing_left(self, epochs: int) -> str | None:
        """Why a resumed fit of ``epochs`` epochs trains no more (the warning it gives), or None when epochs are left."""
        held = f"{self.epochs_done} epoch{'s' if self.epochs_done != 1 else ''}"
        if self.epochs_done >= epochs:
            why = f"the checkpoint {str(self.path)!r} holds {held} and the fit asked for {epochs}"
        elif self.stopped:
            why = f"the checkpoint {str(self.path)!r} holds {held}, after which early stopping had ended its training"
        else:
            return None
        if not self.best_weights:
            weights = f"the checkpoint's last weights, at epoch {self.epochs_done} (no validation loss chose a best epoch)"
        else:
            at = "" if self.best_epoch is None else f", at epoch {self.best_epoch}"
            weights = f"the checkpoint's best weights{at} (lowest validation loss)"
        more = "" if self.stopped else f"; ask for more than {self.epochs_done} epochs to train on"
        return f"{why}, so training ended with {weights}{more}."


def load_checkpoint(path: str | os.PathLike) -> Resumed:
    """Read the lstmae part of a checkpoint written during `fit`. Never executes code.

    Raises
    ------
    ModelFileError
        Missing, damaged or truncated file, or not a checkpoint of this format.
    """
    checkpoint = SafetensorsCheckpointIO().load_checkpoint(path)
    name = str(path)
    try:
        callbacks = checkpoint["callbacks"]
        record = callbacks[FitRecord.__qualname__]
        best = callbacks.get("BestWeights") or {}  # lstmae.training.BestWeights; absent without validation windows
        best_epoch = best.get("epoch")
        return Resumed(
            path=Path(path),
            epochs_done=int(record["epochs_done"]),
            stopped=bool(record["stopped"]),
            seed=int(record["seed"]),
            mark=dict(record["fingerprint"]),
            best_weights=best.get("state") is not None,
            best_epoch=None if best_epoch is None else int(best_epoch),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"checkpoint {name!r} is incomplete ({type(exc).__name__}: {exc}); {_HINT}.") from None


def train_resumable(net: torch.nn.Module, train_set: Any, val_set: Any, plan: Any, path: str | os.PathLike, mark: dict[str, Any], resumed: Resumed | None) -> dict:
    """`lstmae.training.train`, checkpointed after every epoch at ``path``, resumed from ``resumed``.

    ``plan.epochs`` is the total; a resumed fit runs only the epochs left. A
    checkpoint whose training had already ended (early stopping, or as many
    epochs done as asked, or more) trains nothing more: Lightning restores it
    and stops at once, `BestWeights` puts back its best weights, and a
    `ResumeWarning` says which epoch's weights the model has.
    """
    ended = None
    epochs = plan.epochs
    if resumed is not None:
        resumed.check(mark)
        ended = resumed.nothing_left(plan.epochs)
        # Lightning refuses a checkpoint past max_epochs (MisconfigurationException); at max_epochs its fit loop is done.
        epochs = max(epochs, resumed.epochs_done)
    plan = dataclasses.replace(
        plan,
        epochs=epochs,
        callbacks=[*plan.callbacks, FitRecord(mark, plan.seed), EpochCheckpoint(path)],
        checkpoint_io=SafetensorsCheckpointIO(),
        resume_from=None if resumed is None else resumed.path,
    )
    history = train(net, train_set, val_set, plan)
    if ended is not None:
        warnings.warn(ended, ResumeWarning, stacklevel=4)  # train_resumable <- _train <- fit <- the caller
    return history
