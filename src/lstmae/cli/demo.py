"""The main job on bundled real data: NAB's NYC taxi passenger counts.

Fit on the early months (believed mostly normal), score every half hour of
the whole series, and compare the detected intervals with the five events
NAB labels (NYC marathon, Thanksgiving, Christmas, New Year, the January
2015 blizzard). Writes the scores CSV, the intervals CSV, the model, a plot and
the interactive HTML report (the five events shaded as known labels).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console

from lstmae.datasets import NYC_TAXI_EVENTS, load_nyc_taxi, match_events, missed_events
from lstmae.estimator import LSTMAutoencoder
from lstmae.persistence.atomic import write_table
from lstmae.reports.html import write_report
from lstmae.reports.plots import plot_detection
from lstmae.reports.terminal import print_intervals

#: The demo's settings, chosen once for this series (a day is 48 half hours) and
#: kept fixed: the demo shows the workflow, it is not tuned on the labels.
TRAIN_END = "2014-10-15"
TIMESTEPS = 48
UNITS = (32, 8)
EPOCHS = 30
STRIDE = 2
BATCH_SIZE = 64
SEED = 0


@dataclass(frozen=True)
class DemoResult:
    intervals: pd.DataFrame  # detected intervals with an "event" column
    missed: list  # KnownEvent objects no interval overlaps
    scores_path: Path
    intervals_path: Path
    plot_path: Path
    model_path: Path
    report_path: Path
    seconds: float


def run_demo(output_dir: str | Path, console: Console | None = None, verbose: int = 1) -> DemoResult:
    """Run the demo job and print its report; return what it found and wrote."""
    console = console or Console()
    started = time.perf_counter()
    output = Path(output_dir)
    series = load_nyc_taxi()  # (10320, 1), half-hourly, DatetimeIndex
    train = series[series.index < TRAIN_END]
    console.print(
        f"NYC taxi passengers (NAB, MIT): {len(series)} half-hours, {series.index[0]:%Y-%m-%d} to "
        f"{series.index[-1]:%Y-%m-%d}; training on the {len(train)} before {TRAIN_END}."
    )
    model = LSTMAutoencoder(
        timesteps=TIMESTEPS,
        units=UNITS,
        stride=STRIDE,
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        random_state=SEED,
        verbose=verbose,
    ).fit(train)
    history = model.history_
    console.print(
        f"model: repeat design, windows of {TIMESTEPS} steps (one day), units {UNITS}; "
        f"{len(history['loss'])} epochs, loss {history['loss'][-1]:.3f}, "
        f"val_loss {history['val_loss'][-1]:.3f}; threshold {model.threshold_:.3g} "
        f"(1.25 x the highest score on the training months)."
    )

    scores = model.anomaly_score(series).to_numpy()  # a Series for a frame; the table below has its own index
    reconstruction = model.reconstruct(series)
    intervals = match_events(model.detect(series), NYC_TAXI_EVENTS)
    missed = missed_events(intervals, NYC_TAXI_EVENTS)

    table = pd.DataFrame({"timestamp": series.index, "value": series["value"].to_numpy(), "reconstruction": reconstruction["value"].to_numpy(), "score": scores, "anomaly": (scores > model.threshold_).astype(int)})
    scores_path = write_table(table, output / "scores.csv")
    intervals_path = write_table(intervals, output / "intervals.csv")
    model_path = model.save(output / "model.safetensors")
    plot_path = plot_detection(
        series, reconstruction, scores, model.threshold_, intervals, output / "nyc_taxi.png",
        title="lstmae demo: NYC taxi passengers (NAB)", events=NYC_TAXI_EVENTS, trained=model.seen_in_training(series),
    )
    labelled = pd.Series(False, index=series.index)  # NAB's five windows, shaded as known anomalies
    for event in NYC_TAXI_EVENTS:
        labelled |= (series.index >= event.start) & (series.index <= event.end)
    report_path = write_report(
        model, series, output / "report.html", labels=labelled, title="lstmae demo: NYC taxi passengers (NAB)"
    )

    shown = intervals[["start_time", "end_time", "length", "peak_score", "severity", "event"]].copy()
    shown["event"] = shown["event"].replace("", "-")
    print_intervals(shown, model.threshold_, console)
    found = len(NYC_TAXI_EVENTS) - len(missed)
    console.print(f"known events found: {found} of {len(NYC_TAXI_EVENTS)}"
                  + (f"; missed: {', '.join(e.name for e in missed)}" if missed else ""))
    unmatched = int((intervals["event"] == "").sum())
    console.print(f"intervals matching no labelled event: {unmatched}")
    seconds = time.perf_counter() - started
    console.print(f"wrote {scores_path}, {intervals_path}, {model_path}, {plot_path}, {report_path} ({seconds:.0f} s)")
    return DemoResult(intervals, missed, scores_path, intervals_path, plot_path, model_path, report_path, seconds)
