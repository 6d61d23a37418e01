"""The ``lstmae`` command line: fit, score, detect, encode, reconstruct, explain, demo.

Bad input never ends in a traceback: every error is one line on stderr and
exit code 2. Results go to stdout (tables) or to the files named with ``-o``;
progress and summaries go to stderr, so ``lstmae score ... > scores.csv`` works.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import numpy as np
import pandas as pd
import typer

try:  # typer >= 0.26 ships its own copy of click
    from typer._click import exceptions as _click_errors
except ImportError:  # older typer depends on click itself
    from click import exceptions as _click_errors  # type: ignore[no-redef]

from lstmae._version import __version__
from lstmae.cli.common import Stopped, err, out, split_list, stoppable
from lstmae.cli.options import EstimatorOptions, estimator_options, first_sentence, option_value
from lstmae.cli.fleet import fleet_app
from lstmae.cli.serve import serve
from lstmae.data.benchmarks import list_benchmark, select
from lstmae.data.readers import LoadedData, read_collection, read_data, split_train
from lstmae.data.windows import window_starts
from lstmae.errors import DataFileError, Interrupted, LstmaeError, LstmaeWarning, ParameterError
from lstmae.inputs import check_data_path, check_model_path, check_policies
from lstmae.params import check_integer, check_score_threshold
from lstmae.persistence.atomic import TABLE_EXTENSIONS, check_extension, checkpoint_path, create_temporary, is_rank_zero, write_array, write_table
from lstmae.reports.explain import explain_shapes
from lstmae.reports.terminal import print_evaluation, print_intervals, print_panel_evaluation
from lstmae.versions import format_versions, versions

# Imported inside the commands that need them: modules that load torch (the estimator, streaming,
# evaluation), Lightning (checkpoints) or matplotlib (the report, the demo), so that `lstmae --help`
# and the one-line error for a bad option come back at once.
if TYPE_CHECKING:
    from lstmae.estimator import LSTMAutoencoder

app = typer.Typer(
    name="lstmae",
    help="LSTM autoencoders for time series: window, train, encode, reconstruct, score, detect, explain.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# ----------------------------------------------------------------- options
DataArg = Annotated[Path, typer.Argument(help="Data file: .csv/.tsv/.csv.gz, .parquet, .npy, .txt/.txt.gz.", show_default=False)]
ModelOpt = Annotated[Path, typer.Option("--model", "-m", help="Model file written by `lstmae fit`.", show_default=False)]
TimeColumnOpt = Annotated[Optional[str], typer.Option("--time-column", help="Timestamp column (default: the model's, else one named timestamp/time/date/datetime/ds). fit saves it in the model; 'none': not the model's.")]
ColumnsOpt = Annotated[Optional[str], typer.Option("--columns", help="Comma-separated value columns (default: every numeric column; when scoring, the model's columns).")]
IdColumnOpt = Annotated[Optional[str], typer.Option("--id-column", help="Id column of a long-format panel: one sequence per id, every id one equal-length sample (default: the model's). fit saves it in the model; 'none': no id column. For independent series of any lengths, use --series-column.")]
SeriesColumnOpt = Annotated[Optional[str], typer.Option("--series-column", help="Column that splits a long table into independent series (any lengths, each its own time axis): fit trains one global model on all of them, each scaled by its own statistics; results come per series, with this column first (default: the model's; 'none': no series column). Unlike --id-column, whose ids are samples of one panel.")]
MissingOpt = Annotated[str, typer.Option("--missing", help="Empty cells / NaN: 'interpolate' (linear, with a warning) or 'error'.")]
DuplicatesOpt = Annotated[str, typer.Option("--duplicates", help="Repeated timestamps: 'error', 'mean' (average the rows) or 'first' (keep the first).")]


def _parse_column(text: str | None) -> str | None:
    """--time-column / --id-column as given to `fit`: 'none' is the same as leaving it out."""
    return None if text is None or text.strip().lower() == "none" else text


def _read_columns(model: "LSTMAutoencoder | None", given: dict[str, str | None]) -> tuple[dict[str, str | None], dict[str, str]]:
    """The time, id and series columns to read with: the options, else those the model was fitted with.

    A model remembers its columns (`fit` saves them as ``metadata_["read"]``); 'none' reads
    without the model's column. ``given``: {option: value}. Returns ({option: column}, {option: column taken from the model}).
    """
    read = dict(getattr(model, "metadata_", {}).get("read") or {}) if model is not None else {}
    chosen: dict[str, str | None] = {}
    from_model: dict[str, str] = {}
    for option, value in given.items():
        remembered = read.get(option.replace("-", "_"))
        if value is None and isinstance(remembered, str):
            chosen[option], from_model[option] = remembered, remembered
        else:
            chosen[option] = _parse_column(value)
    return chosen, from_model


@dataclass(frozen=True)
class Many:
    """A long table read as independent series (--series-column): {key: LoadedData}, in order of appearance."""
    column: str
    parts: dict

    def data(self) -> dict:
        return {key: part.data for key, part in self.parts.items()}


def _read(
    data: Path,
    time_column: str | None,
    columns: str | None,
    id_column: str | None,
    model: "LSTMAutoencoder | None" = None,
    policy: tuple[str, str] = ("interpolate", "error"),
    series_column: str | None = None,
    many: bool = False,
) -> "LoadedData | Many":
    """Read DATA; ``policy`` is (--missing, --duplicates).

    ``many``: the command takes independent series (--series-column, given or the model's): then a `Many`.
    """
    # .npy/.txt files have no named columns: the columns a model remembers do not apply.
    table_file = data.suffix.lower() not in (".npy", ".txt") and not data.name.lower().endswith(".txt.gz")
    given = {"time-column": time_column, "id-column": id_column}
    if many:
        given["series-column"] = series_column
    chosen_columns, from_model = _read_columns(model if table_file else None, given)
    time_column, id_column, series_column = (chosen_columns.get(k) for k in ("time-column", "id-column", "series-column"))
    if series_column is not None and id_column is not None:
        raise ParameterError(
            f"--series-column {series_column} and --id-column {id_column}: give one; --id-column makes a panel of "
            "equal-length samples, --series-column splits the table into independent series."
        )
    chosen = split_list(columns)
    if chosen is None and model is not None and getattr(model, "feature_names_in_", None) is not None:
        chosen = [str(name) for name in model.feature_names_in_]
        if data.suffix.lower() in (".npy", ".txt", ".gz") or data.name.lower().endswith((".txt.gz",)):
            chosen = None  # generated names ("value", "0", ...) are not worth enforcing
    if model is not None and model.input_kind_ == "panel" and id_column is None and data.suffix.lower() not in (".npy",):
        raise ParameterError("this model was trained on a panel of sequences; pass --id-column as during fit.")
    missing, duplicates = policy
    try:
        if series_column is not None:
            parts = read_collection(data, series_column, time_column=time_column, columns=chosen, missing=missing, duplicates=duplicates)
            return Many(series_column, parts)
        return read_data(
            data, time_column=time_column, columns=chosen, id_column=id_column, missing=missing, duplicates=duplicates
        )
    except DataFileError as exc:
        for option, name in from_model.items():
            if str(exc).startswith(f"{option.replace('-', '_')} {name!r} not found"):
                raise DataFileError(
                    f"{exc} The model was fitted with --{option} {name}: pass --{option} COLUMN, "
                    f"or --{option} none to read without it."
                ) from None
        raise


def _load_model(path: Path) -> "LSTMAutoencoder":
    from lstmae.estimator import LSTMAutoencoder

    return LSTMAutoencoder.load(path)


def _model_and_data(
    model_path: Path,
    data: Path,
    time_column: str | None,
    columns: str | None,
    id_column: str | None,
    policy: tuple[str, str],
    series_column: str | None = None,
) -> tuple["LSTMAutoencoder", "LoadedData | Many"]:
    """Load the model first (its columns are the default), then read DATA the way it was trained."""
    # A bad option or path fails before the model is even opened (and torch imported).
    check_policies(*policy)
    check_model_path(model_path)
    check_data_path(data)
    model = _load_model(model_path)
    return model, _read(data, time_column, columns, id_column, model, policy, series_column, many=True)


def _threshold(model: "LSTMAutoencoder", key: Any) -> float:
    """The threshold a series is detected with: its own state's in a global model, else the model's one state's."""
    states = model.scoring_states_
    return (states[key] if key in states else states[None]).threshold


def _per_series(many: Many, tables: dict) -> Any:
    """Per-series tables as one, the series column first."""
    parts = []
    for key, table in tables.items():
        table = table.copy()
        table.insert(0, many.column, key)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def _position_frame(loaded: "LoadedData", n: int) -> Any:
    """The first column(s) of a per-timestep / per-sample output table."""
    if loaded.kind == "panel":
        return pd.DataFrame({loaded.id_name: loaded.ids if loaded.ids is not None else range(n)})
    index = loaded.data.index
    name = index.name or "index"
    return pd.DataFrame({name: index.to_numpy()})


def _model_input(loaded: "LoadedData") -> Any:
    """What the model reads: a series' DataFrame, a .npy panel's array, or a table's panel as a
    DataFrame indexed by (id, step), so that the model keeps the ids and the column names."""
    if loaded.kind != "panel" or loaded.columns is None:
        return loaded.data
    samples, steps, width = loaded.data.shape
    ids = np.empty(samples, dtype=object)
    ids[:] = loaded.ids
    index = pd.MultiIndex.from_arrays([np.repeat(ids, steps), np.tile(np.arange(steps), samples)], names=[loaded.id_name, "step"])
    return pd.DataFrame(loaded.data.reshape(samples * steps, width), index=index, columns=loaded.columns)


def _emit_table(table: Any, output: Path | None) -> None:
    """Write ``table`` to ``output`` (CSV/Parquet), or as CSV to stdout."""
    if output is None:
        table.to_csv(sys.stdout, index=False)
    else:
        write_table(table, output)
        err.print(f"wrote {len(table)} rows to {output}")


# ---------------------------------------------------------------- commands
@app.command()
@estimator_options()
def fit(
    data: DataArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the model (.safetensors).", show_default=False)],
    train_end: Annotated[Optional[str], typer.Option("--train-end", help="Train on rows before this position N or TIMESTAMP (panels: first N samples).")] = None,
    time_column: TimeColumnOpt = None,
    columns: ColumnsOpt = None,
    id_column: IdColumnOpt = None,
    missing: MissingOpt = "interpolate",
    duplicates: DuplicatesOpt = "error",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary (sets --verbose 0).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted fit from its checkpoint OUTPUT.ckpt (same data and options; --epochs may differ: a checkpoint that holds as many epochs or more ends the fit with its best weights).")] = False,
    series_column: SeriesColumnOpt = None,
    devices: Annotated[Optional[str], typer.Option("--devices", help="Lightning devices for training: N processes (DDP) or 'auto'. With --strategy ddp; --batch-size is per process. Launch as Lightning documents (it starts the other local processes itself; torchrun/srun for several machines).")] = None,
    num_nodes: Annotated[Optional[int], typer.Option("--num-nodes", help="Machines taking part in DDP training (Lightning's num_nodes).")] = None,
    strategy: Annotated[Optional[str], typer.Option("--strategy", help="Lightning strategy, e.g. 'ddp' (gloo on CPUs, NCCL on GPUs). Needs --seed.")] = None,
    accelerator: Annotated[Optional[str], typer.Option("--accelerator", help="'cpu' or 'gpu' for training (default: what --device gives).")] = None,
    estimator: EstimatorOptions = EstimatorOptions({}),
) -> None:
    """Train an autoencoder on DATA (or its first part, --train-end) and save it.

    After every epoch, progress is kept in a checkpoint next to the model,
    OUTPUT.ckpt (safetensors: weights, optimizer state, history). Ctrl-C or
    SIGTERM stops within seconds (exit 130 / 143) and leaves OUTPUT as it was
    (absent, or the previous model: never half-written) and the checkpoint in
    place; run the same command with --resume to continue. A finished fit
    writes OUTPUT, then deletes the checkpoint.
    """
    # Everything that can be judged without the data or torch, first: the estimator's own table.
    fixed: dict[str, Any] = {"trainer_kwargs": _distributed_options(devices, num_nodes, strategy, accelerator)}
    if quiet:
        fixed["verbose"] = 0
    chosen = estimator.params(**fixed)
    check_policies(missing, duplicates)
    _check_output(output, "--output")
    checkpoint = checkpoint_path(output)
    if resume and not checkpoint.is_file():
        finished = " (the fit finished: its model is there)" if output.is_file() else ""
        raise ParameterError(
            f"--resume: no checkpoint {str(checkpoint)!r} next to {str(output)!r}{finished}; run without --resume to train."
        )
    check_data_path(data)

    loaded = _read(data, time_column, columns, id_column, policy=(missing, duplicates), series_column=series_column, many=True)
    if isinstance(loaded, Many):
        loaded = Many(loaded.column, {key: split_train(part, train_end) for key, part in loaded.parts.items()})
    else:
        loaded = split_train(loaded, train_end)
    from lstmae.estimator import LSTMAutoencoder, resolve_device

    model = LSTMAutoencoder(**chosen)
    resolve_device(model.device)
    try:
        model.fit(loaded.data() if isinstance(loaded, Many) else _model_input(loaded), checkpoint=checkpoint, resume=resume)  # DegenerateModelWarning: one line each
    except KeyboardInterrupt:
        if checkpoint.is_file():
            err.print(
                f"lstmae: training stopped; {output} was not written; the last finished epoch is kept in "
                f"{checkpoint}: run the same command with --resume to continue.",
                markup=False,
            )
        raise
    # The model remembers how its data was read: later verbs default to the same columns.
    read = {
        "id_column": _parse_column(id_column), "time_column": _parse_column(time_column),
        "series_column": loaded.column if isinstance(loaded, Many) else None,
    }
    if not is_rank_zero():  # DDP: the other processes trained the same model; rank 0 writes and reports
        return
    model.save(output, metadata={"read": read})
    checkpoint.unlink(missing_ok=True)
    if not quiet:
        history = model.history_
        epochs_run = len(history.get("loss", []))
        last = f"loss {history['loss'][-1]:.4g}" + (f", val_loss {history['val_loss'][-1]:.4g}" if "val_loss" in history else "")
        if isinstance(loaded, Many):
            rows = sum(part.n_rows for part in loaded.parts.values())
            thresholds = [state.threshold for state in model.scoring_states_.values()]
            err.print(f"trained one global model on {len(loaded.parts)} series ({loaded.column}), {rows} timesteps; {model.timesteps_reason_}")
            limit = f"thresholds {min(thresholds):.4g} to {max(thresholds):.4g} (one per series)"
        else:
            err.print(
                f"trained on {loaded.n_rows} {'samples' if loaded.kind == 'panel' else 'timesteps'} {tuple(loaded.data.shape)}; "
                f"{model.timesteps_reason_}"
            )
            limit = f"threshold {model.threshold_:.4g}"
        err.print(f"{epochs_run} epoch(s), {last}; {limit}; {model.fit_seconds_:.1f} s")
        if model.early_stopping_ is not None:  # the model has the best epoch's weights, not the last one's
            from lstmae.diagnostics import describe_early_stop  # torch, loaded by the fit already

            err.print(f"{describe_early_stop(model.early_stopping_)}; the model has that epoch's weights")
        err.print(f"saved model to {output}")
        diagnostics = model.diagnostics_
        err.print(
            f"diagnostics: identity_ratio {diagnostics['identity_ratio']:.3g}, "
            f"noise_explained {diagnostics['noise_explained']:.2f}, collapse_ratio {diagnostics['collapse_ratio']:.3g}"
        )
    # Printed even with --quiet, like the diagnostics' warnings: a degenerate design must not pass silently.
    for warning in _design_warnings(model):
        err.print(f"lstmae: warning: {_one_line(warning)}", markup=False)


def _distributed_options(devices: str | None, num_nodes: int | None, strategy: str | None, accelerator: str | None) -> dict | None:
    """--devices/--num-nodes/--strategy/--accelerator as the estimator's trainer_kwargs (checked by its table)."""
    options: dict[str, Any] = {}
    if devices is not None:
        options["devices"] = int(devices) if devices.strip().lstrip("-").isdigit() else devices.strip()
    for key, value in (("num_nodes", num_nodes), ("strategy", strategy), ("accelerator", accelerator)):
        if value is not None:
            options[key] = value
    return options or None


def _check_output(path: Path, option: str) -> None:
    """An output path that cannot be written fails before any work (not after hours of training)."""
    if path.is_dir():
        raise ParameterError(f"{option} {str(path)!r} is a directory; give a file name such as {path / 'model.safetensors'}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        create_temporary(path).unlink()  # where the model's temporary file will go
    except OSError as exc:
        raise ParameterError(
            f"{option} {str(path)!r} cannot be written: {exc.strerror or exc}; choose a writable directory."
        ) from None


def _design_warnings(model: "LSTMAutoencoder") -> list[str]:
    """The bottleneck check of `lstmae explain`, for a fitted model."""
    config = model.config_
    return list(
        explain_shapes(
            timesteps=config.timesteps, n_features=config.n_features, units=config.units, architecture=config.architecture
        ).warnings
    )


@app.command()
def score(
    data: DataArg,
    model_path: ModelOpt,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="scores.csv or .parquet (default: CSV on stdout).")] = None,
    time_column: TimeColumnOpt = None,
    columns: ColumnsOpt = None,
    id_column: IdColumnOpt = None,
    missing: MissingOpt = "interpolate",
    duplicates: DuplicatesOpt = "error",
    follow: Annotated[bool, typer.Option("--follow", help="Score CSV rows as they arrive (DATA '-': standard input; a file: like tail -f); one line per point once its score is final.")] = False,
    idle_timeout: Annotated[Optional[float], typer.Option("--idle-timeout", help="With --follow on a file: stop (and score the last points) after this many seconds without a new line; default: never.")] = None,
    provisional: Annotated[bool, typer.Option("--provisional", help="With --follow: also write each row's provisional score as soon as it arrives (a fourth column, final: 0), before its final score (final: 1).")] = False,
    series_column: SeriesColumnOpt = None,
) -> None:
    """Score every timestep (or every sample of a panel): time/index, score, anomaly 0/1 (with --series-column: per series, the series first)."""
    if follow:
        _follow(data, model_path, output, time_column, columns, id_column, (missing, duplicates), idle_timeout, provisional)
        return
    if provisional:
        raise ParameterError("--provisional writes the scores of a stream before they are final; it needs --follow.")
    model, loaded = _model_and_data(model_path, data, time_column, columns, id_column, (missing, duplicates), series_column)
    if isinstance(loaded, Many):
        tables = {}
        for key, values in model.anomaly_score(loaded.data()).items():
            values = np.asarray(values)
            tables[key] = _position_frame(loaded.parts[key], len(values))
            tables[key]["score"] = values
            tables[key]["anomaly"] = (values > _threshold(model, key)).astype(int)
        _emit_table(_per_series(loaded, tables), output)
        return
    scores = np.asarray(model.anomaly_score(_model_input(loaded)))  # a Series for a frame: the table has its own index
    table = _position_frame(loaded, len(scores))
    table["score"] = scores
    table["anomaly"] = (scores > model.threshold_).astype(int)
    _emit_table(table, output)


