"""The one table of `LSTMAutoencoder`'s parameters: each one's type and range, and the rules between them.

The estimator, `lstmae.reports.explain.explain_shapes`, the command line and
`lstmae.evaluation.series` all validate through `validate` (or `check` for one
value), so the same bad value gives the same message everywhere: what was
wrong, the value received and how to fix it, e.g.::

    stride must be an integer >= 1, got 0.

`PARAMETERS` maps each parameter name to its checks, tried in order; the
first that fails gives the message. Rules between parameters (contamination
and threshold, scorer and architecture, stride / score_stride / frame against
timesteps) are in `validate` and `check_windows`.

This module imports neither torch nor pandas (numpy only): the command line
checks its options before loading anything heavy.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstmae.config import ARCHITECTURES
from lstmae.errors import ParameterError, describe

__all__ = [
    "MAX_LSTM_STEPS",
    "MAX_UNITS",
    "PARAMETERS",
    "SCORERS",
    "SPECS",
    "THRESHOLD_RULES",
    "check",
    "check_integer",
    "check_names",
    "check_score_threshold",
    "check_windows",
    "jsonable_params",
    "from_text",
    "n_train",
    "resolve_frame",
    "several_processes",
    "validate",
]

#: frame="auto": the longest window, in LSTM steps, before timesteps are framed together.
MAX_LSTM_STEPS = 50
#: The widest LSTM layer accepted: far above what trains in reasonable time on a CPU.
MAX_UNITS = 4096
#: threshold rules other than a number (see `lstmae.scoring`).
THRESHOLD_RULES: tuple[str, ...] = ("auto", "pot")
#: What a score measures: one score part alone (`lstmae.scoring.parts`: the reconstruction
#: error, latent novelty: the distance to the nearest training embedding, the distance of a
#: series window to the nearest z-normalised training window, the distance of a panel's
#: sample to the nearest training sample), or "combined": the weighted sum of the parts,
#: each over its held-out level (`lstmae.scoring.combination`).
SCORERS: tuple[str, ...] = ("auto", "reconstruction", "latent", "neighbours", "input", "combined")
#: From per-window errors to per-timestep scores (`lstmae.scoring.aggregation.AGGREGATIONS`,
#: repeated here so that the command line need not import pandas to check an option).
AGGREGATIONS: tuple[str, ...] = ("window", "peak", "timestep")
#: How a collection of series is scaled: each by its own statistics, or all by one scaler (`lstmae.data.collection`).
SERIES_SCALINGS: tuple[str, ...] = ("series", "global")


def _is_int(value: Any) -> bool:
    # bool is an Integral, but timesteps=True is always a mistake.
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is(value: Any, word: str) -> bool:
    return isinstance(value, str) and value == word


def _units_sequence(value: Any) -> Sequence | None:
    """``units`` as a sequence (one int is one layer), or None when it is not one."""
    if _is_int(value):
        return (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        return None
    return value if all(_is_int(u) for u in value) else None


@dataclass(frozen=True)
class Check:
    """One condition on a parameter's value, and the message when it fails.

    ``message`` is formatted with ``name`` and ``value`` (already ``describe``d).
    """

    ok: Callable[[Any], bool]
    message: str | Callable[[Any], str]  # a template, or the value -> the message (when it depends on the value)

    def explain(self, name: str, value: Any) -> str:
        if callable(self.message):
            return self.message(value)
        return self.message.format(name=name, value=describe(value))


def _integer(minimum: int, *, auto: bool = False, none: bool = False, hint: str = "") -> tuple[Check, ...]:
    """An integer >= minimum, optionally also the string 'auto' or None."""
    allowed = ("'auto' or " if auto else "") + ("None or " if none else "")

    def ok(v: Any) -> bool:
        return (auto and _is(v, "auto")) or (none and v is None) or (_is_int(v) and v >= minimum)

    return (Check(ok, f"{{name}} must be {allowed}an integer >= {minimum}, got {{value}}.{hint}"),)


def _choice(options: Sequence[str]) -> tuple[Check, ...]:
    return (Check(lambda v: isinstance(v, str) and v in options, f"{{name}} must be one of {list(options)}, got {{value}}."),)


def _flag() -> tuple[Check, ...]:
    return (Check(lambda v: isinstance(v, (bool, np.bool_)), "{name} must be True or False, got {value}."),)


_DEVICE = re.compile(r"auto|(cpu|cuda)(:\d+)?")

#: Lightning Trainer options lstmae sets itself (trainer_kwargs), and what to use instead.
TRAINER_KWARGS_REFUSED = {
    "max_epochs": "the estimator's epochs",
    "min_epochs": "the estimator's epochs and patience",
    "max_steps": "the estimator's epochs and windows_per_epoch",
    "min_steps": "the estimator's epochs and patience",
    "max_time": "the estimator's epochs",
    "gradient_clip_val": "nothing: lstmae clips gradients by norm at 1.0, its training recipe",
    "gradient_clip_algorithm": "nothing: lstmae clips gradients by norm at 1.0, its training recipe",
    "accumulate_grad_batches": "the estimator's batch_size",
    "limit_train_batches": "the estimator's windows_per_epoch",
    "limit_val_batches": "the estimator's validation_split",
    "check_val_every_n_epoch": "the estimator's validation_split and patience (validation runs every epoch)",
    "val_check_interval": "the estimator's validation_split and patience (validation runs every epoch)",
    "enable_checkpointing": "fit(checkpoint=PATH) (`lstmae fit` always keeps OUTPUT.ckpt; see --resume)",
    "num_sanity_val_steps": "nothing: lstmae runs no sanity validation",
    "plugins": "nothing: lstmae sets its own checkpoint plugin",
}
#: Trainer options passed through as given (`callbacks` run after lstmae's own).
TRAINER_KWARGS_SUPPORTED = (
    "accelerator", "benchmark", "callbacks", "default_root_dir", "deterministic", "detect_anomaly", "devices",
    "enable_model_summary", "enable_progress_bar", "logger", "num_nodes", "precision", "profiler", "strategy",
)


def _positive_count(value: Any) -> bool:
    return _is_int(value) and value >= 1


#: Values lstmae checks before training (Lightning would only fail once the data is read); other
#: forms Lightning accepts (a device list, a Strategy or Accelerator object) pass through unchecked.
TRAINER_KWARGS_VALUES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "devices": (lambda v: _positive_count(v) or isinstance(v, (str, list, tuple)), "an integer >= 1, 'auto' or a list of device indices"),
    "num_nodes": (_positive_count, "an integer >= 1"),
    "accelerator": (lambda v: not isinstance(v, str) or v in ("auto", "cpu", "gpu", "cuda", "mps", "tpu"), "'cpu', 'gpu' or 'auto'"),
    "strategy": (lambda v: not isinstance(v, str) or len(v) > 0, "a Lightning strategy name such as 'ddp', or a Strategy"),
}


def several_processes(trainer_kwargs: Mapping[str, Any] | None) -> bool:
    """Do these Trainer options train in several processes (DDP and the like)?"""
    options = trainer_kwargs or {}
    devices, nodes, strategy = options.get("devices", 1), options.get("num_nodes", 1), options.get("strategy")
    many_devices = (_is_int(devices) and devices > 1) or (isinstance(devices, (list, tuple)) and len(devices) > 1)
    return many_devices or (_is_int(nodes) and nodes > 1) or (isinstance(strategy, str) and "ddp" in strategy)


def _trainer_kwargs_key(value: Any) -> str | None:
    """The first key of a trainer_kwargs dict that lstmae cannot pass through, or None."""
    return next((key for key in value if key in TRAINER_KWARGS_REFUSED or key not in TRAINER_KWARGS_SUPPORTED), None)


def _trainer_kwargs_value(value: Any) -> str | None:
    """The first key of a trainer_kwargs dict whose value `TRAINER_KWARGS_VALUES` refuses, or None."""
    return next((key for key, (ok, _) in TRAINER_KWARGS_VALUES.items() if key in value and not ok(value[key])), None)


def _trainer_kwargs_value_message(value: Any) -> str:
    key = _trainer_kwargs_value(value)
    return f"trainer_kwargs[{key!r}] must be {TRAINER_KWARGS_VALUES[key][1]}, got {describe(value[key])}."


def _trainer_kwargs_message(value: Any) -> str:
    key = _trainer_kwargs_key(value)
    given = f"trainer_kwargs[{key!r}]={describe(value[key])}"
    if key in TRAINER_KWARGS_REFUSED:
        return f"{given}: lstmae sets {key!r} itself; use {TRAINER_KWARGS_REFUSED[key]} instead."
    return f"{given} is not a Trainer option lstmae passes through; supported: {', '.join(TRAINER_KWARGS_SUPPORTED)}."

#: name -> checks, in the order of `LSTMAutoencoder.__init__`.
PARAMETERS: dict[str, tuple[Check, ...]] = {
    "timesteps": (
        Check(lambda v: _is(v, "auto") or _is_int(v), "{name} must be 'auto' or an integer >= 2, got {value}."),
        Check(lambda v: _is(v, "auto") or v >= 2, "{name} must be >= 2 (a window of at least two steps), got {value}."),
    ),
    "stride": _integer(1),
    "frame": _integer(1, auto=True),
    "units": (
        Check(
            lambda v: _units_sequence(v) is not None,
            "{name} must be a positive integer or a non-empty sequence of them (e.g. 32 or (64, 16)), got {value}.",
        ),
        Check(
            lambda v: all(1 <= u <= MAX_UNITS for u in _units_sequence(v)),
            f"{{name}} must be in [1, {MAX_UNITS}], got {{value}} (every entry is one layer's width); e.g. 32 or (64, 16).",
        ),
    ),
    "architecture": _choice(ARCHITECTURES),
    "batch_size": _integer(1),
    "epochs": _integer(1),
    "validation_split": (
        Check(
            lambda v: _is_number(v) and 0 <= v < 1,
            "{name} must be in [0, 1), got {value}; e.g. 0.2 holds out the last 20% of windows, 0 none.",
        ),
    ),
    "learning_rate": (
        Check(lambda v: _is_number(v) and 0 < v <= 10, "{name} must be in (0, 10], got {value}; 1e-3 is Adam's usual rate."),
    ),
    "patience": _integer(1),
    "shuffle": _flag(),
    "windows_per_epoch": _integer(1, none=True),
    "windows_per_series": _integer(1, auto=True, none=True),
    "series_scaling": _choice(SERIES_SCALINGS),
    "score_stride": _integer(1, auto=True),
    "aggregation": _choice(AGGREGATIONS),
    "scorer": _choice(SCORERS),
    "normalize_errors": _flag(),
    "threshold": (
        Check(
            lambda v: (isinstance(v, str) and v in THRESHOLD_RULES) or (_is_number(v) and v >= 0 and v != float("inf")),
            "{name} must be 'auto', 'pot' or a finite number >= 0, got {value}.",
        ),
    ),
    "contamination": (
        Check(lambda v: v is None or (_is_number(v) and 0 < v <= 0.5), "{name} must be None or in (0, 0.5], got {value}."),
    ),
    "random_state": (
        Check(lambda v: v is None or (_is_int(v) and 0 <= v < 2**63), "{name} must be None or an integer >= 0, got {value}."),
    ),
    "device": (
        Check(
            lambda v: isinstance(v, str) and _DEVICE.fullmatch(v) is not None,
            "{name} must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value}.",
        ),
    ),
    "verbose": _integer(0),
    "trainer_kwargs": (
        Check(
            lambda v: v is None or (isinstance(v, dict) and all(isinstance(key, str) for key in v)),
            "{name} must be None or a dict of Lightning Trainer options with str keys, got {value}.",
        ),
        Check(lambda v: v is None or _trainer_kwargs_key(v) is None, _trainer_kwargs_message),
        Check(lambda v: v is None or _trainer_kwargs_value(v) is None, _trainer_kwargs_value_message),
    ),
}


@dataclass(frozen=True)
class Spec:
    """What a parameter is for people: its default, how it is written as text, one line of help.

    ``text`` says how the command line (`from_text`) reads it: "int", "float",
    "units" (comma-separated ints), "word" (kept as typed), "switch" (a
    --name/--no-name pair) or "python" (no option: ``python_only`` says why;
    still settable from ``lstmae fit --params FILE`` when its value is JSON).
    """

    default: Any
    text: str
    help: str
    python_only: str = ""


#: name -> Spec, the same names and order as `PARAMETERS`: the command line's options and their help come from here.
SPECS: dict[str, Spec] = {
    "timesteps": Spec("auto", "int", "Window length, or 'auto' (the dominant period of a series; the sample length of a panel)."),
    "stride": Spec(1, "int", "Step between the starts of consecutive training windows."),
    "frame": Spec("auto", "int", "Timesteps the LSTM reads as one step (must divide timesteps); 'auto': 1 up to 50 timesteps, else the smallest divisor keeping <= 50 steps."),
    "units": Spec(32, "units", "Hidden units per encoder layer, e.g. 64 or 64,16 (the last is the latent size; the decoder mirrors it)."),
    "architecture": Spec("repeat", "word", "'repeat' (bottleneck + RepeatVector) or 'sequence' (return_sequences throughout: can learn the identity)."),
    "batch_size": Spec(64, "int", "Windows per gradient step (per process under DDP)."),
    "epochs": Spec(30, "int", "Maximum epochs; early stopping usually ends sooner."),
    "validation_split": Spec(0.1, "float", "Fraction of windows held out (the last ones) for early stopping, in [0, 1); 0: none."),
    "learning_rate": Spec(1e-3, "float", "Adam's learning rate, in (0, 10]."),
    "patience": Spec(5, "int", "Epochs without a better validation loss before training stops."),
    "shuffle": Spec(True, "switch", "Shuffle the training windows every epoch."),
    "windows_per_epoch": Spec(2048, "int", "Windows drawn afresh for each epoch (with shuffling); 'none': every window every epoch."),
    "windows_per_series": Spec("auto", "int", "A collection of series: at most this many windows per series and epoch; 'auto': windows_per_epoch shared equally; 'none': no cap."),
    "series_scaling": Spec("series", "word", "A collection of series: 'series' (each by its own statistics) or 'global' (one scaler for all)."),
    "score_stride": Spec("auto", "int", "Step between scored windows, at most timesteps; 'auto': timesteps // 8."),
    "aggregation": Spec("peak", "word", "Per-window errors to per-timestep scores: 'window' (averaged over the surrounding window), 'peak' (the most anomalous window containing the timestep) or 'timestep'."),
    "scorer": Spec("auto", "word", "What a score measures: 'reconstruction', 'latent', 'neighbours', 'combined', or 'auto' (combined for repeat, reconstruction for sequence)."),
    "normalize_errors": Spec(True, "switch", "Divide each feature's squared error by its mean on the training data."),
    "threshold": Spec("auto", "float", "'auto' (1.25 x the largest training score), 'pot' (extreme-value tail of held-out scores) or a score value."),
    "contamination": Spec(None, "float", "Expected share of anomalous timesteps, in (0, 0.5]: the threshold becomes that quantile of the training scores."),
    "random_state": Spec(None, "int", "Random seed (same seed and data: the same model on the CPU)."),
    "device": Spec("auto", "word", "'auto', 'cpu', 'cuda' or 'cuda:N'."),
    "verbose": Spec(1, "int", "0: silent; 1: a progress bar when writing to a terminal."),
    "trainer_kwargs": Spec(
        None, "python", "Lightning Trainer options.",
        python_only="a dict of Lightning Trainer options, some of them Python objects (loggers, callbacks): "
        "give its JSON part in --params (e.g. {\"trainer_kwargs\": {\"precision\": \"64-true\"}}), or use "
        "--devices/--num-nodes/--strategy/--accelerator",
    ),
}

_INTEGER = re.compile(r"[+-]?\d+")


def from_text(name: str, text: str) -> Any:
    """The value ``text`` stands for, read as `SPECS` says; text that is no such value comes back unchanged.

    Nothing is judged here: `check` then gives the table's message for a bad
    value, the unreadable text included (``--epochs many``: "epochs must be an
    integer >= 1, got 'many'."). 'none' is None where the parameter takes None;
    a word the parameter takes is matched in any case ('AUTO').
    """
    spec, stripped = SPECS[name], text.strip()
    word = stripped.lower()
    if word != stripped and _passes(name, word):
        return word
    if word == "none" and _passes(name, None):
        return None
    try:
        if spec.text == "int" and _INTEGER.fullmatch(stripped):
            return int(stripped)
        if spec.text == "int" and not _passes(name, word):  # "2.5": the table then says it must be an integer
            return float(stripped)
        if spec.text == "float" and not _passes(name, word):
            return float(stripped)
        if spec.text == "units" and all(_INTEGER.fullmatch(part.strip()) for part in stripped.split(",")):
            units = [int(part) for part in stripped.split(",")]
            return units[0] if len(units) == 1 else units
    except ValueError:
        pass
    return text


def _passes(name: str, value: Any) -> bool:
    return all(rule.ok(value) for rule in PARAMETERS[name])


def check_names(values: Mapping[str, Any], where: str = "--params") -> None:
    """ParameterError naming every key of ``values`` that is no parameter, its value, and the nearest parameter name."""
    import difflib

    unknown = [key for key in values if key not in PARAMETERS]
    if unknown:
        given = ", ".join(f"{key}={describe(values[key])}" for key in unknown)
        hints = [match for key in unknown for match in difflib.get_close_matches(str(key), list(PARAMETERS), n=1)]
        hint = f"; did you mean {', '.join(hints)}?" if hints else ";"
        raise ParameterError(f"{where} names unknown estimator parameter(s) {given}{hint} Known: {', '.join(sorted(PARAMETERS))}.")


def check(name: str, value: Any) -> Any:
    """Check one parameter against the table; return it (``units`` as a tuple of int).

    Raises
    ------
    ParameterError
        The message of the first failing check: what was wrong, the value, how to fix it.
    """
    for rule in PARAMETERS[name]:
        if not rule.ok(value):
            raise ParameterError(rule.explain(name, value))
    if name == "units":
        return tuple(int(u) for u in _units_sequence(value))
    return value


def validate(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check every parameter in ``params`` that the table knows, then the rules between them.

    Parameters
    ----------
    params : mapping of str -> value
        E.g. ``LSTMAutoencoder().get_params()``; names missing from it are not
        checked (`explain_shapes` passes only the ones it uses), names the
        table does not know are left alone.

    Returns
    -------
    dict
        ``params`` with ``units`` as a tuple of int.

    Raises
    ------
    ParameterError
        The first bad value, in table order, then the first broken rule.
    """
    checked = dict(params)
    for name in PARAMETERS:
        if name in checked:
            checked[name] = check(name, checked[name])
    contamination, threshold = checked.get("contamination"), checked.get("threshold", "auto")
    if contamination is not None and not _is(threshold, "auto"):
        raise ParameterError(
            f"contamination={contamination!r} and threshold={threshold!r} both set the threshold; "
            "give one of them (leave threshold='auto' to use contamination)."
        )
    scorer, architecture = checked.get("scorer", "auto"), checked.get("architecture", "repeat")
    if scorer in ("latent", "combined") and architecture != "repeat":
        raise ParameterError(
            f"scorer={scorer!r} compares window embeddings, which only the 'repeat' design has "
            f"(architecture={architecture!r} has none); use architecture='repeat' or scorer='reconstruction'."
        )
    if several_processes(checked.get("trainer_kwargs")) and checked.get("random_state", 0) is None:
        raise ParameterError(
            f"trainer_kwargs={checked['trainer_kwargs']!r} trains in several processes, which must draw the same "
            "windows in the same order: set random_state (e.g. random_state=0; `lstmae fit --seed 0`)."
        )
    if _is_int(checked.get("timesteps")):
        check_windows(
            checked["timesteps"],
            stride=checked.get("stride", 1),
            score_stride=checked.get("score_stride", "auto"),
            frame=checked.get("frame", "auto"),
        )
    return checked


def check_windows(timesteps: int, *, stride: Any = 1, score_stride: Any = "auto", frame: Any = "auto") -> None:
    """The rules against a known window length (given, or found by timesteps='auto').

    Raises ParameterError when a stride skips timesteps or frame does not divide timesteps.
    """
    if _is_int(stride) and stride > timesteps:
        raise ParameterError(
            f"stride={stride} is larger than timesteps={timesteps}: training windows would skip "
            f"timesteps; use stride <= {timesteps}."
        )
    if _is_int(score_stride) and score_stride > timesteps:
        raise ParameterError(
            f"score_stride={score_stride} is larger than timesteps={timesteps}: scoring windows would "
            f"skip timesteps; use score_stride <= {timesteps} or 'auto'."
        )
    if _is_int(frame) and timesteps % frame:
        raise ParameterError(
            f"frame={frame} must divide timesteps={timesteps}; use a divisor of {timesteps} or frame='auto'."
        )


def resolve_frame(frame: int | str, timesteps: int) -> int:
    """Timesteps per LSTM step: "auto" is the smallest divisor of timesteps keeping at most MAX_LSTM_STEPS steps."""
    check("frame", frame)
    if _is(frame, "auto"):
        chosen = -(-timesteps // MAX_LSTM_STEPS)
        while timesteps % chosen:
            chosen += 1
        return chosen
    check_windows(timesteps, frame=frame)
    return int(frame)


def check_integer(name: str, value: Any, minimum: int, hint: str = "") -> int:
    """``value`` as an int >= ``minimum``, else the table's integer message (for arguments outside the table)."""
    (rule,) = _integer(minimum, hint=hint)
    if not rule.ok(value):
        raise ParameterError(rule.explain(name, value))
    return int(value)


def check_score_threshold(value: Any) -> float:
    """A score threshold given to `detect` (not a rule: a number), else ParameterError."""
    if not _is_number(value) or not np.isfinite(value) or value < 0:
        raise ParameterError(f"threshold must be a finite number >= 0, got {value!r}.")
    return float(value)


def n_train(n: int, validation_split: float) -> int:
    """How many of ``n`` windows (or samples, or scores) train: the first ones; the rest validate.

    Keras ``validation_split`` semantics, with its very expression, so that the
    counts match what a Keras user has seen: ``int(n * (1 - validation_split))``.
    """
    return int(n * (1 - validation_split))


def jsonable_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as JSON values (tuples -> lists, numpy scalars -> Python).

    ``trainer_kwargs`` is left out: Lightning objects (loggers, callbacks) for one
    training run, neither saved with a model nor part of a checkpoint's fingerprint.
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == "trainer_kwargs":
            continue
        if isinstance(value, (tuple, list)):
            value = [int(v) for v in value]
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out
