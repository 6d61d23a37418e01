"""Data files -> `LoadedData`: one reader for every format the CLI accepts.

Two results exist, matching the two layouts of `lstmae.data.frames`:

* a **series**: a DataFrame of float64 value columns ``(n_timesteps, n_features)``,
  indexed by the time column (a DatetimeIndex, or numbers) or by row position;
* a **panel**: a float64 array ``(samples, timesteps, features)``, built from a
  long-format table (one row per sample and timestep, an id column naming the
  sample) or from a 3-D ``.npy`` file.

Supported files: ``.csv``, ``.tsv``, ``.csv.gz`` (delimiter detected, header row
required), ``.parquet`` / ``.pq``, ``.npy`` (never unpickled) and ``.txt`` /
``.txt.gz`` (whitespace-separated numbers, one series).

Every failure is a `DataFileError` (or a `ParameterError` for a bad argument)
with a one-line message: what was wrong, the value received, how to fix it.
Parser exceptions from pandas, numpy or pyarrow never escape.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import os
import re
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from lstmae.data.cleaning import check_policies, check_values, fill_panel, fill_series, group_rows, merge_rows
from lstmae.errors import DataFileError, LstmaeWarning, ParameterError, describe
from lstmae.inputs import check_data_path

__all__ = ["LoadedData", "SUPPORTED_EXTENSIONS", "TIME_COLUMN_NAMES", "read_data", "split_train"]

#: File name endings `read_data` understands (compared case-insensitively).
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".csv", ".tsv", ".csv.gz", ".parquet", ".pq", ".npy", ".txt", ".txt.gz",
)
#: Column names taken as the time column when none is given (case-insensitive).
TIME_COLUMN_NAMES: tuple[str, ...] = ("timestamp", "time", "date", "datetime", "ds")

# Longest suffix first so ".csv.gz" is not mistaken for an unknown ".gz".
_FORMATS: tuple[tuple[str, str], ...] = (
    (".csv.gz", "csv"), (".txt.gz", "txt"), (".csv", "csv"), (".tsv", "csv"),
    (".parquet", "parquet"), (".pq", "parquet"), (".npy", "npy"), (".txt", "txt"),
)
# Candidate delimiters; on a tie the earlier one wins.
_DELIMITERS: tuple[str, ...] = (",", "\t", ";", "|")
_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
# Enough text to see a header and a few dozen rows without reading a large file.
_SAMPLE_BYTES = 64 * 1024
_SNIFF_LINES = 50
# A double-quoted CSV field, with "" as an escaped quote; its content must not
# count as delimiters.
_QUOTED_FIELD = re.compile(r'"(?:[^"]|"")*"')
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_DIGITS = re.compile(r"\d+", re.ASCII)
# pandas < 3 parses floats with a fast converter that can miss the last bit;
# "round_trip" reads %.17g output back exactly. pandas 3 does that by default
# and deprecates the argument.
_FLOAT_PARSING: dict[str, str] = (
    {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
)


@dataclass(frozen=True, eq=False)
class LoadedData:
    """The content of a data file, in one of two layouts.

    Attributes
    ----------
    data : DataFrame or ndarray
        ``kind == "series"``: a DataFrame ``(n_timesteps, n_features)`` of float64
        columns; its index is a DatetimeIndex (or numeric Index) named after the
        time column when there is one, else a RangeIndex of row positions.
        ``kind == "panel"``: a float64 ndarray ``(samples, timesteps, features)``.
    kind : {"series", "panel"}
    ids : list or None
        Panel: the id of each sample, in order (``len(ids) == samples``).
        Series: None.
    time : pandas.Index or None
        Panel: the time labels of the ``timesteps`` axis (those of the first
        sample) when the file has a time column, else None. Series: None (the
        labels are ``data.index``).
    source : str
        The path as given, for messages.
    columns : list of str or None
        Panel read from a table: the feature (value) column names, in order.
        Otherwise None (a series' names are ``data.columns``).

    Notes
    -----
    ``eq=False``: comparing two instances field by field would compare
    DataFrames element-wise, which has no single truth value.
    """

    data: pd.DataFrame | np.ndarray
    kind: str
    ids: list | None = None
    time: pd.Index | None = None
    source: str = ""
    columns: list[str] | None = None
    id_name: str = "id"  # a panel table's id column, as outputs name it (``--id-column user``: "user")

    def __post_init__(self) -> None:
        if self.kind not in ("series", "panel"):
            raise ParameterError(
                f"LoadedData.kind must be 'series' or 'panel'; got {describe(self.kind)}. "
                "Use 'series' for a DataFrame and 'panel' for a 3-D array."
            )

    @property
    def n_rows(self) -> int:
        """Series: the number of timesteps. Panel: the number of samples."""
        return int(self.data.shape[0])


# --------------------------------------------------------------------------- #
# Public entry points
# --------------------------------------------------------------------------- #


def read_data(
    path: str | os.PathLike,
    *,
    time_column: str | None = None,
    columns: Sequence[str] | None = None,
    id_column: str | None = None,
    missing: str = "interpolate",
    duplicates: str = "error",
) -> LoadedData:
    """Read a data file into a series or a panel.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv``, ``.tsv``, ``.csv.gz``, ``.parquet``, ``.pq``, ``.npy``,
        ``.txt`` or ``.txt.gz`` file (the ending decides the format).
    time_column : str, optional
        Tables only. The column holding the time of each row. When None, a
        column named ``timestamp``, ``time``, ``date``, ``datetime`` or ``ds``
        (any case) is used if present. Values are parsed as datetimes; a
        numeric column is kept as numbers. Rows are sorted by it.
    columns : sequence of str, optional
        The value (feature) columns, in this order. Default: every numeric
        column except the time and id columns; columns that hold only text
        are skipped. For ``.npy``/``.txt`` files the columns are named
        ``"value"`` (1-D, text) or ``"0"``, ``"1"``, ... (2-D and 3-D).
    id_column : str, optional
        Tables only. Makes the result a panel: rows with the same id form one
        sample (in order of first appearance), ordered by the time column
        when there is one. Every id needs the same number of rows.
    missing : {"interpolate", "error", "keep"}, default="interpolate"
        Empty cells and NaN: filled by linear interpolation in time (a
        `LstmaeWarning` gives their number), refused, or kept as NaN. See
        `lstmae.data.cleaning`. Infinities and all-missing columns are always errors.
    duplicates : {"error", "mean", "first"}, default="error"
        Rows with the same time (within one id for a panel): refused, averaged,
        or the first one kept.

    Returns
    -------
    LoadedData
        ``kind="series"`` with a float64 DataFrame ``(n_timesteps, n_features)``,
        or ``kind="panel"`` with a float64 array ``(samples, timesteps, features)``.
        Rows are in time order (a `LstmaeWarning` says when the file's were not).

    Raises
    ------
    DataFileError
        Missing, empty, unreadable or malformed file; a column that does not
        exist or mixes numbers and text; unparseable or duplicate times; ids
        of different lengths; no numeric column.
    ParameterError
        ``time_column``/``id_column`` given for a ``.npy``/``.txt`` file, or
        contradictory arguments.
    """
    check_policies(missing, duplicates)
    source = os.fsdecode(path)
    check_data_path(source)
    kind = format_of(source)
    selected = _normalise_columns(columns)
    if kind in ("npy", "txt"):
        for argument, value in (("time_column", time_column), ("id_column", id_column)):
            if value is not None:
                raise ParameterError(
                    f"{argument}={describe(value)} applies to tables only (.csv, .tsv, .parquet), "
                    f"not to {source}; drop {argument} for .npy and .txt files."
                )
    if kind == "npy":
        return _load_npy(source, selected, missing)
    if kind == "txt":
        return _load_txt(source, selected, missing)
    frame = _read_csv(source) if kind == "csv" else _read_parquet(source)
    return table_to_loaded(frame, source, time_column, selected, id_column, missing, duplicates)


def read_collection(
    path: str | os.PathLike,
    series_column: str,
    *,
    time_column: str | None = None,
    columns: Sequence[str] | None = None,
    missing: str = "interpolate",
    duplicates: str = "error",
) -> dict[Any, LoadedData]:
    """Read a long table whose ``series_column`` splits it into independent series.

    Each series (the rows of one value of ``series_column``, in order of first
    appearance) is read as `read_data` reads a table: the time column, sorting,
    missing values and duplicate times are handled within the series, so every
    series may repeat the others' timestamps and have its own length. (A
    panel's ``id_column`` is different: each id is one equal-length sample.)

    Returns
    -------
    dict of key -> LoadedData
        Keys are the column's values (str or int), each a ``kind="series"`` LoadedData.

    Raises
    ------
    DataFileError
        As `read_data`, in the message the series' key; the column absent or with missing keys.
    ParameterError
        A ``.npy``/``.txt`` file, or ``series_column`` also named as the time column or a value column.
    """
    check_policies(missing, duplicates)
    source = os.fsdecode(path)
    check_data_path(source)
    kind = format_of(source)
    if kind in ("npy", "txt"):
        raise ParameterError(
            f"series_column={series_column!r} splits a table (.csv, .tsv, .parquet), not {source}; "
            "write the series as one long table with that column."
        )
    selected = _normalise_columns(columns)
    if series_column == time_column or (selected is not None and series_column in selected):
        raise ParameterError(
            f"column {series_column!r} is the series_column and is also the time column or a value column; "
            "it cannot be both."
        )
    frame = _read_csv(source) if kind == "csv" else _read_parquet(source)
    if series_column not in frame.columns:
        raise DataFileError(
            f"series_column {series_column!r} not found in {source}; columns found: {format_names(list(frame.columns))}; "
            "pass one of these as series_column."
        )
    labels = frame[series_column]
    if labels.isna().any():
        raise DataFileError(
            f"series_column {series_column!r} of {source} is empty in {int(labels.isna().sum())} row(s) "
            f"(the first: row {int(np.flatnonzero(labels.isna().to_numpy())[0])}); every row needs its series."
        )
    codes, keys = pd.factorize(labels, sort=False)  # keys in order of first appearance
    values = frame.drop(columns=[series_column])
    series = {}
    for code, key in enumerate(keys):
        key = key.item() if isinstance(key, np.generic) else key
        part = values.iloc[np.flatnonzero(codes == code)].reset_index(drop=True)
        series[key] = table_to_loaded(part, f"{source} ({series_column}={key!r})", time_column, selected, None, missing, duplicates)
    return series


def split_train(loaded: LoadedData, train_end: str | int | None) -> LoadedData:
    """The training prefix of ``loaded``.

    Parameters
    ----------
    loaded : LoadedData
        A series (rows are timesteps) or a panel (rows are samples).
    train_end : int, str or None
        None: everything. An int ``N`` (or a string of digits): the first ``N``
        rows, ``1 <= N <= loaded.n_rows``. Any other string (series with a
        DatetimeIndex only): a timestamp; the rows strictly before it.

    Returns
    -------
    LoadedData
        Same kind and source; ``data`` (and ``ids`` for a panel) cut to the prefix.

    Raises
    ------
    ParameterError
        A count outside ``1..n_rows``, a timestamp for a panel or for data
        without a DatetimeIndex, an unparseable timestamp, or one that leaves
        no rows (at or before the first time) or lies after the last time.
    """
    if train_end is None:
        return loaded
    count = _as_row_count(train_end)
    if count is not None:
        return _take_rows(loaded, _checked_count(count, train_end, loaded))
    if not isinstance(train_end, str):
        raise ParameterError(
            f"train_end must be a row count (int), a timestamp string or None; got {describe(train_end)} "
            f"of type {type(train_end).__name__}. Pass e.g. 1000 or '2024-01-31'."
        )
    if loaded.kind == "panel":
        raise ParameterError(
            f"train_end={train_end!r} is a timestamp, but the data is a panel of {loaded.n_rows} samples; "
            "use a sample count for panels (e.g. --train-end 100)."
        )
    return _take_rows(loaded, _rows_before(loaded, train_end))


# --------------------------------------------------------------------------- #
# Paths and formats
# --------------------------------------------------------------------------- #


def format_of(source: str) -> str:
    """``"csv"``, ``"parquet"``, ``"npy"`` or ``"txt"`` from the file name ending."""
    name = source.lower()
    for suffix, kind in _FORMATS:
        if name.endswith(suffix):
            return kind
    raise DataFileError(
        f"unsupported file type: {source}; supported endings are {', '.join(SUPPORTED_EXTENSIONS)}. "
        "Convert the file to one of them (e.g. CSV with a header row)."
    )


def _open_binary(source: str, compressed: bool) -> BinaryIO:
    """Open ``source`` for reading bytes, decompressing gzip when ``compressed``.

    Kept separate so every reader turns OS errors into one message (`read_bytes`).
    """
    return gzip.open(source, "rb") if compressed else open(source, "rb")  # noqa: SIM115


def read_bytes(source: str, limit: int | None = None) -> bytes:
    """Up to ``limit`` bytes (all when None) of the file, decompressed if ``.gz``."""
    compressed = source.lower().endswith(".gz")
    try:
        with _open_binary(source, compressed) as handle:
            return handle.read() if limit is None else handle.read(limit)
    except PermissionError:
        raise DataFileError(
            f"cannot read {source}: permission denied; check the file permissions (e.g. chmod u+r)."
        ) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataFileError(
            f"cannot decompress {source}: {_one_line(exc)}; the file is not valid gzip or is truncated."
        ) from None
    except OSError as exc:
        raise DataFileError(f"cannot read {source}: {_one_line(exc)}; check that the file is readable.") from None


# Leading bytes of formats that users hand over under a text name (or the reverse).
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b", "gzip-compressed", "name it .csv.gz or .txt.gz"),
    (b"PAR1", "a Parquet file", "name it .parquet"),
    (b"\x93NUMPY", "a NumPy array", "name it .npy"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?)", "export it as CSV (UTF-8)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook", "export it as CSV (UTF-8)"),
    (b"\xff\xfe", "UTF-16 text", "save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text", "save it as UTF-8"),
)


def _check_not_binary(raw: bytes, source: str) -> None:
    """Name the real format of a binary file read as text, or refuse NUL bytes."""
    for magic, what, fix in _MAGIC:
        if raw.startswith(magic):
            raise DataFileError(f"{source} is {what}, not UTF-8 text; {fix}.")
    nul = raw.find(b"\0")
    if nul >= 0:
        raise DataFileError(
            f"{source} holds binary data (a NUL byte at offset {nul}), not text; "
            "pass a CSV/TSV/TXT text file, or a .parquet or .npy file under its own extension."
        )


def _decode(raw: bytes, source: str) -> str:
    """UTF-8 text (a leading BOM dropped) or a DataFileError naming the bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFileError(
            f"{source} is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8 text, or pass a .parquet or .npy file."
        ) from None


def _one_line(error: BaseException | str) -> str:
    """An exception's text squeezed onto one line (parsers like multi-line messages)."""
    text = " ".join(str(error).split())
    if not text and isinstance(error, BaseException):
        return type(error).__name__
    return text


# --------------------------------------------------------------------------- #
# Readers: each returns a raw DataFrame (tables) or a finished LoadedData
# --------------------------------------------------------------------------- #


def _read_csv(source: str) -> pd.DataFrame:
    """A CSV/TSV (optionally gzip) file -> DataFrame with stripped string column names."""
    raw = read_bytes(source, _SAMPLE_BYTES)
    _check_not_binary(raw, source)
    if len(raw) == _SAMPLE_BYTES and b"\n" in raw:
        # Cut at the last newline: keeps whole lines and never splits a UTF-8 character.
        raw = raw[: raw.rfind(b"\n")]
    sample = _decode(raw, source)
    if not sample.strip():
        raise DataFileError(f"{source} is empty (only blank lines); pass a file that holds data.")
    default = "\t" if source.lower().endswith(".tsv") else ","
    delimiter = sniff_delimiter(sample, default)
    _check_header(sample, delimiter, source)
    decimal = _decimal_mark(sample, delimiter)
    try:
        frame = pd.read_csv(
            source,
            sep=delimiter,
            encoding="utf-8-sig",
            compression="gzip" if source.lower().endswith(".gz") else None,
            skipinitialspace=True,
            decimal=decimal,
            **_FLOAT_PARSING,
            # One pass over the whole column so a type is never guessed from a chunk.
            low_memory=False,
        )
    except PermissionError:
        raise DataFileError(
            f"cannot read {source}: permission denied; check the file permissions (e.g. chmod u+r)."
        ) from None
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{source} is empty (no header row); pass a file that holds data.") from None
    except UnicodeDecodeError as exc:
        raise DataFileError(
            f"{source} is not UTF-8 text ({_one_line(exc)}); save it as UTF-8 text."
        ) from None
    except Exception as exc:  # pandas raises many types; none may escape
        raise DataFileError(
            f"cannot parse {source} as {_DELIMITER_NAMES[delimiter]}-separated text: {_one_line(exc)}; "
            "check that every row has the same number of fields as the header."
        ) from None
    if len(frame) == 0:
        raise DataFileError(
            f"{source} has a header row but no data rows (columns {format_names(frame.columns)}); "
            "pass a file with at least one row of values."
        )
    frame.columns = [str(name).strip() for name in frame.columns]
    return frame


def sniff_delimiter(sample: str, default: str) -> str:
    """The delimiter among ``, tab ; |`` used by the first lines of ``sample``.

    Preferred: the one found the same (non-zero) number of times on every line,
    the most frequent such one. Otherwise the most frequent in the header line;
    ``default`` when the header holds none (a one-column file).
    """
    text = _QUOTED_FIELD.sub("", sample)
    lines = [line for line in text.splitlines()[: _SNIFF_LINES * 2] if line.strip()][:_SNIFF_LINES]
    best, best_count = None, 0
    for delimiter in _DELIMITERS:
        counts = {line.count(delimiter) for line in lines}
        if len(counts) == 1 and (count := counts.pop()) > best_count:
            best, best_count = delimiter, count
    if best is not None:
        return best
    in_header = {delimiter: lines[0].count(delimiter) for delimiter in _DELIMITERS}
    top = max(_DELIMITERS, key=in_header.__getitem__)
    return top if in_header[top] > 0 else default


_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d*,\d+(?:[eE][+-]?\d+)?\s*$")
_DECIMAL_POINT = re.compile(r"^\s*[+-]?\d*\.\d+(?:[eE][+-]?\d+)?\s*$")
_THOUSANDS = re.compile(r"^\s*[+-]?\d{1,3}(?:[,.' ]\d{3})+(?:[.,]\d+)?\s*$")


def _decimal_mark(sample: str, delimiter: str) -> str:
    """``","`` for a semicolon-separated file that writes numbers as 1,5 (spreadsheets in most of Europe), else ``"."``."""
    if delimiter != ";":
        return "."
    fields = [field for line in sample.splitlines()[1:_SNIFF_LINES] for field in line.split(delimiter)]
    commas = sum(1 for field in fields if _DECIMAL_COMMA.match(field))
    points = sum(1 for field in fields if _DECIMAL_POINT.match(field))
    return "," if commas and not points else "."


def _number_hint(value: object) -> str:
    """Advice when a 'text' cell is really a number written for people (1.234,5 or 1,234)."""
    if isinstance(value, str) and (_THOUSANDS.match(value) or _DECIMAL_COMMA.match(value)):
        return (
            f" ({describe(value)} looks like a number with a decimal comma or thousands separators: write plain "
            "numbers such as 1234.5, or separate fields with ';' to use decimal commas)"
        )
    return ""


def _check_header(sample: str, delimiter: str, source: str) -> None:
    """Reject a file whose first line is data: it would silently become column names.

    Numeric names ``0, 1, ...`` are accepted: pandas writes them as the header
    of a DataFrame without column names.
    """
    first = next(line for line in sample.splitlines() if line.strip())
    fields = [field.strip() for field in next(csv.reader([first], delimiter=delimiter))]
    numbers = [field for field in fields if _is_number(field)]
    dates = [field for field in fields if _ISO_DATE.match(field)]
    if not numbers or len(numbers) + len(dates) != len(fields):
        return
    if fields == [str(i) for i in range(len(fields))]:
        return
    raise DataFileError(
        f"{source} has no header row: its first line {describe(first)} holds values, not column names; "
        "add a first line with the column names (e.g. timestamp,value)."
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_parquet(source: str) -> pd.DataFrame:
    """A parquet file -> DataFrame; a stored (non-default) index becomes a column again."""
    read_bytes(source, 1)  # turns permission errors into the common message
    try:
        frame = pd.read_parquet(source)
    except Exception as exc:  # pyarrow raises its own types; none may escape
        raise DataFileError(
            f"cannot read {source} as parquet: {_one_line(exc)}; check that it is a valid parquet file."
        ) from None
    for position, name in enumerate(frame.columns):
        if pd.api.types.is_string_dtype(frame.iloc[:, position].dtype):
            try:  # Arrow-backed text is decoded lazily: invalid UTF-8 would fail later, deep inside pandas
                frame.iloc[:, position].astype(object)
            except Exception:
                raise DataFileError(
                    f"column {describe(str(name))} of {source} holds text that is not valid UTF-8; "
                    "the parquet file is damaged: write it again."
                ) from None
    if not isinstance(frame.index, pd.RangeIndex):
        # A DataFrame saved with a DatetimeIndex comes back with it; treat it like a column
        # so time detection and sorting work the same as for CSV.
        frame = frame.reset_index()
    frame.columns = [str(name).strip() for name in frame.columns]
    if len(frame) == 0:
        raise DataFileError(
            f"{source} has no data rows (columns {format_names(frame.columns)}); pass a file with at least one row."
        )
    return frame


def _load_npy(source: str, columns: list[str] | None, missing: str) -> LoadedData:
    """A ``.npy`` array: 1-D/2-D -> series, 3-D -> panel. Never unpickles."""
    head = read_bytes(source, 8)  # also turns permission errors into the common message
    if not head.startswith(b"\x93NUMPY") and not head.startswith(b"PK\x03\x04"):
        found = next((what for magic, what, _ in _MAGIC if head.startswith(magic)), None)
        raise DataFileError(
            f"{source} is not a .npy file ("
            + (f"it is {found}" if found else f"it starts with {describe(head)}, not the .npy signature")
            + "); save arrays with np.save(path, array)."
        )
    try:
        array = np.load(source, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataFileError(
                f"{source} holds Python objects (or is not a .npy file) and pickled data is never loaded; "
                "save a numeric array with np.save(path, array.astype(float))."
            ) from None
        raise DataFileError(f"cannot read {source} as .npy: {_one_line(exc)}; re-save it with np.save.") from None
    except Exception as exc:  # numpy raises several types on damaged files
        raise DataFileError(f"cannot read {source} as .npy: {_one_line(exc)}; re-save it with np.save.") from None
    if not isinstance(array, np.ndarray):
        # np.load returns an archive object for .npz content whatever the file name.
        if hasattr(array, "close"):
            array.close()
        raise DataFileError(
            f"{source} is an .npz archive, not a single array; save one array with np.save(path, array)."
        )
    if array.dtype.kind not in "biuf":
        raise DataFileError(
            f"{source} holds {array.dtype} values, not real numbers; save a float array "
            "(np.save(path, array.astype(float)))."
        )
    if array.ndim not in (1, 2, 3):
        raise DataFileError(
            f"{source} has {array.ndim} axes (shape {array.shape}); expected 1 (timesteps), "
            "2 (timesteps, features) or 3 (samples, timesteps, features)."
        )
    if array.size == 0:
        raise DataFileError(f"{source} holds an empty array (shape {array.shape}); save an array with data.")
    values = np.array(array, dtype=np.float64)  # a native-endian, owned copy
    names = ["value"] if values.ndim == 1 else [str(i) for i in range(values.shape[-1])]
    keep = _pick_generated(names, columns, source)
    kept = [names[i] for i in keep]
    if values.ndim == 3:
        panel = np.ascontiguousarray(values[:, :, keep])
        check_values(panel.reshape(-1, len(keep)), kept, source, missing, row="row (samples x timesteps, from 1)")
        if missing == "interpolate":
            panel = fill_panel(panel, kept, None, source)
        return LoadedData(panel, "panel", ids=list(range(panel.shape[0])), time=None, source=source)
    matrix = values.reshape(values.shape[0], -1)[:, keep]
    check_values(matrix, kept, source, missing, row="row")
    frame = pd.DataFrame(matrix, columns=kept)
    return LoadedData(_filled(frame, source, missing), "series", source=source)


def _filled(frame: pd.DataFrame, source: str, missing: str) -> pd.DataFrame:
    return fill_series(frame, source) if missing == "interpolate" else frame


def _load_txt(source: str, columns: list[str] | None, missing: str) -> LoadedData:
    """Whitespace-separated numbers (any layout, CRLF ok) -> one-column series ``"value"``."""
    raw = read_bytes(source)
    _check_not_binary(raw, source)
    text = _decode(raw, source)
    tokens = text.split()
    if not tokens:
        raise DataFileError(f"{source} is empty (only whitespace); pass a file with one number per line.")
    try:
        # Python's float parser per token, in C: exact and the same as the benchmark reader.
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        position, token = _first_non_number(tokens)
        raise DataFileError(
            f"{source} holds a non-number {describe(token)} as value {position} (1-based); "
            ".txt files hold numbers only, separated by whitespace: remove headers and text."
        ) from None
    _pick_generated(["value"], columns, source)
    check_values(values[:, None], ["value"], source, missing, row="value")
    return LoadedData(_filled(pd.DataFrame({"value": values}), source, missing), "series", source=source)


def _first_non_number(tokens: list[str]) -> tuple[int, str]:
    """1-based position and text of the first token ``float`` rejects (error path only)."""
    # The vectorised pass narrows the search to suspects; float() decides, as np.array did.
    coerced = pd.to_numeric(pd.Series(tokens, dtype=object), errors="coerce").to_numpy()
    for index in np.flatnonzero(np.isnan(coerced)):
        if not _is_number(tokens[index]):
            return int(index) + 1, tokens[index]
    for index, token in enumerate(tokens):  # to_numeric accepted something float() did not
        if not _is_number(token):
            return index + 1, token
    return 0, ""


def _pick_generated(names: list[str], columns: list[str] | None, source: str) -> list[int]:
    """Positions of ``columns`` among the generated ``names`` (all when None)."""
    if columns is None:
        return list(range(len(names)))
    missing = [name for name in columns if name not in names]
    if missing:
        raise DataFileError(
            f"column {missing[0]!r} not found in {source}; its columns are named {format_names(names)}; "
            "pass --columns with some of these names."
        )
    return [names.index(name) for name in columns]


# --------------------------------------------------------------------------- #
# Tables -> series or panel
# --------------------------------------------------------------------------- #


def _normalise_columns(columns: Sequence[str] | None) -> list[str] | None:
    """``columns`` as a list of unique strings (a lone string is one name)."""
    if columns is None:
        return None
    names = [columns] if isinstance(columns, str) else [str(name).strip() for name in columns]
    if not names:
        raise ParameterError("columns is empty; pass at least one column name, or None for every numeric column.")
    duplicated = pd.Index(names).duplicated()
    if duplicated.any():
        raise ParameterError(
            f"columns names {names[int(np.argmax(duplicated))]!r} twice ({names}); list each column once."
        )
    return names


def table_to_loaded(
    frame: pd.DataFrame,
    source: str,
    time_column: str | None,
    columns: list[str] | None,
    id_column: str | None,
    missing: str = "interpolate",
    duplicates: str = "error",
) -> LoadedData:
    """A raw table -> series or panel, following the column rules of `read_data`."""
    available = list(frame.columns)
    for argument, name in (("time_column", time_column), ("id_column", id_column)):
        if name is not None and name not in available:
            raise DataFileError(
                f"{argument} {name!r} not found in {source}; columns found: {format_names(available)}; "
                f"pass one of these as {argument}."
            )
    if time_column is not None and time_column == id_column:
        raise ParameterError(
            f"time_column and id_column are both {time_column!r}; they must be two different columns."
        )
    for argument, name in (("time_column", time_column), ("id_column", id_column)):
        if columns is not None and name is not None and name in columns:
            raise ParameterError(
                f"column {name!r} is the {argument} and is also listed in columns; "
                "remove it from columns (it cannot be a feature too)."
            )
    if time_column is None:
        time_column = detect_time_column(available, exclude={id_column, *(columns or ())})
    features = columns if columns is not None else [c for c in available if c not in (time_column, id_column)]
    absent = [name for name in features if name not in available]
    if absent:
        raise DataFileError(
            f"column {absent[0]!r} not found in {source}; columns found: {format_names(available)}; "
            "pass --columns with some of these names."
        )
    names, matrix = _value_matrix(frame, features, source, explicit=columns is not None)
    if not names:
        raise DataFileError(
            f"no numeric column in {source}; columns found: {format_names(available)}; "
            "pass --columns (columns=) naming the numeric value columns."
        )
    check_values(matrix, names, source, missing)
    labels = None if time_column is None else _time_labels(frame[time_column], time_column, source)
    if id_column is not None:
        loaded = dataclasses.replace(_panel(frame[id_column], id_column, labels, matrix, source, duplicates), columns=list(names))
        if missing == "interpolate":
            loaded = dataclasses.replace(loaded, data=fill_panel(loaded.data, names, loaded.ids, source))
        return loaded
    loaded = _series(labels, names, matrix, source, duplicates)
    return dataclasses.replace(loaded, data=_filled(loaded.data, source, missing))


def detect_time_column(available: list[str], exclude: set) -> str | None:
    """The first column (in file order) with a conventional time name."""
    for name in available:
        if name.lower() in TIME_COLUMN_NAMES and name not in exclude:
            return name
    return None


def format_names(names: Sequence[Any], limit: int = 20) -> str:
    """A list of column names for messages, cut after ``limit``."""
    shown = [str(name) for name in list(names)[:limit]]
    extra = len(names) - len(shown)
    return str(shown) if extra <= 0 else f"{shown[:-1]} ... and {extra + 1} more"


def _value_matrix(
    frame: pd.DataFrame, features: list[str], source: str, explicit: bool
) -> tuple[list[str], np.ndarray]:
    """The numeric ``features`` of ``frame`` as a float64 matrix ``(n_rows, n_used)``.

    Text-only columns are skipped unless ``explicit`` (then they are an error).
    """
    names: list[str] = []
    vectors: list[np.ndarray] = []
    for name in features:
        vector = _numeric_column(frame[name], name, source, explicit)
        if vector is not None:
            names.append(name)
            vectors.append(vector)
    if not vectors:
        return names, np.empty((len(frame), 0))
    return names, np.column_stack(vectors)


def _is_real_numeric(dtype: Any) -> bool:
    return (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
    )


def _numeric_column(column: pd.Series, name: str, source: str, explicit: bool) -> np.ndarray | None:
    """``column`` as float64 ``(n_rows,)`` with NaN for missing cells; None for a skipped text column.

    Raises
    ------
    DataFileError
        The column mixes numbers and text (names the first text cell), or it
        holds no numbers at all while ``explicit``.
    """
    if _is_real_numeric(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    present = column.notna().to_numpy()
    if pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype):
        try:
            converted = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        except Exception:  # TypeError, ValueError, or pyarrow's own types for odd Arrow-backed text
            converted = np.full(len(column), np.nan)  # odd Python objects: treat as text
        text = present & np.isnan(converted)
    else:
        # datetime, bool, category, ...: values that are not numbers even when present.
        converted, text = None, present
    if not text.any():
        return converted
    first = int(np.argmax(text))
    value = column.iloc[first]
    if isinstance(value, np.generic):
        value = value.item()  # plain Python repr in the message (True, not np.True_)
    if text.sum() < present.sum():
        raise DataFileError(
            f"column {name!r} in {source} mixes numbers and text: data row {first + 1} holds {describe(value)}"
            f"{_number_hint(value)}; "
            "fix or empty that cell, or leave the column out with --columns."
        )
    if explicit:
        raise DataFileError(
            f"column {name!r} in {source} is not numeric (dtype {column.dtype}; data row {first + 1} holds "
            f"{describe(value)}){_number_hint(value)}; pass --columns naming numeric columns only."
        )
    return None


def _time_labels(column: pd.Series, name: str, source: str) -> pd.Index:
    """The time column as an Index named ``name``: datetimes, or numbers when numeric.

    Raises
    ------
    DataFileError
        An empty cell, or a value that is not a date/time (names the first).
    """
    missing = column.isna().to_numpy()
    if missing.any():
        row = int(np.argmax(missing)) + 1
        raise DataFileError(
            f"time column {name!r} in {source} is empty at data row {row}; every row needs a time: "
            "fill it in or drop the row."
        )
    if _is_real_numeric(column.dtype):
        # Numbers stay numbers: epoch seconds vs. milliseconds vs. step counts would be a guess.
        return pd.Index(column.to_numpy(), name=name)
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return pd.DatetimeIndex(column, name=name)
    return pd.DatetimeIndex(_parse_datetimes(column, name, source), name=name)


def _parse_datetimes(column: pd.Series, name: str, source: str) -> pd.Series:
    """Text -> datetimes: the fast inferred format first, then ISO 8601, then per-value parsing."""
    last_error: Exception | None = None
    with warnings.catch_warnings():
        # "Could not infer format" warnings are noise: the fallbacks below handle it.
        warnings.simplefilter("ignore")
        for fmt in (None, "ISO8601", "mixed"):
            try:
                return pd.to_datetime(column, format=fmt)
            except (ValueError, TypeError, OverflowError) as exc:
                last_error = exc
        converted = _to_utc(column) if "mixed timezones" in str(last_error).lower() else None
        if converted is None:
            try:
                parsed = pd.to_datetime(column, format="mixed", errors="coerce")
                failed = pd.isna(parsed).to_numpy()
            except (ValueError, TypeError, OverflowError):
                failed = np.zeros(len(column), dtype=bool)
    if converted is not None:
        _warn(
            f"{source}: the times in {name!r} carry different UTC offsets (daylight saving time?); "
            "converted them all to UTC."
        )
        return converted
    if failed.any():
        row = int(np.argmax(failed))
        raise DataFileError(
            f"time column {name!r} in {source} has a value that is not a date/time: data row {row + 1} holds "
            f"{describe(column.iloc[row])}; fix it, or pass --time-column naming the right column."
        )
    raise DataFileError(
        f"cannot parse time column {name!r} in {source} as dates: {_one_line(last_error or '')}; "
        "write times in one format, e.g. ISO 8601 with one UTC offset (2024-01-31T12:00:00Z)."
    )


def _to_utc(column: pd.Series) -> pd.Series | None:
    """Times with several UTC offsets (typically daylight saving time) as UTC; None if that fails too."""
    for fmt in ("ISO8601", "mixed"):
        try:
            return pd.to_datetime(column, format=fmt, utc=True)
        except (ValueError, TypeError, OverflowError):
            continue
    return None


def _series(
    labels: pd.Index | None, names: list[str], matrix: np.ndarray, source: str, duplicates: str = "error"
) -> LoadedData:
    """Rows -> a series DataFrame, sorted by time (stably) when there is a time column."""
    if labels is None:
        return LoadedData(pd.DataFrame(matrix, columns=names), "series", source=source)
    backwards = np.diff(_sort_key(labels)) < 0
    # Described in file rows, before merging duplicates renumbers them; said after a duplicate error.
    late = int(np.argmax(backwards)) + 1 if backwards.any() else None
    order_note = None if late is None else (
        f"{source}: rows are not in time order (data row {late + 1}, {labels[late]}, is earlier than data row "
        f"{late}, {labels[late - 1]}); sorted them by {labels.name!r}."
    )
    duplicated = labels.duplicated(keep="first")
    if duplicated.any():
        again = int(np.argmax(duplicated))
        first = int(np.argmax(labels == labels[again]))
        if duplicates == "error":
            raise DataFileError(
                f"duplicate time {labels[again]} in column {labels.name!r} of {source} "
                f"(data rows {first + 1} and {again + 1}); every time must be unique: drop or aggregate "
                "duplicates, or pass --duplicates mean (average them) or --duplicates first (keep the first)."
            )
        codes, first_rows = group_rows([_sort_key(labels)])
        matrix = merge_rows(matrix, codes, first_rows, duplicates)
        labels = labels[first_rows]
        _warn(
            f"{source}: {int(duplicated.sum())} row(s) repeat an earlier time (the first: {labels[codes[again]]}, "
            f"data rows {first + 1} and {again + 1}); kept {'their mean' if duplicates == 'mean' else 'the first row'} "
            f"as --duplicates {duplicates} asked."
        )
    if order_note is not None:
        _warn(order_note)
        order = labels.argsort(kind="stable")
        labels, matrix = labels[order], matrix[order]
    return LoadedData(pd.DataFrame(matrix, index=labels, columns=names), "series", source=source)


def _warn(message: str) -> None:
    warnings.warn(message, LstmaeWarning, stacklevel=4)


def _check_unique_times(codes: np.ndarray, labels: pd.Index, id_values: pd.Series, source: str) -> None:
    """Refuse two rows of one id at the same time, naming the later row of the first such pair."""
    key = _sort_key(labels)
    order = np.lexsort((key, codes))  # by id code, then by time; stable, so file order within ties
    same = (codes[order][1:] == codes[order][:-1]) & (key[order][1:] == key[order][:-1])
    if same.any():
        pick = int(np.argmin(order[1:][same]))  # the pair whose repeat comes first in the file
        first, row = int(order[:-1][same][pick]), int(order[1:][same][pick])
        raise DataFileError(
            f"duplicate time {labels[row]} for id {id_values.iloc[row]!r} in {source} "
            f"(data rows {first + 1} and {row + 1}); "
            "each id needs unique times: drop or aggregate duplicates, or pass --duplicates mean|first."
        )


def _sort_key(labels: pd.Index) -> np.ndarray:
    """Labels as a plain numpy array that sorts in time order (int64 ns for datetimes)."""
    if isinstance(labels, pd.DatetimeIndex):
        return labels.asi8
    return labels.to_numpy()


def _panel(
    id_values: pd.Series,
    id_name: str,
    labels: pd.Index | None,
    matrix: np.ndarray,
    source: str,
    duplicates: str = "error",
) -> LoadedData:
    """Long-format rows -> ``(samples, timesteps, features)`` grouped by id.

    Samples follow the order in which ids first appear; steps follow time
    within an id (file order without a time column).
    """
    codes, uniques = pd.factorize(id_values, sort=False)
    if (codes < 0).any():
        row = int(np.argmax(codes < 0)) + 1
        raise DataFileError(
            f"id column {id_name!r} in {source} is empty at data row {row}; every row needs an id: "
            "fill it in or drop the row."
        )
    if labels is not None and duplicates != "error":
        groups, first_rows = group_rows([codes, _sort_key(labels)])
        if len(first_rows) < len(codes):
            _warn(
                f"{source}: {len(codes) - len(first_rows)} row(s) repeat the time of an earlier row of the same id; "
                f"kept {'their mean' if duplicates == 'mean' else 'the first row'} as --duplicates {duplicates} asked."
            )
            matrix = merge_rows(matrix, groups, first_rows, duplicates)
            codes, labels = codes[first_rows], labels[first_rows]
            id_values = id_values.iloc[first_rows]
    if labels is not None:
        # Before the length check: a repeated time is the likelier reason for ids of different lengths.
        _check_unique_times(codes, labels, id_values, source)
    counts = np.bincount(codes)
    different = np.flatnonzero(counts != counts[0])
    if different.size:
        bad = int(different[0])
        raise DataFileError(
            f"id {uniques[bad]!r} in {source} has {counts[bad]} rows but id {uniques[0]!r} has {counts[0]}; "
            f"every id of {id_name!r} needs the same number of rows (timesteps): pad or trim the sequences."
        )
    length = int(counts[0])
    if labels is None:
        order = np.argsort(codes, kind="stable")
        time = None
    else:
        key = _sort_key(labels)
        order = np.lexsort((key, codes))  # by id code, then by time; stable
        time = labels[order[:length]]
    panel = np.ascontiguousarray(matrix[order]).reshape(len(uniques), length, matrix.shape[1])
    return LoadedData(panel, "panel", ids=list(uniques.tolist()), time=time, source=source, id_name=str(id_name))


# --------------------------------------------------------------------------- #
# split_train helpers
# --------------------------------------------------------------------------- #


def _as_row_count(train_end: object) -> int | None:
    """An int (or a digit string) as a count; None when ``train_end`` is something else."""
    if isinstance(train_end, bool):
        return None  # True is an int, but never a meaningful row count
    if isinstance(train_end, (int, np.integer)):
        return int(train_end)
    if isinstance(train_end, str) and _DIGITS.fullmatch(train_end.strip()):
        return int(train_end.strip())
    return None


def _checked_count(count: int, train_end: object, loaded: LoadedData) -> int:
    unit = "samples" if loaded.kind == "panel" else "rows"
    if not 1 <= count <= loaded.n_rows:
        raise ParameterError(
            f"train_end={train_end!r} is outside the allowed range 1..{loaded.n_rows} "
            f"(the data has {loaded.n_rows} {unit}); pass a count of {unit} in that range."
        )
    return count


def _rows_before(loaded: LoadedData, train_end: str) -> int:
    """How many rows of a time-indexed series lie strictly before ``train_end``."""
    index = loaded.data.index
    if not isinstance(index, pd.DatetimeIndex):
        raise ParameterError(
            f"train_end={train_end!r} is a timestamp, but {loaded.source or 'the data'} has no datetime time "
            "column (rows are indexed by position or number); pass a row count instead, or a time column."
        )
    try:
        cut = pd.Timestamp(train_end)
    except (ValueError, TypeError, OverflowError):
        raise ParameterError(
            f"train_end={train_end!r} is neither a row count nor a timestamp; pass e.g. 1000 or '2024-01-31'."
        ) from None
    if (cut.tz is None) != (index.tz is None):
        if index.tz is None:
            raise ParameterError(
                f"train_end={train_end!r} has a UTC offset but the data's times have none; drop the offset."
            )
        cut = cut.tz_localize(index.tz)  # a naive bound means the data's own time zone
    first, last = index.min(), index.max()
    if not first < cut <= last:
        raise ParameterError(
            f"train_end={train_end!r} leaves no training rows or lies after the data; the data runs from "
            f"{first} to {last}: pass a time after the first and at most the last."
        )
    return int((index < cut).sum())


def _take_rows(loaded: LoadedData, count: int) -> LoadedData:
    """``loaded`` cut to its first ``count`` rows (samples for a panel)."""
    if loaded.kind == "panel":
        ids = None if loaded.ids is None else list(loaded.ids[:count])
        return dataclasses.replace(loaded, data=loaded.data[:count], ids=ids)
    return dataclasses.replace(loaded, data=loaded.data.iloc[:count])