def _follow(data: Path, model_path: Path, output: Path | None, time_column: str | None, columns: str | None,
            id_column: str | None, policy: tuple[str, str], idle_timeout: float | None, provisional: bool = False) -> None:
    """`lstmae score --follow`: `lstmae.streaming.follow`, with the model's remembered time column."""
    check_policies(*policy)
    if output is not None:
        raise ParameterError("--follow writes each score to standard output as it is final; drop -o and redirect: > scores.csv.")
    if policy[1] != "error":
        raise ParameterError(f"--duplicates {policy[1]} cannot be used with --follow: a stream cannot merge rows it has already scored.")
    if id_column is not None and _parse_column(id_column) is not None:
        raise ParameterError("--follow scores one long series; a panel (--id-column) is scored without --follow.")
    if idle_timeout is not None and not idle_timeout > 0:
        raise ParameterError(f"--idle-timeout must be a number of seconds > 0, got {idle_timeout!r}.")
    check_model_path(model_path)
    from lstmae.streaming.follow import follow

    model = _load_model(model_path)
    if isinstance(getattr(model, "metadata_", {}).get("read", {}).get("series_column"), str):
        raise ParameterError("--follow scores one long series; a model fitted with --series-column is scored without --follow.")
    chosen_time = _read_columns(model, {"time-column": time_column})[0]["time-column"]
    follow(
        model.stream(missing=policy[0]), data, time_column=chosen_time, detect_time=time_column is None, columns=split_list(columns),
        missing=policy[0], idle_timeout=idle_timeout, output=sys.stdout, provisional=provisional, notes=sys.stderr,
    )


