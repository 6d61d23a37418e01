"""Labelled benchmark series (UCR, NAB, SMAP/MSL, a labelled CSV) -> `LabelledSeries`.

Each series is one array ``values`` (n, d) float64 with point labels
``labels`` (n,) int8 (1 = anomaly) and ``train_end``: a detector may fit on
``values[:train_end]`` only and scores all n points. The conventions are the
benchmark's (``README.md`` of the development data, `dev_data_folder`):

- ``ucr``: files ``NNN_UCR_Anomaly_<name>_<train_end>_<start>_<end>.txt[.gz]``;
  ``labels[start:end] = 1`` (end exclusive). ``train_end`` is the one in the
  name, cut to ``start`` when the anomaly lies inside the training prefix (only
  series 203, whose training then ends at 10995).
- ``nab``: NAB's layout, ``data/<folder>/<file>.csv`` (``timestamp,value``) and
  ``labels/combined_windows.json``; a point is anomalous when its timestamp lies
  in a window (both ends inclusive); ``train_end = int(0.15 * n)``, NAB's
  probationary part. Files without a labels entry are skipped.
- ``smap``: telemanom's channels ``<chan>.npz`` (``train``, ``test``,
  ``test_labels``) beside ``labeled_anomalies.csv``; ``values = concat(train,
  test)``, ``train_end = len(train)``, labels 0 on the train part and 1 inside
  the inclusive ``anomaly_sequences`` of the test part (rows of one channel
  merged). Channels without a row in the CSV (T-10) are skipped. The group is
  the spacecraft, ``smap`` or ``msl``.
- ``labelled-csv``: a CSV with a ``label`` column (0/1), every other numeric
  column a value column (a ``timestamp``/``time``/``date`` column is ignored).
  ``train_end`` is the one given, else ``int(0.15 * n)`` as for NAB.

Names are ``<group>/<series>`` (``ucr/130_UCR_Anomaly_...``,
``nab/realTraffic/speed_t4013``, ``smap/E-2``, ``msl/C-1``), as in the
benchmark's tables. Series are loaded one at a time, lazily.
"""

from __future__ import annotations

import ast
import fnmatch
import gzip
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lstmae.errors import DataFileError, ParameterError, describe

__all__ = ["FORMATS", "LabelledSeries", "load_benchmark", "list_benchmark", "dev_data_folder"]

#: The formats `load_benchmark` reads.
FORMATS: tuple[str, ...] = ("ucr", "nab", "smap", "labelled-csv")
#: NAB's probationary fraction, also the default training share of a labelled CSV.
PROBATIONARY_FRACTION = 0.15

#: The environment variable that names the development data folder (`dev_data_folder`).
DATA_ENV = "LSTMAE_BENCH_DATA"

_UCR_NAME = re.compile(r"^(?P<stem>\d+_UCR_Anomaly_.+)_(?P<train>\d+)_(?P<start>\d+)_(?P<end>\d+)$")
_TIME_NAMES = {"timestamp", "time", "date", "datetime", "ds"}


@dataclass(frozen=True)
class LabelledSeries:
    """One labelled series of a benchmark.

    Attributes
    ----------
    name : str
        ``<group>/<series>``, e.g. ``ucr/130_UCR_Anomaly_GP711MarkerLFM5z4_4000_6527_6645``.
    group : str
        ``ucr``, ``nab``, ``smap``, ``msl`` or ``csv``.
    values : ndarray of shape (n, d), float64
        The series.
    labels : ndarray of shape (n,), int8
        1 = anomaly.
    train_end : int
        Fit on ``values[:train_end]`` only.
    """

    name: str
    group: str
    values: np.ndarray
    labels: np.ndarray
    train_end: int

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def d(self) -> int:
        return int(self.values.shape[1])


Entry = tuple[str, Callable[[], LabelledSeries]]


def dev_data_folder() -> Path:
    """Where the tests and ``bench/`` scripts look for the development benchmark data (UCR, NAB, SMAP/MSL).

    ``$LSTMAE_BENCH_DATA`` when set; else ``../shared/data`` next to the
    project's root, the checkout this file lies in (``src/lstmae/data/`` below
    it): CI lays a copy of ``shared/`` beside its clone at that place. The
    folder may not exist; callers say so. An installed (not editable) lstmae
    has no checkout around it: set the variable.
    """
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    project_root = Path(__file__).resolve().parents[3]
    return project_root.parent / "shared" / "data"


def list_benchmark(path: str | os.PathLike, format: str, *, train_end: int | None = None) -> list[Entry]:
    """The series under ``path`` as ``(name, load)`` pairs, in a stable order; nothing is read yet but the index.

    Parameters
    ----------
    path : path
        A directory (or, for ``ucr`` and ``labelled-csv``, a single file).
    format : {'ucr', 'nab', 'smap', 'labelled-csv'}
    train_end : int, optional
        Only for ``labelled-csv``: the training length (default ``int(0.15 * n)``).
    """
    if format not in FORMATS:
        raise ParameterError(f"format must be one of {', '.join(FORMATS)}; got {describe(format)}.")
    if train_end is not None and format != "labelled-csv":
        raise ParameterError(
            f"train_end={train_end} applies to --format labelled-csv only; the {format} format defines its own."
        )
    root = Path(path)
    if not root.exists():
        raise DataFileError(f"benchmark path {str(root)!r} does not exist; give the {format} data directory.")
    return {"ucr": _ucr_entries, "nab": _nab_entries, "smap": _smap_entries, "labelled-csv": _csv_entries}[format](
        root, train_end
    )


