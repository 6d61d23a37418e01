"""A fleet: one `LSTMAutoencoder` per series of a long table, fitted and scored many at once.

    from lstmae import LSTMAutoencoder
    from lstmae.fleet.runner import Fleet
    fleet = Fleet(LSTMAutoencoder(epochs=5, random_state=0), engine="local", workers=2)
    fleet.fit("sensors.csv", series_column="sensor", output="models/")
    scores = fleet.anomaly_score("sensors.csv")      # long table: sensor, time, score, anomaly
    intervals = fleet.detect("sensors.csv")          # long table: sensor, start, end, ...

The driver streams the table once into a dataset partitioned by series
(`lstmae.data.partitioned`), then hands one job per series to an engine
(`lstmae.fleet.engines`: local processes or Ray tasks); each worker reads only its
series' files, fits or scores with torch on one thread, and writes its own
files. Results are therefore the same, bit for bit on a CPU, whatever the
engine and the number of workers.

The fleet's folder (``output``)::

    fleet.json                    format, series column, read options, estimator parameters
    manifest.parquet              one row per series: series, status, error, rows, seconds,
                                  threshold, model, model_sha256, attempts, warnings
    models/<name>.safetensors     one model per series (name percent-encoded)
    _input/<column>=<name>/*.parquet  the staged table, while the run lasts (workers read it)

Every file is written atomically. The manifest is rewritten every few seconds,
at the end, and when the fit is interrupted (Ctrl-C: series in progress are
"pending"); with ``resume=True`` a series whose model file is present, intact
and fitted with the same settings is not fitted again. A series that cannot be
fitted (too short, all missing) is "failed" with a one-line reason, and the
others go on; a worker that dies (``kill -9``) costs its series one retry.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lstmae.data.cleaning import check_policies
from lstmae.data.partitioned import Staged, partition_name, read_series, stage
from lstmae.data.readers import detect_time_column, format_names, split_train, table_to_loaded
from lstmae.errors import DataFileError, LstmaeError, ModelFileError, NotFittedError, ParameterError, describe
from lstmae.estimator import LSTMAutoencoder
from lstmae.fleet.engines import Outcome, check_engine, close, make_engine
from lstmae.inputs import FLEET_SETTINGS, check_fleet_path
from lstmae.params import jsonable_params, validate
from lstmae.persistence.atomic import atomic_target, write_table
from lstmae.persistence.model_file import load_model

FORMAT_NAME = "lstmae.fleet"
FORMAT_VERSION = 1
MANIFEST = "manifest.parquet"
#: A folder of scores is a plain dataset partitioned by series: readers skip names starting with "_".
SCORES_MANIFEST = "_manifest.parquet"
STAGED = "_input"
SETTINGS = FLEET_SETTINGS
MANIFEST_COLUMNS = ("series", "status", "error", "rows", "seconds", "threshold", "model", "model_sha256", "attempts", "warnings")
#: Seconds between two rewrites of the manifest during a fit.
MANIFEST_EVERY = 10.0
#: A test hook, a comma-separated list: ``NAME`` makes the worker fitting series NAME kill itself
#: (SIGKILL) each time; ``NAME@PATH`` only while PATH does not exist (it creates it first), so the retry succeeds.
KILL_HOOK = "LSTMAE_FLEET_TEST_KILL"


class Fleet:
    """One model per series, fitted and scored in parallel.

    Parameters
    ----------
    estimator : LSTMAutoencoder, optional
        The settings every series' model is fitted with (it is not fitted itself).
        Give ``random_state`` for reproducible models. Default: ``LSTMAutoencoder()``.
    engine : {"local", "ray"}, default="local"
        "local": a pool of ``workers`` processes on this machine. "ray": Ray tasks
        (``pip install lstmae[ray]``), on a local Ray or the cluster at ``address``.
    workers : int or None, default=None
        Series fitted at once (one process and one torch thread each). None: one
        per CPU (local), the cluster's CPUs (ray).
    address : str or None, default=None
        Ray only: "auto" (the cluster started with ``ray start``) or "host:port".
        None starts a local Ray of ``workers`` CPUs for the run.
    verbose : int, default=1
        1: a progress bar (series done / total, failures, ETA) on a terminal.

    Attributes
    ----------
    folder_ : Path
        Where the models and the manifest are.
    manifest_ : DataFrame
        One row per series (see the module docstring); ``status`` is "ok", "failed" or "pending".
    series_column_ : str
    failed_ : list of str
        Series whose status is not "ok".
    """

    def __init__(self, estimator: Any = None, *, engine: str = "local", workers: int | None = None,
                 address: str | None = None, verbose: int = 1) -> None:
        self.estimator = estimator
        self.engine = engine
        self.workers = workers
        self.address = address
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, *, series_column: str, output: str | os.PathLike | None = None,
            time_column: str | None = None, columns: list[str] | None = None,
            missing: str = "interpolate", duplicates: str = "error", train_end: int | str | None = None,
            resume: bool = False) -> "Fleet":
        """Fit one model per series of the long table ``X``.

        Parameters
        ----------
        X : path of a .csv/.tsv/.csv.gz/.parquet table, a folder partitioned by
            ``series_column``, or a DataFrame; one row per series and timestep
        series_column : str
            The column naming each row's series.
        output : path, optional
            The fleet's folder (created). Default: a temporary folder, removed
            with this object unless `save` copies it.
        time_column, columns, missing, duplicates
            How each series is read, as in `lstmae.data.readers.read_data`.
        train_end : int or str, optional
            Fit each series on its rows before this row count or timestamp
            (`lstmae.data.readers.split_train`); scoring covers all rows. A series
            shorter than that fails with the reason.
        resume : bool, default=False
            Keep the valid models already in ``output`` (same settings) and fit the rest.

        Returns
        -------
        self. Series that failed are in ``failed_`` and in the manifest, with their reason.
        """

        check_policies(missing, duplicates)
        params = self._params()
        check_engine(self.engine, self.workers, self.address)
        folder = self._folder(output)
        settings = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "series_column": series_column,
                    "time_column": time_column, "columns": None if columns is None else list(columns),
                    "missing": missing, "duplicates": duplicates, "train_end": train_end, "params": params}
        if resume:
            _check_resumable(folder, settings)
        with contextlib.ExitStack() as stack:
            engine = make_engine(self.engine, self.workers, self.address)
            stack.callback(close, engine)
            staged = stack.enter_context(_staged(X, series_column, folder))
            settings["time_column"] = _time_column(staged, time_column, columns)
            _write_json(folder / SETTINGS, settings)
            (folder / "models").mkdir(exist_ok=True)
            _remove_leftovers(folder / "models")
            rows = {name: _row(name, staged.rows[name], _model_file(name)) for name in staged.files}
            jobs = ((name, {"task": "fit", "series": name, "files": files, "settings": settings,
                            "model": str(folder / _model_file(name)), "resume": resume})
                    for name, files in staged.files.items())
            # Set before the run: after Ctrl-C the fleet still says where its models and manifest are.
            self.folder_, self.series_column_, self.settings_ = folder, series_column, settings
            self._run(engine, "fit", jobs, rows, folder / MANIFEST)
        return self

    # -------------------------------------------------------------- scoring
    def write_scores(self, X: Any, output: str | os.PathLike) -> pd.DataFrame:
        """Score every series of ``X`` with its model; write ``output/<column>=<name>/part-0.parquet``.

        Each file holds the series' time (or row position) column, ``score`` and
        ``anomaly`` (0/1 against the model's threshold). ``output/_manifest.parquet``
        and the returned table say, per series: status, error, rows, seconds.
        Series without a model ("failed" in the fit) are "failed" here too.
        """
        self._check_fitted()
        folder = Path(output)
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            engine = make_engine(self.engine, self.workers, self.address)
            stack.callback(close, engine)
            staged = stack.enter_context(_staged(X, self.series_column_, folder))
            return self._apply(engine, "score", staged, folder, folder / SCORES_MANIFEST)

    def anomaly_score(self, X: Any) -> pd.DataFrame:
        """Scores of every series as one long table: series column, time (or ``index``), ``score``, ``anomaly``.

        Series that could not be scored are left out (see `write_scores` for their reasons).
        For tables too large for memory, use `write_scores`.
        """
        self._check_fitted()
        with self._scratch() as scratch:
            manifest = self.write_scores(X, scratch)
            parts = [_read_scores(scratch, self.series_column_, name) for name in manifest["series"][manifest["status"] == "ok"]]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[self.series_column_, "score", "anomaly"])

    def detect(self, X: Any, *, threshold: float | None = None, min_gap: int | None = None) -> pd.DataFrame:
        """Anomalous intervals of every series: the series column, then `LSTMAutoencoder.detect`'s columns.

        ``threshold`` overrides every model's own threshold; series that could not
        be scored are in ``detect_manifest_``.
        """
        self._check_fitted()
        intervals: list[pd.DataFrame] = []
        with contextlib.ExitStack() as stack:
            engine = make_engine(self.engine, self.workers, self.address)
            stack.callback(close, engine)
            scratch = Path(stack.enter_context(self._scratch()))
            staged = stack.enter_context(_staged(X, self.series_column_, scratch))
            self.detect_manifest_ = self._apply(engine, "detect", staged, scratch, None,
                                                {"threshold": threshold, "min_gap": min_gap}, intervals)
        found = [frame for frame in intervals if len(frame)]
        if not found:
            return intervals[0].iloc[:0] if intervals else pd.DataFrame(columns=[self.series_column_, "start", "end"])
        return pd.concat(found, ignore_index=True)

    # ---------------------------------------------------------------- files
    def save(self, path: str | os.PathLike) -> Path:
        """Copy the fleet (settings, manifest, models; not the staged input) to the folder ``path``. Atomic per file."""

        self._check_fitted()
        target = Path(path)
        if target.resolve() == self.folder_.resolve():
            return target
        for relative in [SETTINGS, MANIFEST, *[m for m in self.manifest_["model"][self.manifest_["status"] == "ok"]]]:
            with atomic_target(target / relative, "the fleet") as temporary:
                shutil.copyfile(self.folder_ / relative, temporary)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike, *, engine: str = "local", workers: int | None = None,
             address: str | None = None, verbose: int = 1) -> "Fleet":
        """A fleet from the folder written by `fit` (or `save`), to score with ``engine``."""

        folder = Path(path)
        settings = _read_settings(folder)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise ModelFileError(f"{str(folder)!r} has {SETTINGS} but no {MANIFEST}; fit the fleet again (or with --resume).")
        from lstmae.estimator import LSTMAutoencoder  # after the folder's checks: a wrong path is answered without torch

        fleet = cls(LSTMAutoencoder(**settings["params"]), engine=engine, workers=workers, address=address, verbose=verbose)
        fleet.folder_, fleet.series_column_, fleet.settings_ = folder, settings["series_column"], settings
        fleet.manifest_ = pd.read_parquet(manifest_path)
        return fleet

    @property
    def failed_(self) -> list[str]:
        self._check_fitted()
        return [str(s) for s in self.manifest_["series"][self.manifest_["status"] != "ok"]]

    # ------------------------------------------------------------- helpers
    def _params(self) -> dict[str, Any]:

        estimator = LSTMAutoencoder() if self.estimator is None else self.estimator
        if not isinstance(estimator, LSTMAutoencoder):
            raise ParameterError(f"estimator must be an LSTMAutoencoder (its settings are each series' model), got {describe(estimator)}.")
        if estimator.trainer_kwargs:
            raise ParameterError("a fleet cannot pass trainer_kwargs (Lightning objects) to its workers; leave it None.")
        validate(estimator.get_params())
        return {**jsonable_params(estimator.get_params()), "verbose": 0}

    def _folder(self, output: str | os.PathLike | None) -> Path:
        if output is not None:
            folder = Path(output)
            if folder.exists() and not folder.is_dir():
                raise ParameterError(f"output {str(folder)!r} is a file; a fleet needs a folder (it holds one model per series).")
            folder.mkdir(parents=True, exist_ok=True)
            return folder
        folder = Path(tempfile.mkdtemp(prefix="lstmae-fleet-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, folder, True)
        return folder

    def _scratch(self) -> Any:
        """A temporary folder inside the fleet's own (which a Ray cluster's workers can see)."""
        return tempfile.TemporaryDirectory(prefix=".work-", dir=self.folder_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "manifest_"):
            raise NotFittedError("this Fleet is not fitted; call fit(X, series_column=...) or Fleet.load(folder) first.")

    def _apply(self, engine: Any, task: str, staged: Staged, folder: Path, manifest_path: Path | None,
               options: dict | None = None, collected: list | None = None) -> pd.DataFrame:
        """Run ``task`` ("score" or "detect") on every series of ``staged`` that has a model."""
        models = dict(zip(self.manifest_["series"], self.manifest_["model"]))
        ok = set(self.manifest_["series"][self.manifest_["status"] == "ok"])
        fit_errors = {name: error for name, error in zip(self.manifest_["series"], self.manifest_["error"]) if isinstance(error, str)}
        rows: dict[str, dict] = {}
        for name in staged.files:
            rows[name] = _row(name, staged.rows[name], models.get(name))
            if name not in ok:
                reason = f" ({fit_errors[name]})" if name in fit_errors else ""
                why = f"no model: its fit failed{reason}" if name in models else "no model: the series was not in the fitted data"
                rows[name].update(status="failed", error=why)
        jobs = ((name, {"task": task, "series": name, "files": staged.files[name], "settings": self.settings_,
                        "model": str(self.folder_ / models[name]), **(options or {}),
                        "scores": str(folder / partition_name(self.series_column_, name) / "part-0.parquet")})
                for name in staged.files if name in ok)

        def keep(name: str, result: dict) -> None:
            if collected is not None and result.get("intervals") is not None:
                frame = pd.DataFrame(result["intervals"])
                frame.insert(0, self.series_column_, name)
                collected.append(frame)

        return self._run(engine, task, jobs, rows, manifest_path, keep)

    def _run(self, engine: Any, task: str, jobs: Iterable[tuple[str, dict]], rows: dict[str, dict],
             manifest_path: Path | None, keep: Callable[[str, dict], None] | None = None) -> pd.DataFrame:
        """Run ``jobs`` on ``engine``, filling ``rows``; the manifest is written as it goes and at the end."""
        to_do = sum(1 for row in rows.values() if row["status"] == "pending")
        progress = _Progress(task, to_do, self.verbose)
        written = time.monotonic()
        try:
            with progress:
                for outcome in engine.map("lstmae.fleet.runner:run_job", jobs):
                    _record(rows[outcome.key], outcome)
                    if keep is not None and outcome.result is not None:
                        keep(outcome.key, outcome.result)
                    progress.advance(rows[outcome.key]["status"] != "ok")
                    if manifest_path is not None and time.monotonic() - written > MANIFEST_EVERY:
                        _write_manifest(rows, manifest_path)
                        written = time.monotonic()
        finally:  # also on Ctrl-C: what finished is recorded, the rest stays "pending"
            manifest = _manifest(rows)
            if manifest_path is not None:
                _write_manifest(rows, manifest_path)
            if task == "fit":
                self.manifest_ = manifest
        return manifest


# ------------------------------------------------------------ the manifest
def _row(name: str, rows: int | None, model: str | None) -> dict[str, Any]:
    return {"series": name, "status": "pending", "error": None, "rows": rows, "seconds": None, "threshold": None,
            "model": model, "model_sha256": None, "attempts": 0, "warnings": None}


def _record(row: dict[str, Any], outcome: Outcome) -> None:
    row["attempts"] = outcome.attempts
    if outcome.result is None:
        row.update(status="failed", error=outcome.error)
        return
    for key in ("status", "error", "rows", "seconds", "threshold", "model_sha256", "warnings"):
        if key in outcome.result:
            row[key] = outcome.result[key]


def _manifest(rows: dict[str, dict]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows.values()), columns=list(MANIFEST_COLUMNS))
    for column in ("rows", "attempts"):
        frame[column] = frame[column].astype("Int64")
    for column in ("seconds", "threshold"):
        frame[column] = frame[column].astype("float64")
    for column in ("series", "status", "error", "model", "model_sha256", "warnings"):
        frame[column] = frame[column].astype("string")
    return frame


def _write_manifest(rows: dict[str, dict], path: Path) -> None:

    write_table(_manifest(rows), path)


def warning_counts(manifest: pd.DataFrame) -> dict[str, int]:
    """{kind of warning: how many series had it}, most frequent first; a warning's kind is its text before
    the first colon ("mean-collapse", "identity-like model", ...), as the manifest's ``warnings`` column holds them."""
    counts: dict[str, int] = {}
    for notes in manifest["warnings"].dropna():
        for kind in sorted({note.split(":", 1)[0].strip() for note in str(notes).split("; ") if note.strip()}):
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def summary(manifest: pd.DataFrame, what: str = "fitted") -> str:
    """One line: how many series were done, how many failed (and the first few reasons' series)."""
    total = len(manifest)
    failed = manifest[manifest["status"] != "ok"]
    if failed.empty:
        return f"all {total} series {what}"
    names = ", ".join(repr(str(name)) for name in failed["series"][:5]) + (", ..." if len(failed) > 5 else "")
    return f"{total - len(failed)} of {total} series {what}, {len(failed)} failed or not done ({names}); reasons in the manifest"