@app.command()
def detect(
    data: DataArg,
    model_path: ModelOpt,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write the intervals (or samples) to this .csv/.parquet.")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Override the model's threshold.")] = None,
    min_gap: Annotated[Optional[int], typer.Option("--min-gap", help="Series: merge intervals closer than this many timesteps (default: timesteps). Not for panels.")] = None,
    time_column: TimeColumnOpt = None,
    columns: ColumnsOpt = None,
    id_column: IdColumnOpt = None,
    missing: MissingOpt = "interpolate",
    duplicates: DuplicatesOpt = "error",
    series_column: SeriesColumnOpt = None,
) -> None:
    """Find anomalous intervals of a series, or anomalous samples of a panel (one row each, with its id), and print them as a table (with --series-column: one table per series)."""
    if threshold is not None:  # the checks `detect` runs, before the model is opened
        check_score_threshold(threshold)
    if min_gap is not None:
        check_integer("min_gap", min_gap, 1)
    model, loaded = _model_and_data(model_path, data, time_column, columns, id_column, (missing, duplicates), series_column)
    if isinstance(loaded, Many):
        found = model.detect(loaded.data(), threshold=threshold, min_gap=min_gap)
        for key, table in found.items():
            out.print(f"{loaded.column} {key}:", markup=False)
            print_intervals(table, _threshold(model, key) if threshold is None else threshold, out)
        if output is not None:
            table = _per_series(loaded, found)
            write_table(table, output)
            err.print(f"wrote {len(table)} interval(s) to {output}")
        return
    found = model.detect(_model_input(loaded), threshold=threshold, min_gap=min_gap)
    if loaded.kind == "panel" and loaded.id_name not in found.columns and loaded.ids is not None:  # a .npy panel: ids are positions
        found.insert(1, loaded.id_name, [loaded.ids[i] for i in found["sample"]])
    unit = "sample" if loaded.kind == "panel" else "interval"
    print_intervals(found, model.threshold_ if threshold is None else threshold, out, unit=unit)
    if output is not None:
        write_table(found, output)
        err.print(f"wrote {len(found)} {unit}(s) to {output}")


