"""What the command line generates for its commands: the estimator's parameters as options (from `lstmae.params.SPECS`), and each command's summary.

Every parameter of `LSTMAutoencoder` gets a kebab-case option (``batch_size``
-> ``--batch-size``; ``shuffle`` -> ``--shuffle/--no-shuffle``) on each verb
that builds an estimator (``fit``, ``fleet fit``, ``evaluate``), with the
table's help and default, plus ``--params FILE`` (JSON or TOML) for any of
them. A verb takes them with `estimator_options`; its callback then receives
``estimator=EstimatorOptions`` and calls `EstimatorOptions.params`.

Values are read from text by `lstmae.params.from_text` and judged by the
table, so a bad value gets the estimator's own message, naming the option:
``--batch-size must be an integer >= 1, got 0.`` Nothing here imports torch,
Lightning or pandas: a bad option is answered at once.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from lstmae.errors import ParameterError, describe
from lstmae.params import PARAMETERS, SPECS, check, check_names, from_text, validate

__all__ = [
    "ALIASES", "EstimatorOptions", "estimator_options", "first_sentence", "flag", "option_names", "option_value", "read_params",
]

#: Older spellings kept working: ``lstmae fit --seed 0`` is ``--random-state 0``.
ALIASES: dict[str, tuple[str, ...]] = {"random_state": ("--seed",)}
_METAVARS = {"int": "<int>", "float": "<float>", "units": "<int,...>", "word": "<str>"}  # as typer writes its own
_PARAMS_HELP = (
    "Estimator parameters from a .json or .toml file (or a JSON object such as '{\"epochs\": 5}'); "
    "options given on the command line override it. trainer_kwargs, which has no option, is set here."
)


def flag(name: str) -> str:
    """The option of parameter ``name``: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def option_names() -> dict[str, str]:
    """{parameter: its option} for every parameter that has one (all but the Python-only ones)."""
    return {name: flag(name) for name, spec in SPECS.items() if spec.text != "python"}


@dataclass(frozen=True)
class EstimatorOptions:
    """The estimator options a command was given: {parameter: text (or bool for a switch)}, and --params."""

    given: Mapping[str, Any]
    params_source: str | None = None

    def params(self, **fixed: Any) -> dict[str, Any]:
        """The estimator's keyword arguments: --params, then the options given, then ``fixed`` (set by the verb).

        Only what was given: the estimator's defaults apply to the rest. Each
        value is checked by the table, then the rules between parameters.

        Raises
        ------
        ParameterError
            A bad option value (the table's message, naming the option), a bad
            --params file or entry, or a broken rule between parameters.
        """
        chosen = read_params(self.params_source)
        for name, text in self.given.items():
            chosen[name] = text if isinstance(text, bool) else option_value(name, text)
        trainer = {**(chosen.get("trainer_kwargs") or {}), **(fixed.pop("trainer_kwargs", None) or {})}
        chosen.update(fixed)
        if trainer:
            chosen["trainer_kwargs"] = trainer
        validate({**{name: spec.default for name, spec in SPECS.items()}, **chosen})  # the rules, as the estimator will see them
        return chosen


def option_value(name: str, text: str) -> Any:
    """The value of parameter ``name`` given as option text, checked by the table (its message names the option)."""
    value = from_text(name, text)
    try:
        check(name, value)
    except ParameterError as exc:
        raise ParameterError(_naming_option(name, str(exc))) from None
    return value


def _naming_option(name: str, message: str) -> str:
    """The table's message for a value given as an option: it starts with the option instead of the parameter."""
    if message.startswith(name):
        return flag(name) + message[len(name):]
    return f"{flag(name)}: {message}"


def read_params(source: str | None) -> dict[str, Any]:
    """Estimator parameters from --params: a JSON object given inline, or a .json / .toml file.

    Every key must be a parameter (else the nearest name is suggested) and
    every value pass the table; a string 'none' is None where the parameter
    takes None (TOML has no null). Values inline are refused with the
    estimator's message; values from a file with the file's name first.
    """
    if source is None or not source.strip():
        return {}
    if source.lstrip().startswith(("{", "[")):  # JSON on the command line, not a file name
        where, values = "--params", _parse_json(source, source)
    else:
        where, values = f"--params {source}", _parse_file(Path(source))
    if not isinstance(values, dict):
        raise ParameterError(
            f"{where} must be a JSON object (or a TOML table) of parameter names and values such as {{\"epochs\": 5}}; "
            f"got {describe(values)}."
        )
    check_names(values, where)
    chosen = {}
    for name, value in values.items():
        if isinstance(value, str) and value.strip().lower() == "none" and all(rule.ok(None) for rule in PARAMETERS[name]):
            value = None
        try:
            check(name, value)
        except ParameterError as exc:
            raise ParameterError(str(exc) if where == "--params" else f"{where}: {exc}") from None
        chosen[name] = value
    return chosen