def load_benchmark(
    path: str | os.PathLike,
    format: str,
    *,
    series: str | None = None,
    limit: int | None = None,
    train_end: int | None = None,
) -> Iterator[LabelledSeries]:
    """Yield the labelled series under ``path``, one at a time.

    Parameters
    ----------
    path : path
        A directory (or, for ``ucr`` and ``labelled-csv``, a single file).
    format : {'ucr', 'nab', 'smap', 'labelled-csv'}
    series : str, optional
        A glob (``fnmatch``) on the name, with or without the ``<group>/`` prefix.
    limit : int, optional
        At most this many series (after the glob).
    train_end : int, optional
        Only for ``labelled-csv``.

    Raises
    ------
    DataFileError
        A missing path, a file of the wrong layout, or no series matching.
    """
    entries = select(list_benchmark(path, format, train_end=train_end), series=series, limit=limit, path=path)
    for _, load in entries:
        yield load()


def select(entries: list[Entry], *, series: str | None, limit: int | None, path: object = "") -> list[Entry]:
    """Filter ``(name, load)`` pairs by a name glob and a count; raise when nothing is left."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ParameterError(f"limit must be an integer >= 1, got {describe(limit)}.")
    if series is not None:
        entries = [e for e in entries if fnmatch.fnmatchcase(e[0], series) or fnmatch.fnmatchcase(e[0].split("/", 1)[1], series)]
    if not entries:
        raise DataFileError(
            f"no series found under {str(path)!r}" + (f" matching {series!r}" if series else "")
            + "; check the path, --format and --series."
        )
    return entries[:limit] if limit is not None else entries


# ----------------------------------------------------------------- UCR
def _ucr_entries(root: Path, train_end: int | None) -> list[Entry]:
    if root.is_file():
        files = [root]
    else:
        files = sorted(p for p in root.iterdir() if p.name.endswith((".txt", ".txt.gz")))
        if not files:
            raise DataFileError(f"no UCR files (*.txt, *.txt.gz) in {str(root)!r}; point to the folder of the UCR archive.")
    entries = []
    for file in files:
        stem = file.name.removesuffix(".gz").removesuffix(".txt")
        match = _UCR_NAME.match(stem)
        if match is None:
            raise DataFileError(
                f"{file.name!r} is not a labelled UCR file name; expected NNN_UCR_Anomaly_<name>_<train_end>_<start>_<end>.txt[.gz]."
            )
        entries.append((f"ucr/{stem}", _loader(_load_ucr, file, stem, match)))
    return entries


def _loader(function, *args) -> Callable[[], LabelledSeries]:
    return lambda: function(*args)


def _load_ucr(file: Path, stem: str, match: re.Match) -> LabelledSeries:
    try:
        opener = gzip.open if file.name.endswith(".gz") else open
        with opener(file, "rt") as stream:
            values = np.array(stream.read().split(), dtype=np.float64)
    except (OSError, ValueError, EOFError) as exc:
        raise DataFileError(f"cannot read UCR file {str(file)!r}: {exc}; it must hold whitespace-separated numbers.") from None
    n = values.size
    train_end, start, end = int(match["train"]), int(match["start"]), int(match["end"])
    if not 0 <= start < end <= n or not 0 < train_end < n:
        raise DataFileError(
            f"UCR file {file.name!r} names train_end={train_end}, anomaly [{start}, {end}) but holds {n} values."
        )
    labels = np.zeros(n, dtype=np.int8)
    labels[start:end] = 1
    # The training prefix must be anomaly-free: series 203's anomaly lies inside it.
    return LabelledSeries(f"ucr/{stem}", "ucr", values.reshape(-1, 1), labels, min(train_end, start))


# ----------------------------------------------------------------- NAB
def _nab_entries(root: Path, train_end: int | None) -> list[Entry]:
    windows_file = root / "labels" / "combined_windows.json"
    if not (root / "data").is_dir() or not windows_file.is_file():
        raise DataFileError(
            f"{str(root)!r} is not a NAB folder: it needs data/<folder>/<file>.csv and labels/combined_windows.json."
        )
    try:
        windows = json.loads(windows_file.read_text())
    except (OSError, ValueError) as exc:
        raise DataFileError(f"cannot read {str(windows_file)!r}: {exc}.") from None
    files = sorted((root / "data").glob("*/*.csv"))
    entries = []
    for file in files:
        key = f"{file.parent.name}/{file.name}"
        if key in windows:
            entries.append((f"nab/{key.removesuffix('.csv')}", _loader(_load_nab, file, key, windows[key])))
    return entries


def _load_nab(file: Path, key: str, windows: list) -> LabelledSeries:
    try:
        frame = pd.read_csv(file)
        stamps = pd.to_datetime(frame["timestamp"])
        values = frame["value"].to_numpy(dtype=np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise DataFileError(f"cannot read NAB file {str(file)!r} (columns timestamp,value): {exc}.") from None
    labels = np.zeros(len(frame), dtype=np.int8)
    for low, high in windows:
        labels[((stamps >= pd.Timestamp(low)) & (stamps <= pd.Timestamp(high))).to_numpy()] = 1
    n = len(frame)
    return LabelledSeries(f"nab/{key.removesuffix('.csv')}", "nab", values.reshape(-1, 1), labels,
                          int(PROBATIONARY_FRACTION * n))


# ----------------------------------------------------------------- SMAP / MSL
def _smap_entries(root: Path, train_end: int | None) -> list[Entry]:
    folder = root.parent if root.is_file() else root
    table = folder / "labeled_anomalies.csv"
    if not table.is_file():
        raise DataFileError(f"no labeled_anomalies.csv in {str(folder)!r}; point to telemanom's folder of <chan>.npz files.")
    try:
        rows = pd.read_csv(table)
        sequences: dict[str, list] = {}
        spacecraft: dict[str, str] = {}
        for chan, craft, text in zip(rows["chan_id"], rows["spacecraft"], rows["anomaly_sequences"]):
            sequences.setdefault(chan, []).extend(ast.literal_eval(text))
            spacecraft[chan] = str(craft).lower()
    except (OSError, KeyError, ValueError, SyntaxError) as exc:
        raise DataFileError(f"cannot read {str(table)!r} (chan_id, spacecraft, anomaly_sequences): {exc}.") from None
    files = [root] if root.is_file() else sorted(folder.glob("*.npz"))
    entries = []
    for file in files:
        chan = file.stem
        if chan in sequences:  # channels without a label row (T-10) are not part of the benchmark
            name = f"{spacecraft[chan]}/{chan}"
            entries.append((name, _loader(_load_smap, file, name, spacecraft[chan], sequences[chan])))
    return entries


def _load_smap(file: Path, name: str, group: str, sequences: list) -> LabelledSeries:
    try:
        with np.load(file, allow_pickle=False) as archive:
            train, test = archive["train"], archive["test"]
    except (OSError, KeyError, ValueError) as exc:
        raise DataFileError(f"cannot read channel {str(file)!r} (arrays train, test): {exc}.") from None
    values = np.concatenate([train, test]).astype(np.float64)
    labels = np.zeros(values.shape[0], dtype=np.int8)
    for start, end in sequences:
        labels[len(train) + int(start) : len(train) + int(end) + 1] = 1
    return LabelledSeries(name, group, values.reshape(values.shape[0], -1), labels, int(len(train)))


# ----------------------------------------------------------------- labelled CSV
def _csv_entries(root: Path, train_end: int | None) -> list[Entry]:
    if train_end is not None and (isinstance(train_end, bool) or not isinstance(train_end, int) or train_end < 1):
        raise ParameterError(f"train_end must be an integer >= 1, got {describe(train_end)}.")
    files = [root] if root.is_file() else sorted(p for p in root.iterdir() if p.name.endswith((".csv", ".csv.gz")))
    if not files:
        raise DataFileError(f"no .csv files in {str(root)!r}; give a CSV with value columns and a label column.")
    return [(f"csv/{file.name.removesuffix('.gz').removesuffix('.csv')}", _loader(_load_csv, file, train_end)) for file in files]


def _load_csv(file: Path, train_end: int | None) -> LabelledSeries:
    try:
        frame = pd.read_csv(file)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataFileError(f"cannot read {str(file)!r} as CSV: {str(exc).splitlines()[0] if str(exc) else exc}.") from None
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "label" not in columns:
        raise DataFileError(
            f"{file.name!r} has no 'label' column (columns: {', '.join(map(str, frame.columns[:10]))}); "
            "add one with 1 for anomalous rows and 0 otherwise."
        )
    raw_labels = pd.to_numeric(frame[columns["label"]], errors="coerce").to_numpy()
    bad = ~np.isin(raw_labels, (0, 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFileError(
            f"{file.name!r}: the label column must hold 0 or 1; row {row} has {frame[columns['label']].iloc[row]}."
        )
    value_columns = [c for c in frame.columns if c != columns["label"] and str(c).strip().lower() not in _TIME_NAMES
                     and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    if not value_columns:
        raise DataFileError(f"{file.name!r} has no numeric value column besides 'label'.")
    values = frame[value_columns].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise DataFileError(f"{file.name!r}: row {row} has a missing or non-finite value; fill or drop it first.")
    n = values.shape[0]
    cut = int(PROBATIONARY_FRACTION * n) if train_end is None else train_end
    if not 0 < cut < n:
        raise ParameterError(f"train_end must lie in [1, {n}) for {file.name!r} with {n} rows; got {cut}.")
    name = file.name.removesuffix(".gz").removesuffix(".csv")
    return LabelledSeries(f"csv/{name}", "csv", values, raw_labels.astype(np.int8), cut)