@app.command()
def encode(
    data: DataArg,
    model_path: ModelOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="emb.npy (raw array), or .csv/.parquet (one row per window, or per window and step).", show_default=False)],
    stride: Annotated[Optional[int], typer.Option(help="Step between windows (default: the model's stride).")] = None,
    time_column: TimeColumnOpt = None,
    columns: ColumnsOpt = None,
    id_column: IdColumnOpt = None,
    missing: MissingOpt = "interpolate",
    duplicates: DuplicatesOpt = "error",
    series_column: SeriesColumnOpt = None,
) -> None:
    """Write the encoder output (embeddings): (windows, latent) or (windows, timesteps, latent); per series, the series first."""
    suffix = check_extension(output, (".npy", ".csv", ".parquet"), "embeddings")
    if stride is not None:
        check_integer("stride", stride, 1)  # as `encode` does, before the model is opened
    model, loaded = _model_and_data(model_path, data, time_column, columns, id_column, (missing, duplicates), series_column)

    def rows(part: "LoadedData", embeddings: np.ndarray) -> Any:
        """One row per window (and step): window, start, start_time, z0..."""
        if part.kind == "panel":
            keys = _position_frame(part, len(embeddings))
        else:
            starts = window_starts(part.n_rows, model.timesteps_, model.stride if stride is None else stride)
            keys = pd.DataFrame({"window": np.arange(len(starts)), "start": starts})
            if not isinstance(part.data.index, pd.RangeIndex):
                keys["start_time"] = part.data.index[starts]
        names = [f"z{i}" for i in range(embeddings.shape[-1])]
        if embeddings.ndim == 2:
            return pd.concat([keys, pd.DataFrame(embeddings, columns=names)], axis=1)
        return _long_format(keys, embeddings, names)  # (windows, timesteps, latent): one row per window and step

    if isinstance(loaded, Many):
        if suffix == ".npy":
            raise ParameterError(f"--output {output}: embeddings of several series go to a .csv or .parquet table (one row per window, the series first).")
        found = model.encode(loaded.data(), stride=stride)
        table = _per_series(loaded, {key: rows(loaded.parts[key], np.asarray(values)) for key, values in found.items()})
        write_table(table, output)
        err.print(f"wrote embeddings of {len(found)} series ({len(table)} rows) to {output}")
        return
    embeddings = np.asarray(model.encode(_model_input(loaded), stride=stride))  # the table below has its own keys
    if suffix == ".npy":
        write_array(embeddings, output)
    else:
        write_table(rows(loaded, embeddings), output)
    err.print(f"wrote embeddings of shape {embeddings.shape} to {output}")


