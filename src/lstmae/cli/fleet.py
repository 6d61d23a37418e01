"""``lstmae fleet fit|score|detect``: one model per series of a long table, many series at once.

Exit codes as the other verbs (2: bad input, one line; 130/143: interrupted:
the series done and pending, and the ``--resume`` command, are said first),
plus 3 when some series failed: the run went on without them, a summary line
says which, and the manifest says why. Series fitted with warnings (a
degenerate model, data repaired on reading) count as fitted: exit 0, and one
line counts the warnings by kind and says where to read them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from lstmae.cli.common import err, out, split_list, stoppable
from lstmae.cli.options import EstimatorOptions, estimator_options
from lstmae.fleet.engines import check_engine
from lstmae.inputs import check_data_path, check_fleet_path, check_policies
from lstmae.persistence.atomic import write_table
from lstmae.reports.terminal import print_intervals

# `lstmae.fleet.runner` and the estimator load torch: imported inside the commands, after the options
# and paths are checked, so that `lstmae --help` and the one-line error for bad input come back at once.

fleet_app = typer.Typer(
    name="fleet",
    help="One model per series of a long table (a --series-column names each row's series): fit, score and "
    "detect many series at once, on local processes or a Ray cluster.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

#: Exit code when the run finished but some series failed.
SOME_FAILED = 3

DataArg = Annotated[Path, typer.Argument(help="Long table (.csv/.tsv/.csv.gz/.parquet, one row per series and timestep), or a folder partitioned by the series column.", show_default=False)]
ModelsOpt = Annotated[Path, typer.Option("--models", "-m", help="The fleet's folder written by `lstmae fleet fit`.", show_default=False)]
EngineOpt = Annotated[str, typer.Option("--engine", help="'local' (processes on this machine) or 'ray' (pip install lstmae[ray]).")]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", help="Series at once, one process and one torch thread each (default: one per CPU).")]
AddressOpt = Annotated[Optional[str], typer.Option("--address", help="--engine ray: 'auto' (the cluster of `ray start`) or HOST:PORT; default: a local Ray for this run.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary (failures are still reported).")]


@fleet_app.command("fit")
@stoppable
@estimator_options()
def fit(
    data: DataArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="The fleet's folder: models/, manifest.parquet, fleet.json.", show_default=False)],
    series_column: Annotated[str, typer.Option("--series-column", help="Column naming each row's series: one model per series (not --id-column, whose ids are samples of ONE model).", show_default=False)],
    time_column: Annotated[Optional[str], typer.Option("--time-column", help="Timestamp column (default: one named timestamp/time/date/datetime/ds).")] = None,
    columns: Annotated[Optional[str], typer.Option("--columns", help="Comma-separated value columns (default: every numeric column).")] = None,
    missing: Annotated[str, typer.Option("--missing", help="Empty cells / NaN: 'interpolate' or 'error'.")] = "interpolate",
    duplicates: Annotated[str, typer.Option("--duplicates", help="Repeated timestamps: 'error', 'mean' or 'first'.")] = "error",
    train_end: Annotated[Optional[str], typer.Option("--train-end", help="Fit each series on its rows before this position N or TIMESTAMP (score covers all rows).")] = None,
    engine: EngineOpt = "local",
    workers: WorkersOpt = None,
    address: AddressOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Keep the valid models already in OUTPUT (same options) and fit the rest.")] = False,
    quiet: QuietOpt = False,
    estimator: EstimatorOptions = EstimatorOptions({}),
) -> None:
    """Fit one model per series of DATA; exit 3 if some series failed (the others are fitted).

    Ctrl-C stops within seconds: finished models stay, the manifest says which
    series are done; run the same command with --resume to fit the rest.
    """
    chosen = estimator.params()  # the options first, then the paths, then torch (an error is answered at once)
    check_policies(missing, duplicates)
    check_engine(engine, workers, address)
    if not data.is_dir():  # a folder partitioned by the series column is read as it is
        check_data_path(data)
    from lstmae.estimator import LSTMAutoencoder
    from lstmae.fleet.runner import Fleet

    fleet = Fleet(LSTMAutoencoder(**chosen), engine=engine, workers=workers, address=address, verbose=0 if quiet else 1)
    try:
        fleet.fit(data, series_column=series_column, output=output, time_column=time_column,
                  columns=split_list(columns), missing=missing, duplicates=duplicates, train_end=train_end, resume=resume)
    except KeyboardInterrupt:
        _interrupted(output, data, series_column)
        raise
    _finish(fleet.manifest_, "fitted", output / "manifest.parquet", quiet)


def _interrupted(output: Path, data: Path, series_column: str) -> None:
    """After Ctrl-C (or SIGTERM) in `fleet fit`: how many series are done and pending, and how to go on."""
    import pandas as pd

    manifest = output / "manifest.parquet"
    if not manifest.is_file():
        return
    statuses = pd.read_parquet(manifest, columns=["status"])["status"].value_counts()
    done, failed = int(statuses.get("ok", 0)), int(statuses.get("failed", 0))
    pending = int(statuses.sum()) - done - failed
    err.print(
        f"fleet: interrupted: {done} of {int(statuses.sum())} series fitted, {pending} pending"
        + (f", {failed} failed" if failed else "")
        + f"; the models are kept in {output}. To fit the rest, run the same command with --resume: "
        f"lstmae fleet fit {data} --series-column {series_column} -o {output} ... --resume",
        markup=False,
    )


@fleet_app.command("score")
@stoppable
def score(
    data: DataArg,
    models: ModelsOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder of scores: COLUMN=NAME/part-0.parquet per series (time, score, anomaly) and _manifest.parquet.", show_default=False)],
    engine: EngineOpt = "local",
    workers: WorkersOpt = None,
    address: AddressOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Score every series of DATA with its model, as Parquet partitioned by series; exit 3 if some failed."""
    fleet = _load(data, models, engine, workers, address, quiet)
    manifest = fleet.write_scores(data, output)
    _finish(manifest, "scored", output / "_manifest.parquet", quiet)


