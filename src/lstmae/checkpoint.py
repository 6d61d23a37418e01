"""Training checkpoints: an interrupted `fit` resumes where its last finished epoch left off.

A checkpoint is one safetensors file, rewritten atomically (`io.write_document`)
after every epoch. Safetensors rather than ``torch.save``: loading parses JSON
and raw tensors and never unpickles, exactly like model files (`lstmae.io`).

Tensors:

* ``net.<name>``: the network's weights after the epoch;
* ``optim.<i>.<key>``: Adam's state for parameter ``i`` (``step``,
  ``exp_avg``, ``exp_avg_sq``); the parameter groups are JSON;
* ``best.<name>``: the weights of the best validation epoch so far (with validation);
* ``rng.shuffle``: the state of the generator that shuffles the training
  windows, so that a resumed fit sees the same batches as an uninterrupted one.

Header ``"lstmae"`` (JSON): format name ``lstmae.checkpoint`` and version,
epochs done, whether early stopping had already ended training, the history,
the early-stopping counters, the seed, a fingerprint of the training data and
of every parameter that shapes training (``epochs`` excepted: it may be raised
on resume), and a SHA-256 of the tensors. Resuming with other data or other
parameters is refused, naming what differs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from lstmae.errors import ModelFileError, ParameterError
from lstmae.io import METADATA_KEY, tensors_digest, write_document

FORMAT_NAME = "lstmae.checkpoint"
FORMAT_VERSION = 1


def checkpoint_path(model_path: str | os.PathLike) -> Path:
    """Where `lstmae fit -o MODEL` keeps its checkpoint: ``MODEL.ckpt`` next to it."""
    model = Path(model_path)
    return model.with_name(model.name + ".ckpt")


def fingerprint(values: np.ndarray, params: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: a SHA-256 of the data and the training parameters."""
    data = np.ascontiguousarray(values, dtype=np.float64)
    digest = hashlib.sha256(str(data.shape).encode())
    digest.update(data.tobytes())
    return {"data_sha256": digest.hexdigest(), "params": json.loads(json.dumps(params))}


@dataclass
class Resumed:
    """The state read from a checkpoint."""

    path: Path
    epochs_done: int
    stopped: bool
    seed: int
    mark: dict[str, Any]
    history: dict[str, list[float]]
    net: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None = None
    early_stopping: dict[str, Any] | None = None
    best: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    rng: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

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