# ------------------------------------------------------------ settings files
def _write_json(path: Path, document: dict) -> None:

    with atomic_target(path, "the fleet settings") as temporary:
        temporary.write_text(json.dumps(document, indent=2, allow_nan=False))


def _read_settings(folder: Path) -> dict[str, Any]:
    check_fleet_path(folder)
    path = folder / SETTINGS
    try:
        settings = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{str(path)!r} is not readable fleet settings ({' '.join(str(exc).split())[:200]}); fit the fleet again.") from None
    if not isinstance(settings, dict) or settings.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{str(path)!r} is not an lstmae fleet file (format {describe(getattr(settings, 'get', dict().get)('format'))}).")
    if not isinstance(settings.get("format_version"), int) or settings["format_version"] > FORMAT_VERSION:
        raise ModelFileError(f"{str(path)!r} has fleet format {settings.get('format_version')!r}; this lstmae reads {FORMAT_VERSION}: upgrade it.")
    return settings


def _check_resumable(folder: Path, settings: dict) -> None:
    """``resume=True`` continues only a fit with the same settings; say which one differs otherwise."""
    if not (folder / SETTINGS).is_file():
        raise ParameterError(f"resume: no fleet to continue in {str(folder)!r} (no {SETTINGS}); run without --resume.")
    previous = _read_settings(folder)
    for key in ("series_column", "columns", "missing", "duplicates", "train_end", "params"):
        if previous.get(key) != settings[key]:
            raise ParameterError(
                f"resume: the fleet in {str(folder)!r} was fitted with other settings ({key}: "
                f"{describe(previous.get(key), 120)} then, {describe(settings[key], 120)} now); "
                "use the same options, or a new output folder without --resume."
            )
    if settings["time_column"] is not None and previous.get("time_column") != settings["time_column"]:
        raise ParameterError(f"resume: the fleet was fitted with time column {previous.get('time_column')!r}, not {settings['time_column']!r}.")


