"""Writing what the user asked for (tables, arrays) without ever leaving a half-written file.

Every writer goes through `atomic_target`: write a temporary file in the
destination directory, flush it to disk, then rename it over the target.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lstmae.errors import DataFileError, ParameterError

if TYPE_CHECKING:  # pandas only in annotations: the command line checks output paths before importing it
    import pandas as pd

TABLE_EXTENSIONS = (".csv", ".parquet")
ARRAY_EXTENSIONS = (".npy", ".csv", ".parquet")


#: Where launchers put a process's rank: torchrun (RANK, LOCAL_RANK), Lightning's own launcher
#: (LOCAL_RANK and NODE_RANK in the processes it starts), SLURM (SLURM_PROCID).
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def is_rank_zero() -> bool:
    """True unless this process is one of several training processes (DDP) and not the first.

    Under DDP every process ends training with the same model; only rank 0
    writes it, so that two processes never race on one file. Read from the
    process group when one is running, else from the launchers' variables.
    """
    distributed = getattr(sys.modules.get("torch"), "distributed", None)  # torch is never imported just for this
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        return distributed.get_rank() == 0
    return all(os.environ.get(name, "0").strip() in ("", "0") for name in RANK_VARIABLES)


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike, what: str = "") -> Iterator[Path]:
    """Yield a fresh temporary path; on success it replaces ``path``, on failure it is removed.

    The temporary file lies in the destination's directory (so the rename is
    atomic) and is created with mode 0o666 so that the user's umask, not this
    function, decides the final permissions. ``path`` is therefore either its
    old content or the complete new one, never a partial write.

    Raises DataFileError (one line) when the destination cannot be written;
    ``what`` names the thing written in that message ("the model", ...).
    """
    target = Path(path)
    label = f"{what} to {str(target)!r}" if what else repr(str(target))
    if target.is_dir():
        raise DataFileError(f"cannot write {label}: it is a directory; give a file name.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = create_temporary(target)
    except OSError as exc:
        raise DataFileError(f"cannot write {label}: {exc.strerror or exc}.") from None
    try:
        yield temporary
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise DataFileError(f"cannot write {label}: {exc.strerror or exc}.") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def checkpoint_path(model_path: str | os.PathLike) -> Path:
    """Where `lstmae fit -o MODEL` keeps its checkpoint: ``MODEL.ckpt`` next to it."""
    model = Path(model_path)
    return model.with_name(model.name + ".ckpt")


def create_temporary(target: Path) -> Path:
    while True:
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return candidate
        except FileExistsError:
            continue


def check_extension(path: str | os.PathLike, allowed: tuple[str, ...], what: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        raise ParameterError(
            f"cannot write {what} to {str(path)!r}: unsupported extension {suffix or '(none)'!r}; "
            f"use one of {', '.join(allowed)}."
        )
    return suffix


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a DataFrame (its index is not written; make it a column first) as CSV or Parquet."""
    suffix = check_extension(path, TABLE_EXTENSIONS, "a table")
    with atomic_target(path) as temporary:
        if suffix == ".csv":
            table.to_csv(temporary, index=False)
        else:
            table.to_parquet(temporary, index=False)
    return Path(path)


def write_array(array: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an ndarray as ``.npy`` (never pickled)."""
    check_extension(path, (".npy",), "an array")
    with atomic_target(path) as temporary:
        with open(temporary, "wb") as stream:
            np.save(stream, np.asarray(array), allow_pickle=False)
    return Path(path)
