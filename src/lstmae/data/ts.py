"""Read a labelled panel from a ``.ts`` file (the text format of the UEA/UCR archives and aeon).

The format: ``#`` comment lines, then ``@`` header lines (``@problemName``,
``@timeStamps``, ``@missing``, ``@univariate``, ``@dimensions``,
``@equalLength``, ``@seriesLength``, ``@classLabel true a b c``), then
``@data`` and one sample per line: each dimension's comma-separated values,
dimensions separated by ``:``, the class label last when ``@classLabel true``.
``?`` (or ``NaN``) marks a missing value.

Samples of unequal length (``@equalLength false``) are resampled by linear
interpolation to one length, because lstmae's panels hold equal-length
samples; missing values are filled by linear interpolation within their
sample and dimension (the ends by the nearest value). The ``(t, v)`` layout
of ``@timeStamps true`` files is not read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from lstmae.errors import DataFileError, ParameterError

__all__ = ["LabelledPanel", "read_ts"]


@dataclass(frozen=True, eq=False)
class LabelledPanel:
    """A panel with one class label per sample.

    values : (samples, timesteps, features) float64, finite
    labels : (samples,) str, or None when the file has no class labels
    classes : the class labels the header declares, in its order (empty without labels)
    name : the problem name (``@problemName``), else the file name
    lengths : (samples,) int, each sample's length in the file (before resampling)
    """

    values: np.ndarray
    labels: np.ndarray | None
    classes: tuple[str, ...]
    name: str
    lengths: np.ndarray

    @property
    def resampled(self) -> bool:
        """Were samples of another length stretched to ``values.shape[1]``?"""
        return bool((self.lengths != self.values.shape[1]).any())


def read_ts(path: str | os.PathLike, length: int | None = None) -> LabelledPanel:
    """Read a ``.ts`` file into a `LabelledPanel`.

    Parameters
    ----------
    path : path of a ``.ts`` file
    length : int, optional
        Timesteps per sample: samples of another length are resampled to it
        (linear interpolation). Default: the longest sample's length. Pass the
        training file's length when reading its test file.

    Raises
    ------
    DataFileError
        A missing file, a header without ``@data``, a ``@timeStamps true``
        file, a line whose values are not numbers, dimensions that differ in
        length or count, or a label the header does not declare. The message
        names the line.
    """
    source = os.fspath(path)
    if length is not None and (isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 2):
        raise ParameterError(f"length must be an integer >= 2 (timesteps per sample), got {length!r}.")
    try:
        with open(source, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise DataFileError(f"no such .ts file: {source!r}; check the path.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"cannot read {source!r} as a text .ts file: {exc}.") from None
    header, first_data = _header(lines, source)
    labelled = header.get("classlabel", "false").split()[0].lower() == "true"
    classes = tuple(header.get("classlabel", "").split()[1:]) if labelled else ()
    samples: list[np.ndarray] = []
    labels: list[str] = []
    for number in range(first_data, len(lines)):
        line = lines[number].strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if labelled:
            label = parts.pop().strip()
            if classes and label not in classes:
                raise DataFileError(
                    f"{source}, line {number + 1}: class label {label!r} is not one of the header's {list(classes)}; "
                    "fix the label or the @classLabel line."
                )
            labels.append(label)
        samples.append(_sample(parts, source, number + 1))
    if not samples:
        raise DataFileError(f"{source} has no samples after @data; a .ts file needs at least one data line.")
    widths = {sample.shape[1] for sample in samples}
    if len(widths) > 1:
        raise DataFileError(f"{source}: samples have different numbers of dimensions {sorted(widths)}; every line needs the same.")
    lengths = np.array([sample.shape[0] for sample in samples])
    target = int(lengths.max()) if length is None else int(length)
    values = np.stack([_resample(sample, target) for sample in samples])  # (S, T, F)
    name = header.get("problemname", os.path.basename(source)).strip()
    return LabelledPanel(values, np.array(labels) if labelled else None, classes, name, lengths)


def _header(lines: list[str], source: str) -> tuple[dict[str, str], int]:
    """({lower-case key: rest of the line}, index of the first line after @data)."""
    header: dict[str, str] = {}
    for number, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise DataFileError(f"{source}, line {number + 1}: data before @data ({line[:40]!r}); a .ts file's header ends with @data.")
        key, _, rest = line[1:].partition(" ")
        key = key.lower()
        if key == "data":
            if header.get("timestamps", "false").lower() == "true":
                raise DataFileError(f"{source} uses @timeStamps true ((t, v) pairs), which lstmae does not read; export it without timestamps.")
            return header, number + 1
        header[key] = rest.strip()
    raise DataFileError(f"{source} has no @data line; is it a .ts file (the UEA/UCR archive format)?")


def _sample(parts: list[str], source: str, line: int) -> np.ndarray:
    """One data line's dimensions -> (length, dimensions), missing values filled."""
    columns = []
    for part in parts:
        tokens = [token.strip() for token in part.split(",")]
        try:
            columns.append(np.array([np.nan if token in ("?", "") else float(token) for token in tokens]))
        except ValueError:
            bad = next(token for token in tokens if not _is_number(token))
            raise DataFileError(f"{source}, line {line}: {bad!r} is not a number; values are numbers or ? for missing.") from None
    lengths = {len(column) for column in columns}
    if len(lengths) > 1:
        raise DataFileError(
            f"{source}, line {line}: the dimensions have different lengths {[len(c) for c in columns]}; "
            "each dimension of a sample needs as many values."
        )
    sample = np.stack(columns, axis=1)  # (length, dimensions)
    for column in sample.T:  # views: filled in place
        missing = ~np.isfinite(column)
        if missing.all():
            raise DataFileError(f"{source}, line {line}: a dimension has no value at all; drop the sample or fill it.")
        if missing.any():
            column[missing] = np.interp(np.flatnonzero(missing), np.flatnonzero(~missing), column[~missing])
    return sample


def _resample(sample: np.ndarray, length: int) -> np.ndarray:
    """(n, F) -> (length, F) by linear interpolation over the same span (unchanged when n == length)."""
    n = sample.shape[0]
    if n == length:
        return sample
    if n == 1:
        return np.repeat(sample, length, axis=0)
    where = np.linspace(0.0, n - 1.0, length)
    return np.stack([np.interp(where, np.arange(n), column) for column in sample.T], axis=1)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