def _parse_json(text: str, shown: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ParameterError(
            f"--params must be a JSON object such as '{{\"epochs\": 5}}' or a .json/.toml file; got {shown!r} ({exc})."
        ) from None


def _parse_file(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ParameterError(
            f"--params {str(path)!r}: give a .json or .toml file, or a JSON object such as '{{\"epochs\": 5}}'."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParameterError(f"--params: no such file: {path}; check the path (relative paths start at {os.getcwd()}).") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"--params: cannot read {path}: {getattr(exc, 'strerror', None) or exc}.") from None
    if suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ParameterError(f"--params {path} is not valid JSON ({exc}); e.g. {{\"epochs\": 5}}.") from None
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"--params {path} is not valid TOML ({exc}); e.g. epochs = 5.") from None


def _option(name: str, default: Any) -> inspect.Parameter:
    """The typer parameter of estimator parameter ``name``; ``default`` is what the verb uses when it is not given."""
    spec = SPECS[name]
    shown = "none" if default is None else ("yes" if default is True else "no" if default is False else default)
    if isinstance(shown, (list, tuple)):
        shown = ",".join(str(u) for u in shown)
    text = f"{spec.help} [default: {shown}]"
    if spec.text == "switch":
        option = typer.Option(f"{flag(name)}/--no-{flag(name)[2:]}", help=text, show_default=False)
        annotation: Any = Annotated[Optional[bool], option]
    else:
        option = typer.Option(flag(name), *ALIASES.get(name, ()), help=text, show_default=False, metavar=_METAVARS[spec.text])
        annotation = Annotated[Optional[str], option]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


def estimator_options(defaults: Mapping[str, Any] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a typer command an option for every estimator parameter, and --params.

    The command's own signature has a parameter ``estimator`` (it receives an
    `EstimatorOptions`); options it declares itself (``--quiet``) stay as they
    are. ``defaults``: the verb's defaults where they differ from the
    estimator's, shown in the help (the verb applies them itself).
    """
    shown = {name: spec.default for name, spec in SPECS.items()} | dict(defaults or {})

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "estimator"]
        taken = {p.name for p in own}
        names = [name for name in option_names() if name not in taken]
        params_option = inspect.Parameter(
            "params", inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[Optional[str], typer.Option("--params", help=_PARAMS_HELP, metavar="<file|json>")],
        )
        added = [params_option, *(_option(name, shown[name]) for name in names)]

        @functools.wraps(command)
        def with_options(**kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names if kwargs.get(name) is not None}
            source = kwargs.pop("params", None)
            for name in names:
                kwargs.pop(name, None)
            return command(**kwargs, estimator=EstimatorOptions(given, source))

        # typer passes everything by keyword: keyword-only keeps the command's order whatever the defaults
        keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        with_options.__signature__ = signature.replace(parameters=[*keyword, *added])  # type: ignore[attr-defined]
        # resolved, so that typer need not evaluate the command's string annotations in this module's namespace
        with_options.__annotations__ = {p.name: p.annotation for p in [*keyword, *added]}
        del with_options.__wrapped__  # typer reads the signature above, not the command's
        return with_options

    return decorate


def first_sentence(doc: str | None) -> str:
    """A command's summary for ``lstmae --help``: its docstring's first sentence, whole.

    click cuts a command's summary at 45 characters; the CLI gives each command
    this as its ``short_help`` instead.
    """
    paragraph = " ".join(inspect.cleandoc(doc or "").split("\n\n")[0].split())
    # a period that ends a sentence: followed by a space or the end, not the one of "e.g." / "i.e."
    end = re.search(r"(?<!\be\.g)(?<!\bi\.e)\.(?=\s|$)", paragraph)
    return paragraph[: end.end()] if end else paragraph