@fleet_app.command("detect")
@stoppable
def detect(
    data: DataArg,
    models: ModelsOpt,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write every interval to this .csv/.parquet (a series column first).")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Override every model's threshold.")] = None,
    min_gap: Annotated[Optional[int], typer.Option("--min-gap", help="Merge intervals closer than this many timesteps (default: each model's timesteps).")] = None,
    engine: EngineOpt = "local",
    workers: WorkersOpt = None,
    address: AddressOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Print the anomalous intervals of every series of DATA, series by series; exit 3 if some failed."""
    fleet = _load(data, models, engine, workers, address, quiet)

    intervals = fleet.detect(data, threshold=threshold, min_gap=min_gap)
    manifest = fleet.detect_manifest_
    column = fleet.series_column_
    ranked = intervals.sort_values("severity", ascending=False, kind="stable").reset_index(drop=True)
    scored = int((manifest["status"] == "ok").sum())
    if ranked.empty:
        out.print(f"no anomalous interval in the {scored} series scored", markup=False)
    else:  # one table, the series column first, the most severe interval of any series on top
        print_intervals(ranked, threshold, out, unit="interval")
        top = ranked.iloc[0]
        err.print(
            f"fleet detect: {len(ranked)} interval(s) in {ranked[column].nunique()} of {scored} series scored; "
            f"the most severe: {column} {top[column]!s} (severity {top['severity']:.3g}, peak score {top['peak_score']:.4g})",
            markup=False,
        )
    if output is not None:
        write_table(intervals, output)
        err.print(f"wrote {len(intervals)} interval(s) to {output}")
    _finish(manifest, "scored", None, quiet)


def _load(data: Path, models: Path, engine: str, workers: int | None, address: str | None, quiet: bool) -> Any:
    """The fleet in MODELS on the chosen engine (`fleet score` and `fleet detect`)."""
    check_engine(engine, workers, address)  # the options and the paths first: answered without pandas or torch
    check_fleet_path(models)
    if not data.is_dir():
        check_data_path(data)
    from lstmae.fleet.runner import Fleet

    return Fleet.load(models, engine=engine, workers=workers, address=address, verbose=0 if quiet else 1)


def _finish(manifest: Any, what: str, manifest_path: Path | None, quiet: bool) -> None:
    """The summary line (always when something failed), then exit 3 if something failed."""
    from lstmae.fleet.runner import summary, warning_counts

    failed = manifest[manifest["status"] != "ok"]
    where = f" ({manifest_path})" if manifest_path is not None else ""
    counts = warning_counts(manifest) if "warnings" in manifest else {}
    if counts:  # printed even with --quiet: fitted, but not necessarily well
        kinds = ", ".join(f"{kind} in {count} series" for kind, count in counts.items())
        err.print(f"fleet: warnings: {kinds}; read them in the manifest's warnings column{where}", markup=False)
    if failed.empty:
        if not quiet:
            err.print(f"fleet: {summary(manifest, what)}{where}", markup=False)
        return
    for row in failed.head(10).itertuples(index=False):
        err.print(f"fleet: series {row.series!r} {row.status}: {row.error}", markup=False)
    err.print(f"fleet: {summary(manifest, what)}{where}", markup=False)
    raise typer.Exit(SOME_FAILED)