@app.command()
def reconstruct(
    data: DataArg,
    model_path: ModelOpt,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="recon.csv or .parquet (default: CSV on stdout).")] = None,
    time_column: TimeColumnOpt = None,
    columns: ColumnsOpt = None,
    id_column: IdColumnOpt = None,
    missing: MissingOpt = "interpolate",
    duplicates: DuplicatesOpt = "error",
    series_column: SeriesColumnOpt = None,
) -> None:
    """Write the model's reconstruction of DATA, same rows and columns as the input."""
    model, loaded = _model_and_data(model_path, data, time_column, columns, id_column, (missing, duplicates), series_column)
    if isinstance(loaded, Many):
        found = model.reconstruct(loaded.data())
        _emit_table(_per_series(loaded, {key: table.reset_index() for key, table in found.items()}), output)
        return
    recon = model.reconstruct(_model_input(loaded))
    if loaded.kind == "panel" and not isinstance(recon, pd.DataFrame):  # a .npy panel (S, T, F): one row per sample and step
        keys = _position_frame(loaded, recon.shape[0])
        names = [f"feature_{i}" for i in range(recon.shape[2])]
        table = _long_format(keys, recon, names)
    else:  # a table's series or panel, as read: the time (or position), or the id and step, first; then the features
        table = recon.reset_index()
    _emit_table(table, output)


