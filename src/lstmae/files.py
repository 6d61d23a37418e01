"""Writing what the user asked for (tables, arrays) without ever leaving a half-written file.

Every writer goes through `atomic_target`: write a temporary file in the
destination directory, flush it to disk, then rename it over the target.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from lstmae.errors import DataFileError, ParameterError

TABLE_EXTENSIONS = (".csv", ".parquet")
ARRAY_EXTENSIONS = (".npy", ".csv", ".parquet")


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``path``, on failure it is removed.

    Raises DataFileError (one line) when the destination cannot be written.
    """
    target = Path(path)
    if target.is_dir():
        raise DataFileError(f"cannot write {str(target)!r}: it is a directory; give a file name.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(handle)
    except OSError as exc:
        raise DataFileError(f"cannot write {str(target)!r}: {exc.strerror or exc}.") from None
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise DataFileError(f"cannot write {str(target)!r}: {exc.strerror or exc}.") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _extension(path: str | os.PathLike, allowed: tuple[str, ...], what: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        raise ParameterError(
            f"cannot write {what} to {str(path)!r}: unsupported extension {suffix or '(none)'!r}; "
            f"use one of {', '.join(allowed)}."
        )
    return suffix


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a DataFrame (its index is not written; make it a column first) as CSV or Parquet."""
    suffix = _extension(path, TABLE_EXTENSIONS, "a table")
    with atomic_target(path) as temporary:
        if suffix == ".csv":
            table.to_csv(temporary, index=False)
        else:
            table.to_parquet(temporary, index=False)
    return Path(path)


def write_array(array: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an ndarray as ``.npy`` (never pickled)."""
    _extension(path, (".npy",), "an array")
    with atomic_target(path) as temporary:
        with open(temporary, "wb") as stream:
            np.save(stream, np.asarray(array), allow_pickle=False)
    return Path(path)