def _time_column(staged: Staged, time_column: str | None, columns: list[str] | None) -> str | None:
    """The time column each series is read with: the one given (checked), else one with a time name."""

    named = [time_column] if time_column is not None else []
    for name in [*named, *(columns or [])]:
        if name not in staged.columns:
            raise DataFileError(f"column {name!r} not found in the table; columns found: {format_names(staged.columns)}.")
    if time_column is not None:
        return time_column
    return detect_time_column(staged.columns, exclude=set(columns or ()))


@contextlib.contextmanager
def _staged(X: Any, series_column: str, folder: Path) -> Iterator[Staged]:
    """``X`` staged in ``folder/_input`` for the run (removed after it), or a partitioned folder as it is."""
    staged = stage(X, series_column, folder / STAGED)
    try:
        yield staged
    finally:
        if staged.folder == folder / STAGED:
            shutil.rmtree(staged.folder, ignore_errors=True)


def _model_file(name: str) -> str:
    return f"models/{quote(name, safe='')}.safetensors"


def _remove_leftovers(folder: Path) -> None:
    """Temporary files of a writer that was killed (``kill -9`` cannot clean up after itself)."""
    for entry in folder.glob(".*.tmp"):
        entry.unlink(missing_ok=True)


def _read_scores(folder: str | Path, series_column: str, name: str) -> pd.DataFrame:
    frame = pd.read_parquet(Path(folder) / partition_name(series_column, name) / "part-0.parquet")
    frame.insert(0, series_column, name)
    return frame


