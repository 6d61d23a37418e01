"""Checks of what a command is given to read - data paths, model paths, input policies - that import nothing heavy.

The readers (`lstmae.data.readers`, `lstmae.persistence.model_file.load_model`) run the same
checks; the command line runs them first, before pandas, torch or Lightning
is imported, so a wrong path or a misspelt policy is answered at once. One
place for each message.
"""

from __future__ import annotations

import os

from lstmae.errors import DataFileError, ModelFileError, ParameterError, describe

__all__ = [
    "DUPLICATE_POLICIES", "FLEET_SETTINGS", "MISSING_POLICIES", "check_data_path", "check_fleet_path", "check_model_path",
    "check_policies",
]

MISSING_POLICIES: tuple[str, ...] = ("interpolate", "error", "keep")
DUPLICATE_POLICIES: tuple[str, ...] = ("error", "mean", "first")
#: The file that makes a folder a fleet (`lstmae.fleet.runner`): its settings.
FLEET_SETTINGS = "fleet.json"


def check_policies(missing: str, duplicates: str) -> None:
    """Raise a ParameterError for an unknown ``missing`` or ``duplicates`` policy."""
    for name, value, allowed in (("missing", missing, MISSING_POLICIES), ("duplicates", duplicates, DUPLICATE_POLICIES)):
        if value not in allowed:
            raise ParameterError(
                f"{name} must be one of {', '.join(allowed)}; got {describe(value)}. "
                f"Pass e.g. --{name} {allowed[0]}."
            )


def check_data_path(source: str | os.PathLike) -> None:
    """Fail early, with a clear message, on a path that cannot be a data file."""
    source = os.fsdecode(source)
    if not os.path.exists(source):
        raise DataFileError(f"no such file: {source}; check the path (relative paths start at {os.getcwd()}).")
    if os.path.isdir(source):
        raise DataFileError(f"{source} is a directory, not a data file; pass the path of a file inside it.")
    if not os.path.isfile(source):
        raise DataFileError(
            f"{source} is not a regular file (a pipe, socket or device); save the data to a file and pass its path."
        )
    if os.path.getsize(source) == 0:
        raise DataFileError(f"{source} is empty (0 bytes); pass a file that holds data.")
    _check_readable(source, DataFileError)


def check_model_path(path: str | os.PathLike) -> None:
    """Fail early on a model path that cannot be a model file (its content is `lstmae.persistence.model_file.load_model`'s to judge)."""
    name = os.fsdecode(path)
    if not os.path.exists(name):
        raise ModelFileError(f"no model file at {name!r}; train one with `lstmae fit DATA -o {name}`.")
    if os.path.isdir(name):
        raise ModelFileError(f"{name!r} is a directory, not a model file; pass the .safetensors file written by `lstmae fit`.")
    if os.path.getsize(name) == 0:
        raise ModelFileError(f"model file {name!r} is empty (0 bytes); it was not written completely. Train it again.")
    _check_readable(name, ModelFileError)


def check_fleet_path(folder: str | os.PathLike) -> None:
    """Fail early on a folder that holds no fleet (no settings file written by `lstmae fleet fit`)."""
    name = os.fsdecode(folder)
    if not os.path.isfile(os.path.join(name, FLEET_SETTINGS)):
        raise ModelFileError(
            f"no fleet at {name!r} (no {FLEET_SETTINGS}); fit one with `lstmae fleet fit DATA --series-column COLUMN -o {name}`."
        )


def _check_readable(name: str, error: type[Exception]) -> None:
    try:
        with open(name, "rb"):
            pass
    except OSError as exc:
        raise error(f"cannot read {name}: {exc.strerror or exc}; check its permissions.") from None
