"""Is a fitted autoencoder degenerate? Two ratios and plain-language warnings.

An autoencoder is useful for anomaly detection only if it reconstructs what it
was trained on clearly better than what it was not. Two ways to fail:

* **identity**: the model copies its input through (a "sequence" design with
  as many units as features can), so it reconstructs anything, anomalies
  included. ``identity_ratio`` = error on inputs unlike the training data over
  error on training windows. Unlike inputs are the same training windows with
  their timesteps shuffled, reversed in time, and Gaussian noise of the
  training data's scale. A model that learned the data reconstructs at least
  one of those far worse (ratio >> 1); an identity-like model reconstructs all
  of them about as well as the training data (ratio near 1). The largest of the
  three ratios is reported, because a symmetric signal (a sine) reversed in
  time is still like the training data. A partly trained identity can still
  have a large ratio (its training error is tiny), so ``noise_explained`` is
  measured too: the share of the noise input's variance the model reproduces.
  A model of the data reproduces almost none of unseen noise; an identity-like
  model reproduces most of it.
* **mean collapse**: the model outputs roughly each window's average and has
  learned little of the shape. ``collapse_ratio`` = the model's error over the
  error of predicting every value of a window by that window's mean (per
  feature). Near 1 (or above) means the model is no better than the mean.
  For flat windows (a constant series) there is nothing to judge: the ratio is
  0 and no warning is given.

Nothing here knows about files or thresholds: it takes a reconstruction
function and a batch of training windows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

#: identity_ratio below this: the model reconstructs unlike inputs about as well
#: as its training data. Measured on sines: a model that copies its input, or a
#: sequence model with 1 unit per feature, gives 1.0-1.2; working repeat models
#: give 100-250.
IDENTITY_WARNING_RATIO = 2.0
#: noise_explained above this: the model reproduces a good part of random noise it never
#: saw. Measured: working repeat models on sines -0.9 to -0.8; sequence models with
#: units >= features 0.33-0.97 depending on training.
NOISE_EXPLAINED_WARNING = 0.25
#: Mean squared deviation of windows from their own means (scaled units) below which
#: the windows are flat: no diagnosis, collapse_ratio reported as 0.
FLAT_WINDOWS_ERROR = 1e-8
#: collapse_ratio above this: the model is barely better than each window's mean.
COLLAPSE_WARNING_RATIO = 0.8


@dataclass
class Diagnostics:
    """What `diagnose` found. Ratios are floats; warnings are sentences."""

    identity_ratio: float
    identity_ratios: dict[str, float]
    collapse_ratio: float
    noise_explained: float
    train_error: float
    n_windows: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "identity_ratio": self.identity_ratio,
            "identity_ratios": dict(self.identity_ratios),
            "collapse_ratio": self.collapse_ratio,
            "noise_explained": self.noise_explained,
            "train_error": self.train_error,
            "n_windows": self.n_windows,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Diagnostics":
        return cls(
            identity_ratio=float(data["identity_ratio"]),
            identity_ratios={str(k): float(v) for k, v in data["identity_ratios"].items()},
            collapse_ratio=float(data["collapse_ratio"]),
            noise_explained=float(data["noise_explained"]),
            train_error=float(data["train_error"]),
            n_windows=int(data["n_windows"]),
            warnings=[str(w) for w in data.get("warnings", [])],
        )


def _mse(reconstruct: Callable[[torch.Tensor], torch.Tensor], windows: torch.Tensor) -> float:
    with torch.inference_mode():
        return float((reconstruct(windows) - windows).pow(2).mean())


def unlike_inputs(windows: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Inputs unlike the training windows, of the same shape (N, T, F) and scale.

    ``shuffled``: each window's timesteps in a random order. ``reversed``: time
    reversed. ``noise``: Gaussian noise with each feature's standard deviation
    and mean over the given windows.
    """
    generator = torch.Generator().manual_seed(seed)
    n, t, f = windows.shape
    order = torch.argsort(torch.rand(n, t, generator=generator), dim=1)  # (N, T): a permutation per window
    shuffled = torch.gather(windows, 1, order.unsqueeze(-1).expand(n, t, f))
    flat = windows.reshape(-1, f)
    noise = torch.randn(n, t, f, generator=generator, dtype=windows.dtype) * flat.std(0) + flat.mean(0)
    return {"shuffled": shuffled, "reversed": windows.flip(1), "noise": noise}


#: Fewer training windows (or samples) than this: too few to learn what is normal from; the fit warns.
MIN_TRAINING_WINDOWS = 32