def load_checkpoint(path: str | os.PathLike) -> Resumed:
    """Read a checkpoint written by `Checkpointer`. Never executes code.

    Raises
    ------
    ModelFileError
        Missing, damaged or truncated file, or not a checkpoint of this format.
    """
    from safetensors import SafetensorError, safe_open

    source = Path(path)
    name = str(source)
    hint = "delete it and fit without --resume to start over"
    if not source.is_file():
        raise ModelFileError(f"no checkpoint to resume from at {name!r}; fit without --resume to start training.")
    try:
        with safe_open(source, framework="pt", device="cpu") as stream:
            metadata = stream.metadata() or {}
            tensors = {key: stream.get_tensor(key) for key in stream.keys()}
        info = json.loads(metadata[METADATA_KEY])
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(f"checkpoint {name!r} is damaged or not a checkpoint ({reason}); {hint}.") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{name!r} is not an lstmae checkpoint; {hint}.")
    version = info.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise ModelFileError(f"checkpoint {name!r} has format version {version!r}; this lstmae reads {FORMAT_VERSION}; {hint}.")
    if tensors_digest(tensors) != info.get("tensors_sha256"):
        raise ModelFileError(f"checkpoint {name!r} is damaged: its tensors do not match their checksum; {hint}.")
    try:
        optimizer = None
        if info.get("optimizer") is not None:
            state: dict[int, dict[str, torch.Tensor]] = {}
            for key, tensor in tensors.items():
                if key.startswith("optim."):
                    _, index, slot = key.split(".", 2)
                    state.setdefault(int(index), {})[slot] = tensor
            optimizer = {"state": state, "param_groups": info["optimizer"]["param_groups"]}
        best_state = {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")} or None
        return Resumed(
            path=source,
            epochs_done=int(info["epochs_done"]),
            stopped=bool(info["stopped"]),
            seed=int(info["seed"]),
            mark=dict(info["fingerprint"]),
            history={k: [float(x) for x in v] for k, v in info["history"].items()},
            net={k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")},
            optimizer=optimizer,
            early_stopping=info.get("early_stopping"),
            best=info.get("best"),
            best_state=best_state,
            rng=tensors.get("rng.shuffle"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"checkpoint {name!r} is incomplete ({type(exc).__name__}: {exc}); {hint}.") from None


class Checkpointer(pl.Callback):
    """Restores a `Resumed` state when training starts; writes a checkpoint after every epoch.

    Add it after the other callbacks: at the end of an epoch it reads what
    they recorded (history, early stopping, best weights).
    """

    def __init__(self, path: str | os.PathLike, mark: dict[str, Any], seed: int, resumed: Resumed | None) -> None:
        self.path = Path(path)
        self.mark = mark
        self.seed = seed
        self.resumed = resumed
        self.offset = resumed.epochs_done if resumed is not None else 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from lstmae.training import BestWeights, HistoryRecorder

        if self.resumed is None:
            return
        state = self.resumed
        if state.optimizer is not None and trainer.optimizers:
            trainer.optimizers[0].load_state_dict(state.optimizer)
        for callback in trainer.callbacks:
            if isinstance(callback, HistoryRecorder):
                for key, values in state.history.items():
                    callback.history.setdefault(key, [])[:0] = values
            elif isinstance(callback, BestWeights) and state.best is not None:
                callback.best = float(state.best)
                callback.state = None if state.best_state is None else {k: v.clone() for k, v in state.best_state.items()}
            elif isinstance(callback, pl.callbacks.EarlyStopping) and state.early_stopping is not None:
                saved = dict(state.early_stopping)
                saved["best_score"] = torch.tensor(float(saved["best_score"]))
                callback.load_state_dict(saved)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from lstmae.training import BestWeights, HistoryRecorder

        epochs_done = self.offset + trainer.current_epoch + 1
        tensors = {f"net.{k}": v for k, v in pl_module.net.state_dict().items()}
        document: dict[str, Any] = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "epochs_done": epochs_done,
            "stopped": bool(trainer.should_stop),
            "seed": self.seed,
            "fingerprint": self.mark,
            "history": {},
            "optimizer": None,
            "early_stopping": None,
            "best": None,
        }
        if trainer.optimizers:
            optimizer_state = trainer.optimizers[0].state_dict()
            for index, slots in optimizer_state["state"].items():
                for slot, value in slots.items():
                    tensors[f"optim.{index}.{slot}"] = torch.as_tensor(value)
            document["optimizer"] = {"param_groups": optimizer_state["param_groups"]}
        generator = getattr(trainer.train_dataloader, "generator", None)
        if isinstance(generator, torch.Generator):
            tensors["rng.shuffle"] = generator.get_state()
        for callback in trainer.callbacks:
            if isinstance(callback, HistoryRecorder):
                document["history"] = callback.history
            elif isinstance(callback, BestWeights) and callback.state is not None:
                document["best"] = callback.best
                tensors.update({f"best.{k}": v for k, v in callback.state.items()})
            elif isinstance(callback, pl.callbacks.EarlyStopping):
                saved = callback.state_dict()
                saved["best_score"] = float(saved["best_score"])
                document["early_stopping"] = saved
        write_checkpoint(self.path, tensors, document)


def write_checkpoint(path: Path, tensors: dict[str, torch.Tensor], document: dict[str, Any]) -> None:
    """Write atomically: an interruption mid-write leaves the previous checkpoint as it was."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    document = {**document, "tensors_sha256": tensors_digest(tensors)}
    write_document(path, tensors, document, "the checkpoint")


def train_resumable(net: torch.nn.Module, train_set: Any, val_set: Any, plan: Any, path: str | os.PathLike, mark: dict[str, Any], resumed: Resumed | None) -> dict:
    """`lstmae.training.train`, checkpointed after every epoch and resumed from ``resumed``.

    ``plan.epochs`` is the total; a resumed fit runs only the epochs left. A
    checkpoint whose training had already ended (early stopping, or every
    epoch done) trains nothing more: its best weights are restored.
    """
    import dataclasses

    from lstmae.training import train

    if resumed is not None:
        resumed.check(mark)
        net.load_state_dict(resumed.net)
        left = plan.epochs - resumed.epochs_done
        if resumed.stopped or left <= 0:
            if resumed.best_state is not None:
                net.load_state_dict({k[len("net."):]: v for k, v in resumed.best_state.items() if k.startswith("net.")})
            return {key: values for key, values in resumed.history.items() if values}
        plan = dataclasses.replace(plan, epochs=left, shuffle_state=resumed.rng)
    callback = Checkpointer(path, mark, plan.seed, resumed)
    plan = dataclasses.replace(plan, callbacks=[*plan.callbacks, callback])
    return train(net, train_set, val_set, plan)