def _long_format(keys: Any, values: Any, names: list[str]) -> Any:
    """``values`` (n, steps, k) as a table of n*steps rows: ``keys`` repeated, ``step``, then ``names``."""
    n, steps, width = values.shape
    table = keys.loc[keys.index.repeat(steps)].reset_index(drop=True)
    table["step"] = np.tile(np.arange(steps), n)
    return pd.concat([table, pd.DataFrame(values.reshape(-1, width), columns=names)], axis=1)


#: `lstmae explain` without DATA: the shape walk's numbers where no option gives them.
EXPLAIN_DEFAULTS = {"timesteps": 40, "units": 64, "architecture": "repeat", "batch_size": 32, "stride": 1,
                    "validation_split": 0.0, "frame": "auto"}


@app.command()
def explain(
    data: Annotated[Optional[Path], typer.Argument(help="Optional data file: its shape is used.", show_default=False)] = None,
    length: Annotated[Optional[int], typer.Option("--length", help="Length of one long series (instead of DATA).")] = None,
    samples: Annotated[Optional[int], typer.Option("--samples", help="Number of sequences of a 3-D panel (instead of DATA).")] = None,
    features: Annotated[int, typer.Option("--features", help="Values per timestep (instead of DATA).")] = 1,
    timesteps: Annotated[Optional[str], typer.Option(help="Window length, or 'auto' (needs DATA). Default: with DATA, what `lstmae fit` picks for it; else 40.", show_default=False)] = None,
    units: Annotated[Optional[str], typer.Option(help="Hidden units per encoder layer, e.g. 100 or 64,16. Default: with DATA, fit's (32); else 64.", show_default=False)] = None,
    architecture: Annotated[Optional[str], typer.Option(help="'repeat' or 'sequence' (default: repeat).", show_default=False)] = None,
    batch_size: Annotated[Optional[str], typer.Option("--batch-size", help="Windows per gradient step. Default: with DATA, fit's (64); else 32.", show_default=False)] = None,
    stride: Annotated[Optional[str], typer.Option(help="Step between training windows (default: 1).", show_default=False)] = None,
    validation_split: Annotated[Optional[str], typer.Option("--validation-split", help="Fraction of windows held out for validation. Default: with DATA, fit's (0.1); else 0.0.", show_default=False)] = None,
    frame: Annotated[Optional[str], typer.Option(help="Timesteps the LSTM reads as one step, or 'auto' (default).", show_default=False)] = None,
    model_path: Annotated[Optional[Path], typer.Option("--model", "-m", help="Explain a saved model instead of the options above.")] = None,
    time_column: TimeColumnOpt = None,
    columns: ColumnsOpt = None,
    id_column: IdColumnOpt = None,
    missing: MissingOpt = "interpolate",
    duplicates: DuplicatesOpt = "error",
) -> None:
    """Explain timesteps, features, samples, batches, units, return_sequences, RepeatVector,
    TimeDistributed and unroll with your own numbers, layer by layer."""
    if data is not None and (length is not None or samples is not None):
        raise ParameterError("give either DATA or --length/--samples, not both.")
    check_policies(missing, duplicates)
    if model_path is not None:
        check_model_path(model_path)
        if data is not None:
            check_data_path(data)
        model = _load_model(model_path)
        loaded = _read(data, time_column, columns, id_column, model, (missing, duplicates)) if data is not None else None
        out.print(model.explain(loaded.data if loaded is not None else None), markup=False)
        return
    notes: list[str] = []
    size: dict[str, int] = {}
    texts = {"timesteps": timesteps, "units": units, "architecture": architecture, "batch_size": batch_size,
             "stride": stride, "validation_split": validation_split, "frame": frame}
    chosen = {name: option_value(name, text) for name, text in texts.items() if text is not None}
    if data is not None:  # the options not given: the estimator's defaults, so the walk is the model `fit` would train
        check_data_path(data)
        loaded = _read(data, time_column, columns, id_column, policy=(missing, duplicates))
        from lstmae.estimator import LSTMAutoencoder

        text = LSTMAutoencoder(**chosen).explain(loaded.data)
        out.print(f"data: {data} ({loaded.kind}, shape {tuple(loaded.data.shape)})", markup=False)
        out.print(text, markup=False)
        return
    chosen = {**EXPLAIN_DEFAULTS, **chosen}  # no data: a walk of round numbers, the classic Keras example's
    if chosen["timesteps"] == "auto":
        raise ParameterError("--timesteps auto needs a data file to find the period; give DATA or an integer.")
    if length is not None:
        size["n_timesteps"] = length
    if samples is not None:
        size["n_samples"] = samples
    explanation = explain_shapes(n_features=features, notes=notes, **chosen, **size)
    out.print(explanation.text, markup=False)


