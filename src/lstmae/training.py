"""Training through Lightning: the LightningModule, the window datasets and the Trainer set-up.

Nothing here knows about files or thresholds. Inputs are already-scaled float32
torch tensors; windows of a long series are gathered per batch from a strided
view, so a stride-1 copy of all windows is never materialised.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import signal
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader, Dataset, Sampler

from lstmae.backends import fused
from lstmae.errors import Interrupted, ParameterError, describe
from lstmae.params import check
from lstmae.backends.network import LSTMAutoencoder


class SeriesWindows(Dataset):
    """Windows of a long series, gathered lazily.

    Parameters
    ----------
    series : Tensor of shape (n_timesteps, n_features)
    starts : Tensor of shape (n_windows,), int64
    timesteps : int
    """

    def __init__(self, series: torch.Tensor, starts: torch.Tensor, timesteps: int) -> None:
        # unfold is a view: (n - T + 1, F, T); indexing it copies only the batch.
        self._view = series.unfold(0, timesteps, 1)
        self._starts = starts

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        """A whole batch in one indexing operation: (B, T, F)."""
        return self._view[self._starts[indices]].transpose(1, 2)


class PanelSamples(Dataset):
    """Samples of a panel ``(samples, timesteps, features)``, one window each."""

    def __init__(self, panel: torch.Tensor, indices: torch.Tensor) -> None:
        self._panel = panel
        self._indices = indices

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        return self._panel[self._indices[indices]]  # (B, T, F)


def window_datasets(train: torch.Tensor, held_out: torch.Tensor, scaled: torch.Tensor, is_panel: bool,
                    timesteps: int) -> tuple[Dataset, Dataset | None]:
    """The training and validation datasets of planned windows (`lstmae.data.collection.window_plan`).

    ``train``/``held_out``: window starts of a series (or the collection's series laid end to end),
    sample numbers of a panel; ``scaled`` the data they index. No held-out windows: no validation set.
    """
    if is_panel:
        sets = [PanelSamples(scaled, part) for part in (train, held_out)]
    else:
        sets = [SeriesWindows(scaled, part, timesteps) for part in (train, held_out)]
    return sets[0], (sets[1] if len(held_out) else None)


def _batch_as_is(batch: torch.Tensor) -> torch.Tensor:
    """collate_fn: `__getitems__` already returns a stacked batch."""
    return batch


class EpochDraw(Sampler[int]):
    """Each epoch, up to ``cap`` items of every group, drawn afresh without replacement, in one shuffled order.

    A group is a run of consecutive dataset positions: the training windows of
    one series of a collection (`lstmae.data.collection`), so a long series cannot
    drown the short ones. One group is what ``RandomSampler(num_samples=cap)``
    draws, bit for bit (one permutation, its first ``cap`` items); several are
    each permuted and cut, then the union is permuted once more.

    Not a RandomSampler on purpose: under DDP Lightning replaces one of those
    with a DistributedSampler over every item (the cap would be lost), and wraps
    any other sampler in a DistributedSamplerWrapper, which splits this epoch's
    draw between the processes (every process draws the same: one seed).

    Parameters
    ----------
    sizes : items per group, in dataset order
    cap : items drawn per group per epoch (None: all)
    generator : torch.Generator, the only source of randomness
    """

    def __init__(self, sizes: list[int], cap: int | None, generator: torch.Generator) -> None:
        self.sizes = [int(size) for size in sizes]
        self.cap = cap
        self.generator = generator

    def _take(self, size: int) -> int:
        return size if self.cap is None else min(size, self.cap)

    def __len__(self) -> int:
        return sum(self._take(size) for size in self.sizes)

    def __iter__(self):
        if len(self.sizes) == 1:
            yield from torch.randperm(self.sizes[0], generator=self.generator).tolist()[: self._take(self.sizes[0])]
            return
        drawn, offset = [], 0
        for size in self.sizes:
            drawn.append(torch.randperm(size, generator=self.generator)[: self._take(size)] + offset)
            offset += size
        union = torch.cat(drawn)
        yield from union[torch.randperm(len(union), generator=self.generator)].tolist()


def make_loader(
    dataset: Dataset, batch_size: int, shuffle: bool, seed: int, max_items: int | None = None,
    groups: list[int] | None = None,
) -> DataLoader:
    """A single-process loader whose shuffling depends only on ``seed``.

    A generator is passed even without shuffling: otherwise every iteration
    draws a seed from torch's global generator and fit would change the
    caller's random state.

    ``max_items``: with shuffling, each epoch draws this many items afresh
    (without replacement within the epoch), so a long series costs the same
    per epoch as a short one while every window still gets its turn over the
    epochs. ``groups`` (items per group, in dataset order; the series of a
    collection): ``max_items`` is then a cap per group (`EpochDraw`).
    """
    generator = torch.Generator().manual_seed(seed)
    capped = max_items is not None and len(dataset) > max_items
    if shuffle and (groups is not None or capped):
        sampler = EpochDraw(groups if groups is not None else [len(dataset)], max_items, generator)
        # The loader holds the sampler's generator too, so ShuffleOrder can carry the order through a checkpoint.
        return DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, generator=generator, collate_fn=_batch_as_is, num_workers=0
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        collate_fn=_batch_as_is,
        num_workers=0,
    )


class AutoencoderTask(pl.LightningModule):
    """Mean-squared reconstruction error, Adam, gradients clipped by norm; logs loss and MAE per epoch.

    The epoch means are summed here and logged once, on the epoch's last batch:
    ``self.log`` on every step cost a few ms of Lightning bookkeeping per batch
    (~10% of a batch of 32 windows on a CPU).

    Lightning's manual optimization: `training_step` takes the steps its automatic
    loop takes, in its order (zero_grad, backward, clip by norm, Adam step) and
    with the same result bit for bit (weights torch.equal after a seeded fit),
    without the closure machinery around them. Re-measured in December 2026
    (issue 13; seed configuration, 2000 windows x 40 timesteps, units 100,
    batch 32, one thread, six alternating pairs in one process): automatic
    optimization used 1.8% more CPU time per epoch (median paired ratio 1.018,
    5 of 6 pairs slower; 2.206 vs 2.159 s), about 0.75 ms per batch, so it stays.
    """

    def __init__(self, net: LSTMAutoencoder, learning_rate: float, gradient_clip: float | None = None) -> None:
        super().__init__()
        self.net = net
        self.learning_rate = learning_rate
        self.gradient_clip = gradient_clip  # max gradient norm; None or 0: no clipping
        self.automatic_optimization = False
        self._sums: dict[str, list] = {}  # prefix -> [sum of loss x B, sum of MAE x B, windows]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: torch.Tensor, prefix: str, last_batch: bool) -> torch.Tensor:
        reconstruction = self.net(batch)  # (B, T, F)
        difference = reconstruction - batch
        loss = difference.pow(2).mean()
        batch_size = batch.shape[0]
        with torch.no_grad():
            sums = self._sums.setdefault(prefix, [0.0, 0.0, 0])
            sums[0] = loss.detach().double() * batch_size + sums[0]
            sums[1] = difference.abs().mean().double() * batch_size + sums[1]
            sums[2] += batch_size
        if last_batch:  # the batch-size-weighted epoch means, as Lightning's on_epoch=True gives
            loss_sum, mae_sum, windows = self._sums.pop(prefix)
            # Under DDP each process saw its share: the logged means are averaged over processes, so early
            # stopping and the best epoch (BestWeights) are the same decision in every process.
            synced = self.trainer.world_size > 1
            self.log(f"{prefix}loss", (loss_sum / windows).float(), on_step=False, on_epoch=True, prog_bar=True, batch_size=windows, sync_dist=synced)
            self.log(f"{prefix}mae", (mae_sum / windows).float(), on_step=False, on_epoch=True, batch_size=windows, sync_dist=synced)
        return loss

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        optimizer = self.optimizers()
        loss = self._step(batch, "", batch_idx == self.trainer.num_training_batches - 1)
        optimizer.zero_grad()
        self.manual_backward(loss)
        if self.gradient_clip:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip, gradient_clip_algorithm="norm")
        optimizer.step()
        return loss

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self._step(batch, "val_", batch_idx == self.trainer.num_val_batches[0] - 1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # fused: one kernel for all parameters instead of a loop over them (CPU, 1.2 -> 0.7 ms per batch
        # with clipping, bench/RESULTS.md); the same update. Other devices keep the default, and so does
        # mixed precision (trainer_kwargs): Lightning cannot clip the gradients of an optimizer that unscales them itself.
        mixed = "mixed" in str(self.trainer.precision) if self._trainer is not None else False
        fused = True if self.device.type in ("cpu", "cuda") and not mixed else None
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate, fused=fused)


class HistoryRecorder(pl.Callback):
    """Keeps the epoch-level metrics, like Keras's ``History``; a checkpoint carries them (``state_dict``)."""

    KEYS = ("loss", "val_loss", "mae", "val_mae")

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {key: [] for key in self.KEYS}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Validation runs before this hook, so both train and val values are here.
        metrics = trainer.callback_metrics
        for key in self.KEYS:
            if key in metrics:
                self.history[key].append(float(metrics[key]))

    def state_dict(self) -> dict[str, Any]:
        return {"history": {key: list(values) for key, values in self.history.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = {key: [float(v) for v in values] for key, values in state_dict["history"].items()}


class BestWeights(pl.Callback):
    """Restores the weights of the epoch with the lowest validation loss at the end of fit.

    Lightning's EarlyStopping stops but keeps the last weights; ModelCheckpoint
    would write files. Early stopping with patience otherwise returns a model
    that is ``patience`` epochs past its best. A checkpoint carries the best
    loss and weights so far (``state_dict``).
    """

    def __init__(self, monitor: str = "val_loss") -> None:
        self.monitor = monitor
        self.best = math.inf
        self.state: dict | None = None
        self.epoch: int | None = None  # 1-based epoch of ``state``; a resumed fit that trains nothing names it

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and float(value) < self.best:
            self.best = float(value)
            self.state = copy.deepcopy(pl_module.state_dict())
            self.epoch = trainer.current_epoch + 1

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.state is not None:
            pl_module.load_state_dict(self.state)

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best": self.best, "state": self.state, "epoch": self.epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = float(state_dict["best"])
        self.state = state_dict["state"]
        self.epoch = state_dict.get("epoch")  # absent from checkpoints written before it was kept


class ShuffleOrder(pl.Callback):
    """Carries the training loader's shuffling generator through a checkpoint.

    Restored before the first epoch's order is drawn (Lightning loads callback
    states before its fit loop sets up the data), so a resumed fit sees the same
    batches as an uninterrupted one.
    """

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.generator.set_state(state_dict["generator"])


def check_trainer_kwargs(trainer_kwargs: Any) -> dict[str, Any]:
    """``trainer_kwargs`` as a dict of Lightning Trainer options lstmae can pass through.

    Raises ParameterError naming the key, its value and what to use instead.
    """
    if check("trainer_kwargs", trainer_kwargs) is None:  # the parameter table: type, refused and unknown keys
        return {}
    callbacks = trainer_kwargs.get("callbacks")
    if callbacks is not None and not isinstance(callbacks, pl.Callback):
        if not isinstance(callbacks, (list, tuple)) or not all(isinstance(c, pl.Callback) for c in callbacks):
            raise ParameterError(
                f"trainer_kwargs['callbacks'] must be a Lightning Callback or a list of them, got {describe(callbacks)}."
            )
    return dict(trainer_kwargs)


@dataclass
class TrainingPlan:
    """How to train: everything the Trainer needs that is not data."""

    epochs: int
    batch_size: int
    learning_rate: float
    shuffle: bool
    seed: int
    patience: int
    accelerator: str  # "cpu" or "gpu"
    verbose: int
    devices: int | list[int] = 1  # Lightning's devices: 1 for the CPU, [index] for one chosen GPU
    max_windows: int | None = None  # training windows drawn per epoch (None: all); per series with ``groups``
    groups: list[int] | None = None  # training windows per series, in dataset order (a collection; EpochDraw)
    gradient_clip: float = 1.0
    callbacks: list[pl.Callback] = field(default_factory=list)  # run after lstmae's own (checkpoint.py's)
    checkpoint_io: CheckpointIO | None = None  # how checkpoints are written and read (checkpoint.py)
    resume_from: str | os.PathLike | None = None  # a checkpoint to resume from: Trainer.fit's ckpt_path
    trainer_kwargs: dict[str, Any] | None = None  # the user's Lightning Trainer options (check_trainer_kwargs)

    def __post_init__(self) -> None:
        self.trainer_kwargs = check_trainer_kwargs(self.trainer_kwargs)
        precision = str(self.trainer_kwargs.get("precision", ""))
        if "mixed" in precision and self.trainer_kwargs.get("accelerator", self.accelerator) == "cpu":
            raise ParameterError(
                f"trainer_kwargs['precision']={precision!r}: mixed precision needs a CUDA device (the CPU path "
                "computes in float32); on the CPU use '32-true' (the default) or '64-true'."
            )


def progress_bar_wanted(verbose: int) -> bool:
    """A progress bar only for a person at a terminal: never in pipes, logs or with verbose=0."""
    # Lightning's bar writes to stdout; a redirected stdout would fill a file with bar updates.
    streams = (sys.stdout, sys.stderr)
    return verbose > 0 and all(s is not None and s.isatty() for s in streams)


def train(net: LSTMAutoencoder, train_set: Dataset, val_set: Dataset | None, plan: TrainingPlan) -> dict:
    """Fit ``net`` in place; return the per-epoch history (lists of floats)."""
    task = AutoencoderTask(net, plan.learning_rate, plan.gradient_clip)
    train_loader = make_loader(train_set, plan.batch_size, plan.shuffle, plan.seed, plan.max_windows, plan.groups)
    recorder = HistoryRecorder()
    callbacks: list[pl.Callback] = [recorder, ShuffleOrder(train_loader.generator)]
    val_loader = None
    if val_set is not None and len(val_set) > 0:
        val_loader = make_loader(val_set, plan.batch_size, shuffle=False, seed=plan.seed)
        callbacks += [
            pl.callbacks.EarlyStopping(monitor="val_loss", patience=plan.patience, mode="min"),
            BestWeights("val_loss"),
        ]
    options = dict(plan.trainer_kwargs or {})
    user_callbacks = options.pop("callbacks", None) or []
    callbacks += plan.callbacks  # after lstmae's own: they record what a checkpoint carries
    callbacks += [user_callbacks] if isinstance(user_callbacks, pl.Callback) else list(user_callbacks)
    settings: dict[str, Any] = {
        "accelerator": plan.accelerator,
        "devices": plan.devices,
        "logger": False,
        "enable_model_summary": False,
        "enable_progress_bar": progress_bar_wanted(plan.verbose),
        **options,
    }
    with _quiet_lightning():
        trainer = pl.Trainer(
            max_epochs=plan.epochs,
            enable_checkpointing=any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks),
            plugins=[plan.checkpoint_io] if plan.checkpoint_io is not None else None,
            num_sanity_val_steps=0,
            callbacks=callbacks,
            log_every_n_steps=max(1, len(train_loader)),
            **settings,
        )
        try:
            with _interruptible(trainer):
                trainer.fit(task, train_dataloaders=train_loader, val_dataloaders=val_loader, ckpt_path=plan.resume_from)
        finally:
            fused.release()  # the training pass's pooled workspaces
    net.float()  # precision="64-true" (trainer_kwargs) trains in float64; the network is float32 for scoring and saving
    return {key: values for key, values in recorder.history.items() if values}


class _interruptible:
    """Give back an interrupted fit as `Interrupted`, never as Lightning's ``sys.exit``.

    Lightning stops gracefully on Ctrl-C, then calls ``sys.exit(1)``; on SIGTERM
    it raises ``SIGTERMException`` (a SystemExit, exit status 0). Both would end
    the caller's program, or look like success. This turns them into
    `Interrupted(signum)` and puts back the SIGINT handler Lightning switched off.
    """

    def __init__(self, trainer: pl.Trainer) -> None:
        self.trainer = trainer

    def __enter__(self) -> None:
        self._sigint = signal.getsignal(signal.SIGINT)

    def __exit__(self, kind: type | None, error: BaseException | None, traceback: object) -> bool:
        if self._sigint is not None and signal.getsignal(signal.SIGINT) != self._sigint:
            try:
                signal.signal(signal.SIGINT, self._sigint)
            except ValueError:  # not the main thread: nothing was changed there either
                pass
        if isinstance(error, SystemExit) and self.trainer.interrupted:
            cause = error.__context__
            if isinstance(error, SIGTERMException):
                signum = signal.SIGTERM
            else:
                signum = cause.signum if isinstance(cause, Interrupted) else signal.SIGINT
            raise Interrupted(signum) from None
        return False


class _quiet_lightning:
    """Silence Lightning's info banners and its advice about dataloader workers.

    lstmae's loaders are in-process on purpose (batches are gathered by one
    indexing operation); the worker advice does not apply.
    """

    LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")

    def __enter__(self) -> None:
        self._levels = {}
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.WARNING)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*The number of training batches.*")
        warnings.filterwarnings("ignore", message=r".*litlogger.*")
        warnings.filterwarnings("ignore", message=r".*GPU available but not used.*")
        warnings.filterwarnings("ignore", message=r".*but have no `val_dataloader`.*")
        # Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates; not ours to fix.
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*")

    def __exit__(self, *exc_info: object) -> None:
        self._warnings.__exit__(*exc_info)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