# ---------------------------------------------------------------- progress
class _Progress:
    """A rich progress bar on stderr when it is a terminal and ``verbose``: done / total, failures, ETA."""

    def __init__(self, task: str, total: int, verbose: int) -> None:
        self.total, self.failed = total, 0
        self.bar = None
        if verbose and total and sys.stderr.isatty():

            self.bar = Progress(
                TextColumn(f"fleet {task}"), BarColumn(), MofNCompleteColumn(), TextColumn("series"),
                TextColumn("{task.fields[failed]} failed"), TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False,
            )
            self.task = self.bar.add_task(task, total=total, failed=0)

    def __enter__(self) -> "_Progress":
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def advance(self, failed: bool) -> None:
        self.failed += failed
        if self.bar is not None:
            self.bar.update(self.task, advance=1, failed=self.failed)


# ------------------------------------------------------------ in the worker
def run_job(job: dict) -> dict:
    """One series' job in a worker: "fit", "score" or "detect". Bad data is a "failed" result, never an exception."""
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if job["task"] == "fit":
                _kill_hook(job["series"])
                result = _fit(job)
            else:
                result = _score(job)
        except LstmaeError as exc:
            result = {"status": "failed", "error": " ".join(str(exc).split())}
        except Exception as exc:  # a bug: still this series only, with its type for the report
            result = {"status": "failed", "error": f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
    if "seconds" not in result:
        result["seconds"] = time.perf_counter() - started
    notes = sorted({" ".join(str(w.message).split()) for w in caught if issubclass(w.category, UserWarning)})
    result["warnings"] = "; ".join(notes) if notes else None
    return result


def _load(job: dict, model: Any = None) -> Any:
    """The job's series as `LoadedData`, read from its files only, with the fleet's read options."""

    settings = job["settings"]
    columns = settings["columns"]
    if columns is None and model is not None and getattr(model, "feature_names_in_", None) is not None:
        columns = [str(name) for name in model.feature_names_in_]
    return table_to_loaded(read_series(job["files"]), f"series {job['series']!r}", settings["time_column"],
                            columns, None, settings["missing"], settings["duplicates"])


def _fit(job: dict) -> dict:

    path = Path(job["model"])
    if job["resume"] and path.is_file():
        try:
            _, info = load_model(path)  # checks the file's checksum
            fleet = info.get("metadata", {}).get("fleet", {})
            if fleet.get("series") == job["series"] and fleet.get("params") == job["settings"]["params"]:
                return {**fleet["result"], "status": "ok", "error": None, "model_sha256": info["tensors_sha256"]}
        except ModelFileError:
            pass  # damaged or foreign: fitted again below

    started = time.perf_counter()
    loaded = _load(job)
    model = LSTMAutoencoder(**job["settings"]["params"]).fit(split_train(loaded, job["settings"].get("train_end")).data)
    result = {"rows": loaded.n_rows, "threshold": float(model.threshold_), "seconds": time.perf_counter() - started}
    settings = job["settings"]
    read = {"time_column": settings["time_column"], "id_column": None, "series_column": settings["series_column"]}
    metadata = {"read": read, "fleet": {"series": job["series"], "params": settings["params"], "result": result}}
    model.save(path, metadata=metadata)
    _, info = load_model(path)
    return {**result, "status": "ok", "error": None, "model_sha256": info["tensors_sha256"]}


def _score(job: dict) -> dict:


    model = LSTMAutoencoder.load(job["model"], device="cpu")
    loaded = _load(job, model)
    if job["task"] == "detect":
        intervals = model.detect(loaded.data, threshold=job.get("threshold"), min_gap=job.get("min_gap"))
        return {"status": "ok", "error": None, "rows": loaded.n_rows, "intervals": intervals.to_dict("list")}
    scores = np.asarray(model.anomaly_score(loaded.data), dtype=np.float64)
    index = loaded.data.index
    table = pd.DataFrame({index.name or "index": index.to_numpy(), "score": scores,
                          "anomaly": (scores > model.threshold_).astype(np.int8)})
    write_table(table, job["scores"])
    return {"status": "ok", "error": None, "rows": loaded.n_rows, "threshold": float(model.threshold_)}


def _kill_hook(series: str) -> None:
    """The test hook `KILL_HOOK`: die as ``kill -9`` would, to test that the run survives it."""
    for item in filter(None, os.environ.get(KILL_HOOK, "").split(",")):
        name, _, once = item.partition("@")
        if name != series:
            continue
        if once:
            if os.path.exists(once):
                return
            Path(once).touch()

        os.kill(os.getpid(), signal.SIGKILL)


def iter_intervals(intervals: pd.DataFrame, series_column: str) -> Iterator[tuple[str, pd.DataFrame]]:
    """(series, its intervals without the series column), series by series."""
    for name, part in intervals.groupby(series_column, sort=True):
        yield str(name), part.drop(columns=[series_column]).reset_index(drop=True)