@app.command()
def report(
    data: DataArg,
    model_path: ModelOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="report.html: one self-contained page that opens offline.", show_default=False)],
    labels: Annotated[Optional[str], typer.Option("--labels", help="Column of known anomalies (non-zero = anomalous), shaded in the plots; not a model input.")] = None,
    time_column: TimeColumnOpt = None,
    columns: ColumnsOpt = None,
    missing: MissingOpt = "interpolate",
    duplicates: DuplicatesOpt = "error",
) -> None:
    """Write an interactive HTML report: series vs reconstruction, score and threshold, intervals, model summary."""

    _check_output(output, "--output")
    model, loaded = _model_and_data(model_path, data, time_column, columns, None, (missing, duplicates))
    from lstmae.reports.html import write_report

    frame, known = loaded.data, None
    if labels is not None:
        inputs = getattr(model, "feature_names_in_", None)
        if labels in (split_list(columns) or []) or (inputs is not None and labels in [str(n) for n in inputs]):
            raise ParameterError(f"--labels {labels!r} is one of the model's input columns; name the column of known anomalies.")
        if labels in getattr(frame, "columns", ()):  # read as a value column by default: it is not one
            known, frame = frame[labels], frame.drop(columns=[labels])
        else:
            known = _read(data, time_column, labels, None, None, (missing, duplicates)).data[labels]
    path = write_report(model, frame, output, labels=None if known is None else known.to_numpy())
    err.print(f"wrote the report to {path}")


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for the scores CSV and the plot.")] = Path("lstmae-demo"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """The main job on bundled real data (NAB NYC taxi): fit on the early part, score all, report intervals."""
    from lstmae.cli.demo import run_demo

    run_demo(output, console=out, verbose=0 if quiet else 1)


@app.command()
@estimator_options(defaults={"verbose": 0})
def evaluate(
    path: Annotated[Path, typer.Argument(help="Benchmark data: a folder (or for ucr / labelled-csv, one file).", show_default=False)],
    format: Annotated[str, typer.Option("--format", "-f", help="ucr, nab, smap (SMAP and MSL), labelled-csv, or panel (Name_TRAIN.ts + Name_TEST.ts, a folder of them, or a 3-D .npy with --labels).", show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write the per-series results to this .csv/.parquet.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Evaluate at most N series.")] = None,
    series: Annotated[Optional[str], typer.Option("--series", help="Only series whose name matches this glob, e.g. '*ECG*'.")] = None,
    train_end: Annotated[Optional[int], typer.Option("--train-end", help="labelled-csv: fit on the first N rows (default: 15%); panel .npy: the first N samples are the training part (default: half).")] = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="panel .npy only: one class label per sample (.npy, or text with one label a line).")] = None,
    normal_class: Annotated[Optional[str], typer.Option("--normal-class", help="panel only: fit on this class only (default: each class in turn).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
    estimator: EstimatorOptions = EstimatorOptions({}),
) -> None:
    """Fit the default detector on each labelled series' normal prefix, score it all, and report
    VUS-PR, AUC-PR, VUS-ROC, AUC-ROC (and UCR top-1) with their means.

    --format panel: for each class c, fit on the training samples of class c, score every
    test sample, anomaly = any other class; AUC-ROC and AUC-PR per class and their means."""
    chosen = estimator.params()  # every model's parameters, checked before anything heavy is imported
    if output is not None:
        check_extension(output, TABLE_EXTENSIONS, "the results")
    if format == "panel":
        _evaluate_panels(path, chosen, output, labels, train_end, normal_class, quiet, series, limit)
        return
    if labels is not None or normal_class is not None:
        raise ParameterError("--labels and --normal-class apply to --format panel only.")

    entries = select(list_benchmark(path, format, train_end=train_end), series=series, limit=limit, path=path)
    from lstmae.evaluation.series import COLUMNS, evaluate_series  # the estimator: torch, once the benchmark is found

    rows = []
    for number, (name, load) in enumerate(entries, start=1):
        row = evaluate_series(load(), chosen)
        rows.append(row)
        if not quiet:
            note = f"VUS-PR {row['vus_pr']:.3f}" if row["status"] == "ok" else f"{row['status']} {row['error']}".strip()
            err.print(f"[{number}/{len(entries)}] {name}: {note} ({row['seconds']:.1f} s)", markup=False)
    _finish_evaluation(pd.DataFrame(rows, columns=list(COLUMNS)), print_evaluation, output)


def _evaluate_panels(path: Path, params: dict, output: Path | None, labels: Path | None, train_end: int | None,
                     normal_class: str | None, quiet: bool, pattern: str | None, limit: int | None) -> None:
    """`evaluate --format panel`: one row per (panel, normal class); see `lstmae.evaluation.panels`."""
    from lstmae.evaluation.panels import PANEL_COLUMNS, evaluate_panel, list_panels

    panels = [p for p in list_panels(path, labels=labels, train_end=train_end) if pattern is None or fnmatch.fnmatchcase(p[0], pattern)]
    if not panels:
        raise ParameterError(f"no panel under {str(path)!r} matches --series {pattern!r}.")
    rows = []
    for name, train, test in panels[:limit]:
        if not quiet and (train.resampled or test.resampled):
            err.print(f"{name}: samples of unequal length resampled to {train.values.shape[1]} timesteps", markup=False)
        for row in evaluate_panel(name, train, test, params, normal_class):
            rows.append(row)
            if not quiet:
                note = f"AUC-ROC {row['auc_roc']:.3f}" if row["status"] == "ok" else f"{row['status']} {row['error']}".strip()
                err.print(f"{name} class {row['normal_class']}: {note} ({row['seconds']:.1f} s)", markup=False)
    _finish_evaluation(pd.DataFrame(rows, columns=list(PANEL_COLUMNS)), print_panel_evaluation, output)


def _finish_evaluation(table: Any, show: Callable[[Any, Any], None], output: Path | None) -> None:
    """Print an evaluation table (``show(table, console)``) and write it to ``output`` when given."""
    show(table, out)
    if output is not None:
        write_table(table, output)
        err.print(f"wrote {len(table)} rows to {output}")




def _version_callback(value: bool) -> None:
    if value:
        out.print(f"lstmae {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version and exit.")] = False,
) -> None:
    """LSTM autoencoders for time series."""


@app.command()
def info(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of lines.")] = False,
) -> None:
    """Versions, the C kernels' state (built at install / unavailable / off), threads and CUDA devices."""
    found = versions()
    if as_json:
        out.print(json.dumps(found, indent=2), markup=False, highlight=False, soft_wrap=True)
    else:
        out.print("\n".join(format_versions(found)), markup=False, highlight=False, soft_wrap=True)


