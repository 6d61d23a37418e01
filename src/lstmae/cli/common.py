"""What every verb group of the command line shares: the consoles, option parsers, the Ctrl-C wrapper.

`lstmae.cli.app` (the main verbs) and `lstmae.cli.fleet` (``lstmae fleet ...``)
both import this module; neither imports the other's internals.
"""

from __future__ import annotations

import functools
import signal
import sys
from typing import Any

from rich.console import Console

from lstmae.errors import Interrupted, ParameterError
from lstmae.params import check

# Wide tables when piped, so that nothing is cut to 80 columns in a log file.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def split_list(text: str | None) -> list[str] | None:
    """A comma-separated option as a list of its non-empty items (None for none)."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    return items or None


# The parsers only turn text into values; `lstmae.params` (the estimator's table) judges them,
# so a bad number gets the estimator's message. Text that is no value at all gets the
# table's message for that text, naming the option: "--timesteps must be ..., got 'ten'."
def unparseable(name: str, text: str) -> ParameterError:
    """The error for option ``--name`` given ``text``, which is no value of its type at all."""
    try:
        check(name, text)
    except ParameterError as exc:
        return ParameterError(f"--{exc}")
    return ParameterError(f"--{name} cannot be read from {text!r}.")  # the table accepts every word the parsers pass on


def parse_timesteps(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise unparseable("timesteps", text) from None


def parse_units(text: str) -> int | list[int]:
    try:
        units = [int(part) for part in text.split(",")]
    except ValueError:
        raise unparseable("units", text) from None
    return units[0] if len(units) == 1 else units


def parse_threshold(text: str) -> float | str:
    if text.strip().lower() in ("auto", "pot"):
        return text.strip().lower()
    try:
        return float(text)
    except ValueError:
        raise unparseable("threshold", text) from None


class Stopped(Exception):
    """A command was interrupted. Not a KeyboardInterrupt: typer would swallow that into a bare exit code 130."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def stoppable(callback: Any) -> Any:
    """``callback`` with Ctrl-C / SIGTERM turned into `Stopped`: one line and exit 130 / 143 (`lstmae.cli.app.main`)."""

    @functools.wraps(callback)
    def run_command(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except KeyboardInterrupt as exc:
            raise Stopped(exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)) from None

    return run_command


__all__ = ["Stopped", "err", "out", "parse_threshold", "parse_timesteps", "parse_units", "split_list", "stoppable", "unparseable"]
