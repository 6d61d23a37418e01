"""A long table of many series -> a Parquet dataset partitioned by series, without loading the table.

`stage` streams a CSV (``pyarrow.csv.open_csv``), a Parquet file (row group
by row group), or a DataFrame into ``<folder>/<series_column>=<name>/part-*.parquet``
(Hive layout, names percent-encoded), counting each series' rows on the way;
memory stays at a few batches whatever the table's size. A folder already in
that layout is used as it is. Afterwards each worker reads only its own
series' files (`read_series`), so no process ever holds the whole table.

Series names are text: a numeric series column (sensor 7) gives the name "7".
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from lstmae.data.readers import detect_time_column, format_names, format_of, read_bytes, sniff_delimiter
from lstmae.inputs import check_data_path
from lstmae.errors import DataFileError, ParameterError, describe

#: Rows per streamed batch: large enough for fast I/O, small enough that a few fit in memory.
BATCH_ROWS = 1 << 16
#: Bytes of CSV parsed per block.
CSV_BLOCK_BYTES = 8 << 20
#: Partition files open at once while staging (an unsorted table of many series opens new ones as needed).
MAX_OPEN_FILES = 256


@dataclass(frozen=True)
class Staged:
    """A dataset partitioned by series: where each series' files are, and the table's columns.

    Attributes
    ----------
    folder : Path
    series_column : str
    files : dict of series name -> list of str
        The Parquet files holding that series' rows (the series column is in the folder name, not in them).
    rows : dict of series name -> int
        Rows per series (counted while staging; None for a folder given as it is).
    columns : list of str
        The table's other columns, in file order.
    """
    folder: Path
    series_column: str
    files: dict[str, list[str]]
    rows: dict[str, int | None]
    columns: list[str]


def partition_name(series_column: str, name: str) -> str:
    """The folder of one series in the Hive layout: ``column=percent-encoded name``."""
    return f"{series_column}={quote(name, safe='')}"


def stage(data: Any, series_column: str, folder: str | os.PathLike) -> Staged:
    """Write ``data`` (a .csv/.tsv/.csv.gz or .parquet path, or a DataFrame) partitioned by ``series_column`` to ``folder``.

    A directory ``data`` already in the Hive layout (``series_column=NAME/*.parquet``,
    as written here or by Spark/pyarrow) is not copied. The new dataset replaces
    ``folder`` only once it is complete.

    Raises
    ------
    DataFileError
        Missing or unreadable file, no column ``series_column``, empty cells in it,
        a value that does not fit its column's type.
    """
    if not isinstance(series_column, str) or not series_column:
        raise ParameterError(f"series_column must name the column that says which series a row belongs to, got {describe(series_column)}.")
    if not isinstance(data, pd.DataFrame) and Path(data).is_dir():
        return discover(Path(data), series_column)
    source = "the DataFrame" if isinstance(data, pd.DataFrame) else os.fsdecode(data)
    reader = _batches(data, series_column)
    rows: dict[str, int] = {}
    target = Path(folder)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        files = _write_partitions(_counting(reader, series_column, rows, source), reader.schema, series_column, temporary)
    except pa.ArrowInvalid as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        raise DataFileError(f"cannot read {source}: {_arrow_message(exc)}; fix that value, or name the value columns with --columns.") from None
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if not rows:
        shutil.rmtree(temporary, ignore_errors=True)
        raise DataFileError(f"{source} has no data rows; pass a table with a header and one row per series and timestep.")
    _replace_folder(temporary, target)
    moved = {name: [str(target / Path(path).relative_to(temporary)) for path in paths] for name, paths in sorted(files.items())}
    columns = [name for name in reader.schema.names if name != series_column]
    return Staged(target, series_column, moved, {name: rows[name] for name in moved}, columns)


def _write_partitions(batches: Any, schema: Any, series_column: str, folder: Path) -> dict[str, list[str]]:
    """Append each batch's rows to their series' files, in order; at most MAX_OPEN_FILES open at once.

    A series whose file was closed to make room continues in a new file (part-1, part-2, ...).
    Each write is one Parquet row group, flushed at once: memory holds one batch, whatever the table.
    """
    position = schema.get_field_index(series_column)
    values_schema = schema.remove(position)
    folder.mkdir(parents=True)
    writers: OrderedDict[str, Any] = OrderedDict()
    files: dict[str, list[str]] = {}
    try:
        for batch in batches:
            encoded = pc.dictionary_encode(batch.column(position))
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            names = encoded.dictionary.to_pylist()
            order = np.argsort(codes, kind="stable")  # rows of one series together, in file order
            starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
            values = pa.Table.from_batches([batch]).remove_column(position)
            for start, end in zip(starts, [*starts[1:], len(order)]):
                name = names[codes[order[start]]]
                writer = writers.pop(name, None)
                if writer is None:
                    if len(writers) >= MAX_OPEN_FILES:
                        writers.popitem(last=False)[1].close()
                    paths = files.setdefault(name, [])
                    path = folder / partition_name(series_column, name) / f"part-{len(paths)}.parquet"
                    path.parent.mkdir(exist_ok=True)
                    # No dictionary encoding: each open writer would keep a growing dictionary per column
                    # (measured: 4 MB per writer of float values, 700 MB for 100 open series).
                    writer = pq.ParquetWriter(path, values_schema, use_dictionary=False)
                    paths.append(str(path))
                writers[name] = writer  # most recently used last
                writer.write_table(values.take(pa.array(order[start:end])))
    finally:
        for writer in writers.values():
            writer.close()
    return files


def discover(folder: Path, series_column: str) -> Staged:
    """The series of a dataset already partitioned by ``series_column`` (Hive layout)."""
    prefix = f"{series_column}="
    if not any(entry.name.startswith(prefix) for entry in os.scandir(folder)):
        raise DataFileError(
            f"{folder} is a directory without {prefix}NAME folders; pass a .csv/.parquet file, "
            f"or a dataset partitioned by {series_column!r} (Hive layout)."
        )
    dataset = ds.dataset(folder, format="parquet", partitioning=_layout(series_column))
    files: dict[str, list[str]] = {}
    for fragment in dataset.get_fragments():
        name = ds.get_partition_keys(fragment.partition_expression).get(series_column)
        if name is not None:
            files.setdefault(str(name), []).append(fragment.path)
    columns = [name for name in dataset.schema.names if name != series_column]
    return Staged(folder, series_column, {name: sorted(paths, key=_file_order) for name, paths in sorted(files.items())},
                  {name: None for name in files}, columns)


def _file_order(path: str) -> tuple:
    """part-2 before part-10: the order `stage` wrote them in (other writers' names: by name)."""
    stem = Path(path).name.split(".")[0]
    number = stem.rpartition("-")[2]
    return (0, int(number), stem) if number.isdigit() else (1, 0, stem)


def read_series(files: list[str]) -> pd.DataFrame:
    """One series' rows (every column but the series column), from its files only."""
    tables = [pq.read_table(path) for path in files]
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    return table.to_pandas()


def _layout(series_column: str) -> Any:

    return ds.partitioning(pa.schema([(series_column, pa.string())]), flavor="hive")


def _batches(data: Any, series_column: str) -> Any:
    """A RecordBatchReader over ``data`` whose series column is text."""
    if isinstance(data, pd.DataFrame):
        named = any(name is not None for name in data.index.names)  # a time index is a column; row labels are not
        frame = data.reset_index() if named else data.reset_index(drop=True)
        _check_column(series_column, [str(c) for c in frame.columns], "the DataFrame")
        table = pa.Table.from_pandas(frame, preserve_index=False)
        return _text_series(table.to_reader(BATCH_ROWS), series_column)

    source = os.fsdecode(data)
    check_data_path(source)
    kind = format_of(source)
    try:
        if kind == "csv":
            return _csv_reader(source, series_column)
        if kind == "parquet":

            parquet = pq.ParquetFile(source)
            _check_column(series_column, parquet.schema_arrow.names, source)
            return _text_series(
                pa.RecordBatchReader.from_batches(parquet.schema_arrow, parquet.iter_batches(BATCH_ROWS)), series_column
            )
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFileError(f"cannot read {source}: {_arrow_message(exc)}.") from None
    raise DataFileError(f"{source}: a fleet reads .csv, .tsv, .csv.gz or .parquet tables (one row per series and timestep), not {kind} files.")


def _csv_reader(source: str, series_column: str) -> Any:
    """Stream a CSV; whole-number columns are read as floats and the time column as text (lstmae parses it)."""
    sample = read_bytes(source, 64 * 1024).decode("utf-8", errors="replace")
    delimiter = sniff_delimiter(sample, "\t" if source.lower().endswith(".tsv") else ",")
    parse = csv.ParseOptions(delimiter=delimiter)
    read = csv.ReadOptions(block_size=CSV_BLOCK_BYTES)
    first = csv.open_csv(source, read_options=read, parse_options=parse)
    names = first.schema.names
    _check_column(series_column, names, source)
    time_column = detect_time_column(names, exclude={series_column})
    types = {series_column: pa.string()}
    for field in first.schema:
        if field.name in types:
            continue
        if field.name == time_column or pa.types.is_timestamp(field.type) or pa.types.is_date(field.type):
            types[field.name] = pa.string()
        elif pa.types.is_integer(field.type) or pa.types.is_null(field.type):
            types[field.name] = pa.float64()  # a later block may hold 1.5, or the first had only empty cells
    first.close()
    return csv.open_csv(source, read_options=read, parse_options=parse, convert_options=csv.ConvertOptions(column_types=types))


def _text_series(reader: Any, series_column: str) -> Any:
    """``reader`` with its series column cast to text, batch by batch."""
    position = reader.schema.get_field_index(series_column)
    schema = reader.schema.set(position, pa.field(series_column, pa.string()))

    def cast() -> Any:
        for batch in reader:
            columns = list(batch.columns)
            columns[position] = columns[position].cast(pa.string())
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, cast())


def _counting(reader: Any, series_column: str, rows: dict[str, int], source: str) -> Any:
    """The batches of ``reader``, unchanged, adding each series' row count to ``rows``."""
    seen = 0
    for batch in reader:
        column = batch.column(series_column)
        if column.null_count:
            row = seen + int(pc.index(pc.is_null(column), True).as_py()) + 1
            raise DataFileError(
                f"{source}: the series column {series_column!r} is empty in data row {row}; "
                "every row must name its series."
            )
        for item in pc.value_counts(column).to_pylist():
            rows[item["values"]] = rows.get(item["values"], 0) + item["counts"]
        seen += batch.num_rows
        yield batch


def _check_column(series_column: str, names: list[str], source: str) -> None:
    if series_column not in names:

        raise DataFileError(
            f"series column {series_column!r} not found in {source}; columns found: {format_names(names)}; "
            "pass --series-column naming the column that says which series a row belongs to."
        )


def _replace_folder(new: Path, target: Path) -> None:
    """Put the complete folder ``new`` at ``target``; the old one (if any) is removed after."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{secrets.token_hex(6)}.old")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _arrow_message(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