def too_few_windows(n_windows: int, n_rows: int, timesteps: int, is_panel: bool, validation_split: float) -> str | None:
    """The warning for a fit on fewer than MIN_TRAINING_WINDOWS training windows (samples), with the numbers, or None."""
    if n_windows >= MIN_TRAINING_WINDOWS:
        return None
    if is_panel:
        return (f"too little data: only {n_windows} training samples ({n_rows} samples, {validation_split:.0%} held out), "
                f"too few to learn what is normal from, so the scores and the threshold are unreliable; "
                f"give at least {MIN_TRAINING_WINDOWS} normal samples.")
    needed = -(-MIN_TRAINING_WINDOWS // max(1e-9, 1 - validation_split)) + timesteps - 1
    return (f"too little data: only {n_windows} training windows ({n_rows} timesteps, windows of timesteps={timesteps}, "
            f"{validation_split:.0%} held out), too few to learn what is normal from, so the scores and the threshold are "
            f"unreliable; give at least {int(needed)} timesteps, or a smaller timesteps.")


def floored_levels(names: list[str], series: int, of: int) -> str | None:
    """The note for score parts whose held-out level was ~0 (`lstmae.scoring.parts.base.ScorePart.clean`), so that
    their floor (`ScorePart.level_floor`) set it, or None.

    names : the floored parts the score weighs; series, of : in how many of the model's series (a global model)
    """
    if not names:
        return None
    where = f" (in {series} of {of} series)" if of > 1 else ""
    return (f"clean signal: the held-out data lies almost exactly on the training data for the {' and '.join(names)} "
            f"part(s){where}, so their level is its floor (1% of each part's scale) and their scores count distances "
            f"in units of that floor: the threshold stays finite, and any change from the training data's exact shape "
            f"scores high.")


def early_stop(history: dict, epochs: int) -> dict | None:
    """How early stopping ended a fit, from its ``history`` (per-epoch lists) and the ``epochs`` asked for:
    {"stopped_epoch", "epochs", "best_epoch", "best_val_loss"} (epochs counted from 1), or None when the fit
    ran every epoch asked for (or had no validation windows to stop on)."""
    losses = [float(v) for v in history.get("val_loss", [])]
    if not losses or len(losses) >= epochs:
        return None
    best = min(range(len(losses)), key=losses.__getitem__)
    return {"stopped_epoch": len(losses), "epochs": int(epochs), "best_epoch": best + 1, "best_val_loss": losses[best]}


def describe_early_stop(stop: dict) -> str:
    """One sentence: "early stopping ended training at epoch 14 of 20 (best val_loss 0.0123 at epoch 9)"."""
    return (f"early stopping ended training at epoch {stop['stopped_epoch']} of {stop['epochs']} "
            f"(best val_loss {stop['best_val_loss']:.4g} at epoch {stop['best_epoch']})")


def diagnose(
    reconstruct: Callable[[torch.Tensor], torch.Tensor],
    windows: torch.Tensor,
    architecture: str,
    seed: int = 0,
    early_stopped: dict | None = None,
    notes: list[str] | None = None,
) -> Diagnostics:
    """Measure identity and mean-collapse behaviour on training windows.

    Parameters
    ----------
    reconstruct : callable
        Maps windows (N, T, F) to reconstructions (N, T, F).
    windows : Tensor of shape (N, T, F)
        Training windows in the scaled units the model was trained in.
    architecture : str
        Named in the warnings' advice.
    seed : int
        For the shuffling and the noise.
    early_stopped : dict, optional
        `early_stop` of the fit: the advice then never asks for more epochs.
    notes : list of str, optional
        Warnings the fit found itself (`too_few_windows`), listed first.
    """
    train_error = _mse(reconstruct, windows)
    floor = 1e-12  # a perfect reconstruction still gives finite ratios
    unlike = unlike_inputs(windows, seed)
    errors = {name: _mse(reconstruct, inputs) for name, inputs in unlike.items()}
    ratios = {name: error / max(train_error, floor) for name, error in errors.items()}
    identity_ratio = max(ratios.values())
    noise = unlike["noise"]
    noise_variance = float((noise - noise.mean(dim=(0, 1), keepdim=True)).pow(2).mean())
    noise_explained = 1.0 - errors["noise"] / max(noise_variance, floor)
    mean_error = float((windows - windows.mean(dim=1, keepdim=True)).pow(2).mean())
    # Windows without variation (a constant series) hold no shape to learn or to copy: nothing to judge.
    flat = mean_error < FLAT_WINDOWS_ERROR
    collapse_ratio = 0.0 if flat else train_error / mean_error
    collapsed = collapse_ratio > COLLAPSE_WARNING_RATIO
    warnings: list[str] = list(notes or [])
    # A collapsed model reconstructs everything equally badly: its ratio near 1 is not identity.
    identity_like = identity_ratio < IDENTITY_WARNING_RATIO or noise_explained > NOISE_EXPLAINED_WARNING
    if identity_like and not collapsed and not flat:
        advice = (
            'use architecture="repeat" (a bottleneck) or fewer units than features'
            if architecture == "sequence"
            else "use fewer units (a narrower bottleneck) or a longer window"
        )
        if noise_explained > NOISE_EXPLAINED_WARNING:
            evidence = f"it reproduces {noise_explained:.0%} of random noise it never saw (noise_explained={noise_explained:.2f})"
        else:
            evidence = (
                f"it reconstructs shuffled, reversed and random inputs within {identity_ratio:.2f}x of its "
                f"training error (identity_ratio={identity_ratio:.2f})"
            )
        warnings.append(
            f"identity-like model: {evidence}, so it will reconstruct anomalies too and miss them; {advice}."
        )
    if collapsed:
        longer = ("train longer (epochs), " if early_stopped is None
                  else f"{describe_early_stop(early_stopped)}, so more epochs would not help; ")
        warnings.append(
            f"mean-collapse: the model's error is {collapse_ratio:.2f}x the error of predicting each "
            f"window's mean, so it learned little of the shape; {longer}use more units, "
            "or check that the data has structure at this window length (timesteps)."
        )
    return Diagnostics(
        identity_ratio, ratios, collapse_ratio, noise_explained, train_error, int(windows.shape[0]), warnings
    )