app.command(name="serve")(serve)
app.add_typer(fleet_app, name="fleet", short_help=fleet_app.info.help)  # after the verbs: `lstmae fleet ...` is listed last
for _command in app.registered_commands:  # each command's whole first sentence in `lstmae --help`
    _command.short_help = first_sentence(_command.callback.__doc__)
    _command.callback = stoppable(_command.callback)
for _command in fleet_app.registered_commands:
    _command.short_help = first_sentence(_command.callback.__doc__)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning every error into one line and an exit code.

    0 success; 2 bad input or usage (one line on stderr); 130 interrupted by
    Ctrl-C (SIGINT), 143 by SIGTERM; 1 an unexpected internal error (one line,
    please report it). Warnings about repaired input (gaps filled, rows
    sorted) are one line each: ``lstmae: warning: ...``.
    """
    args = sys.argv[1:] if argv is None else argv
    with _warnings_as_lines(), _sigterm_as_interrupt():
        return _run(args)


def _run(args: list[str]) -> int:
    try:
        result = app(args=args, prog_name="lstmae", standalone_mode=False)
        return int(result) if isinstance(result, int) else 0
    except _click_errors.NoArgsIsHelpError as exc:
        err.print(exc.ctx.get_help() if exc.ctx else "", markup=False)
        return 2
    except typer.Exit as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # typer turns Ctrl-C into Exit(130)
            return _interrupted(exc.__cause__)
        return exc.exit_code
    except _click_errors.ClickException as exc:
        err.print(f"lstmae: error: {_one_line(exc.format_message())}", markup=False)
        return 2
    except LstmaeError as exc:
        err.print(f"lstmae: error: {_one_line(str(exc))}", markup=False)
        return 2
    except Stopped as exc:
        return _interrupted(exc)
    except (KeyboardInterrupt, typer.Abort) as exc:
        return _interrupted(exc)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug in lstmae, not bad input: still one line, distinct code
        err.print(f"lstmae: internal error: {type(exc).__name__}: {_one_line(str(exc))} (please report this)", markup=False)
        return 1


def _interrupted(exc: BaseException) -> int:
    """One line, and the shell's convention for a process stopped by a signal: 128 + its number."""
    signum = exc.signum if isinstance(exc, (Interrupted, Stopped)) else int(signal.SIGINT)
    err.print(f"lstmae: interrupted ({signal.Signals(signum).name})", markup=False)
    return 128 + signum


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Show every LstmaeWarning (each time, not once per place) as one ``lstmae: warning:`` line."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", LstmaeWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
            if issubclass(category, LstmaeWarning):
                err.print(f"lstmae: warning: {_one_line(str(message))}", markup=False)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into `Interrupted`, handled like Ctrl-C: clean-up runs, no traceback, exit 143.

    Only the main thread may set signal handlers; elsewhere SIGTERM keeps its default.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run() -> None:
    """Console-script wrapper."""
    sys.exit(main())


if __name__ == "__main__":
    run()
