"""Panels of hundreds to a thousand training samples (issue 25, item 5): what each part of lstmae's panel score is worth.

`bench/panel.py`'s development datasets train on 10 to 34 samples a model;
this script adds panels from real data with far more, runs them through the
same task (`panel.score_task`: lstmae's default, each part alone, the peers,
the weight grid) and chooses the weights by leave-one-dataset-out over the
development datasets and the new panels together.

PLAID (sktime 1.2.0's bundled copy, 1,074 appliance-current samples of 100 to
1,344 steps in 11 classes): TRAIN and TEST pooled, every sample resampled
linearly to `PLAID_LENGTH` steps (lstmae's `.ts` reader, as JapaneseVowels in
panel.py). For each class c: normal = the other ten classes; `PLAID_HELD_OUT`
of them, drawn with ``numpy.random.default_rng(index of c)``, are held-out
normal test samples, the rest (799 to 948) is the training set; the test set is
those normal samples plus every sample of class c (anomalies).

Cycles of the UCR dev series (`/work/shared/data/ucr`). The rule, written
before any score was computed: the period of a series is `estimate_period` of
its training prefix (the first local maximum of the autocorrelation after its
first zero crossing that reaches 0.8 of the highest value up to ``min(train_end
// 2, 5000)``); a series qualifies with at least 1,000 whole cycles in the
prefix; of those, the three with the most cycles, at most one per recording
(`recording`). No series qualifies (the most is 820 cycles), and the UCR
series of one recording overlap (the mit14046longtermecg series share
stretches of thousands of values), so pooling them would test on training
cycles. The fallback, set after counting cycles and before any score: the
three series with the most training cycles, one per recording, ties to the
plain variant (`CYCLE_SERIES`). Training = the cycles wholly inside the
prefix, cut from step 0; test = the cycles cut from ``train_end`` on; a test
cycle is anomalous when it holds a labelled point (`cycle_panel`).

The data: sktime is not a dependency; only its data files are read::

    python3 -m venv bench/.venv-sktime && bench/.venv-sktime/bin/pip install --no-deps sktime

and aeon's for the development datasets (see panel.py). Then::

    PYTHONPATH=src .venv/bin/python bench/panel_large.py --json bench/panel-large.json --markdown bench/panel-large.md
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import panel  # bench/ is not a package

PLAID_LENGTH = 200
PLAID_HELD_OUT = 100
MIN_CYCLES = 1000
#: The fallback's picks (see the module's docstring); `select_cycle_series` reproduces them.
CYCLE_SERIES = (
    "mit14046longtermecg_81214_143000_143300",
    "tiltAPB1_100000_114283_114350",
    "tilt12744mtable_100000_203355_203400",
)


class Task(NamedTuple):  # not a dataclass: the tests load this file without registering it in sys.modules
    """One novelty task: fit on ``normal`` (S, T, F), score ``test`` (S', T, F); ``truth`` (S',) 1 = anomaly."""

    dataset: str
    label: str
    normal: np.ndarray
    test: np.ndarray
    truth: np.ndarray


# ------------------------------------------------------------------ PLAID
def sktime_data_dir(given: str | None = None) -> Path:
    """sktime's bundled datasets: ``given``, $LSTMAE_SKTIME_DATA, or the one in bench/.venv-sktime."""
    for candidate in (given, os.environ.get("LSTMAE_SKTIME_DATA")):
        if candidate:
            return Path(candidate)
    found = sorted(glob.glob(str(HERE / ".venv-sktime" / "lib" / "python*" / "site-packages" / "sktime" / "datasets" / "data")))
    if not found:
        sys.exit("sktime's data not found: python3 -m venv bench/.venv-sktime && bench/.venv-sktime/bin/pip install --no-deps sktime")
    return Path(found[-1])


def plaid_tasks(root: Path, length: int = PLAID_LENGTH, held_out: int = PLAID_HELD_OUT) -> list[Task]:
    """One task per PLAID class (the module's docstring says how); samples (length, 1)."""
    from lstmae.data.ts import read_ts

    parts = [read_ts(root / "PLAID" / f"PLAID_{split}.ts", length=length) for split in ("TRAIN", "TEST")]
    values = np.concatenate([p.values for p in parts])  # (1074, length, 1)
    labels = np.concatenate([p.labels for p in parts])
    tasks = []
    for index, label in enumerate(parts[0].classes):
        normal = np.random.default_rng(index).permutation(np.flatnonzero(labels != label))
        test = np.concatenate([normal[:held_out], np.flatnonzero(labels == label)])
        truth = (labels[test] == label).astype(int)
        tasks.append(Task("PLAID", label, values[normal[held_out:]], values[test], truth))
    return tasks


# ----------------------------------------------------------------- cycles
def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """(n,) -> (max_lag + 1,): the biased autocorrelation of the standardised series, 1 at lag 0."""
    z = (x - x.mean()) / (x.std() + 1e-12)
    spectrum = np.fft.rfft(z, 2 * len(z))
    return np.fft.irfft(spectrum * np.conj(spectrum))[: max_lag + 1] / len(z)


def estimate_period(x: np.ndarray, max_lag: int) -> tuple[int | None, float]:
    """(period, autocorrelation there) of (n,) ``x``: the first local maximum after the first lag at or
    below 0 that reaches 0.8 of the highest autocorrelation from there to ``max_lag``; (None, nan) if none."""
    r = autocorrelation(x, max_lag)
    below = np.flatnonzero(r <= 0)
    if not len(below) or below[0] >= max_lag - 1:
        return None, float("nan")
    first = max(int(below[0]), 1)
    highest = r[first:max_lag].max()
    for lag in range(first, max_lag):
        if r[lag] >= r[lag - 1] and r[lag] >= r[lag + 1] and r[lag] >= 0.8 * highest:
            return lag, float(r[lag])
    return None, float("nan")


def cycle_starts(begin: int, end: int, period: int) -> np.ndarray:
    """(k,) the starts of the whole cycles of ``period`` steps cut from ``begin`` within [begin, end)."""
    return begin + period * np.arange((end - begin) // period)


def cycle_panel(values: np.ndarray, labels: np.ndarray, train_end: int, period: int):
    """A series (n,) with labels (n,) -> (train (S, period, 1), test (S', period, 1), truth (S',) 0/1).

    Training cycles lie wholly in [0, train_end); test cycles are cut from ``train_end`` on (a partial
    cycle at either end is dropped); a test cycle is anomalous when any of its points is labelled.
    """
    offsets = np.arange(period)
    train = values[cycle_starts(0, train_end, period)[:, None] + offsets]
    test_index = cycle_starts(train_end, len(values), period)[:, None] + offsets
    return train[..., None], values[test_index][..., None], labels[test_index].any(axis=1).astype(int)


def recording(name: str) -> str:
    """A UCR series' recording: ``<name>_<train_end>_<start>_<end>`` -> the name without the DISTORTED/NOISE
    prefix and leading or trailing digits (DISTORTED2sddb40 and sddb40, ECG2 and ECG4 are one recording)."""
    return re.sub(r"^(DISTORTED|NOISE)?\d*|\d+$", "", re.sub(r"(_\d+){3}$", "", name))


def describe_series(folder: Path) -> list[dict]:
    """Every UCR series in ``folder``: name, n, train_end, period, its autocorrelation, training cycles."""
    from lstmae.data.benchmarks import list_benchmark

    rows = []
    for name, load in list_benchmark(folder, "ucr"):
        series = load()
        period, strength = estimate_period(series.values[: series.train_end, 0], min(series.train_end // 2, 5000))
        rows.append({"name": name.split("UCR_Anomaly_")[1], "n": series.n, "train_end": series.train_end,
                     "period": period, "acf": strength, "cycles": series.train_end // period if period else 0})
    return rows


def select_cycle_series(rows: list[dict], count: int = 3) -> tuple[list[dict], bool]:
    """(the chosen rows, whether they met `MIN_CYCLES`): the rule, else the fallback (module docstring)."""
    def variant(row):  # the plain series before its DISTORTED / NOISE copies
        return row["name"].startswith(("DISTORTED", "NOISE"))

    ranked = sorted((r for r in rows if r["period"]), key=lambda r: (-r["cycles"], variant(r), r["name"]))
    qualifying = [r for r in ranked if r["cycles"] >= MIN_CYCLES]
    chosen, seen = [], set()
    for row in qualifying or ranked:
        if recording(row["name"]) not in seen and len(chosen) < count:
            chosen.append(row)
            seen.add(recording(row["name"]))
    return chosen, bool(qualifying)


def cycle_tasks(folder: Path, names: tuple[str, ...] = CYCLE_SERIES) -> tuple[list[Task], list[dict]]:
    """One task per named UCR series (its cycle panel) and each panel's description."""
    from lstmae.data.benchmarks import list_benchmark

    tasks, described = [], []
    for name, load in list_benchmark(folder, "ucr"):
        short = name.split("UCR_Anomaly_")[1]
        if short not in names:
            continue
        series = load()
        period, strength = estimate_period(series.values[: series.train_end, 0], min(series.train_end // 2, 5000))
        train, test, truth = cycle_panel(series.values[:, 0], series.labels, series.train_end, period)
        label = recording(short)
        tasks.append(Task(f"cycles:{label}", label, train, test, truth))
        described.append({"dataset": f"cycles:{label}", "series": short, "n": series.n, "train_end": series.train_end,
                          "period": period, "acf": round(strength, 3), "train": len(train), "test": len(test),
                          "anomalous": int(truth.sum())})
    return tasks, described


# ------------------------------------------------------------------ report
def describe_tasks(tasks: list[Task]) -> dict:
    """Counts of a dataset's tasks: training and test samples, anomalies, length (min-max over tasks)."""
    def span(values):
        return f"{min(values)}" if min(values) == max(values) else f"{min(values)}-{max(values)}"

    return {"tasks": len(tasks), "train": span([len(t.normal) for t in tasks]), "test": span([len(t.truth) for t in tasks]),
            "anomalous": span([int(t.truth.sum()) for t in tasks]), "length": tasks[0].normal.shape[1]}


def folds_table(folds: list[dict], results: dict) -> list[str]:
    """Leave-one-dataset-out: the weights chosen on the others, their AUC-ROC there and on the held-out one."""
    header = ("| held-out dataset | weights chosen on the others (rec, lat, inp) | AUC-ROC on the others | "
              "AUC-ROC held out | default | input alone |")
    lines = [header, "|---|---|---|---|---|---|"]
    for f in folds:
        grid = results[f["held_out"]]["grid"]
        lines.append(f"| {f['held_out']} | {f['weights']} | {f['train_auc_roc']:.3f} | {f['auc_roc']:.3f} | "
                     f"{results[f['held_out']]['methods']['lstmae'][0]:.3f} | {grid['0.0,0.0,1.0']:.3f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aeon", help="aeon's data folder (default: bench/.venv-aeon)")
    parser.add_argument("--sktime", help="sktime's data folder (default: bench/.venv-sktime)")
    parser.add_argument("--ucr", default="/work/shared/data/ucr", help="the UCR dev series")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--plaid-classes", help="comma-separated PLAID classes (default: all 11)")
    parser.add_argument("--skip-dev", action="store_true", help="only the large panels (no leave-one-dataset-out)")
    parser.add_argument("--json", help="write all results here")
    parser.add_argument("--markdown", help="write the tables here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen, met = select_cycle_series(describe_series(Path(args.ucr)))
    if [r["name"] for r in chosen] != list(CYCLE_SERIES):
        sys.exit(f"the selection rule now picks {[r['name'] for r in chosen]}, not CYCLE_SERIES; update it and the report")
    print(f"cycle series (rule met: {met}): {[(r['name'], r['period'], r['cycles']) for r in chosen]}", flush=True)
    plaid = plaid_tasks(sktime_data_dir(args.sktime))
    if args.plaid_classes:
        plaid = [t for t in plaid if t.label in args.plaid_classes.split(",")]
    cycles, cycle_rows = cycle_tasks(Path(args.ucr))
    large: dict[str, list[Task]] = {"PLAID": plaid, **{t.dataset: [t] for t in cycles}}
    results, began = {}, time.perf_counter()
    if not args.skip_dev:
        root = panel.aeon_data_dir(args.aeon)
        for name in panel.DEV:
            print(f"{name}: novelty", flush=True)
            results[name] = panel.novelty(name, root, seeds, {})
    descriptions = {}
    for name, tasks in large.items():
        scored = []
        for task in tasks:
            scored.append(panel.score_task(task.normal, task.test, task.truth, seeds, {}))
            print(f"  {name} {task.label}: train {len(task.normal)}, lstmae {scored[-1]['methods']['lstmae'][0][0]:.3f}, "
                  f"knn {scored[-1]['methods']['knn'][0][0]:.3f}, fit {np.median(scored[-1]['seconds']):.1f} s", flush=True)
        results[name] = panel.summarise(scored, len(tasks))
        descriptions[name] = describe_tasks(tasks)
    folds = panel.leave_one_dataset_out({n: r["grid"] for n, r in results.items()}) if not args.skip_dev else None
    settings = f"seeds {seeds}, LSTMAutoencoder defaults, torch 1 thread; {time.perf_counter() - began:.0f} s in all"
    text = panel.markdown({n: results[n] for n in large}, None, {}, settings)
    text += "\n### The panels\n\n| dataset | tasks | training samples | test samples | anomalous | length | median fit s |\n"
    text += "|---|---|---|---|---|---|---|\n" + "".join(
        f"| {n} | {d['tasks']} | {d['train']} | {d['test']} | {d['anomalous']} | {d['length']} | "
        f"{results[n]['median_fit_seconds']:.1f} |\n" for n, d in descriptions.items())
    if folds:
        text += "\n### Leave-one-dataset-out over the development datasets and the large panels\n\n"
        text += "\n".join(folds_table(folds, results)) + "\n"
        text += f"| **out-of-fold mean** | | | **{np.mean([f['auc_roc'] for f in folds]):.3f}** | | |\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "folds": folds, "descriptions": descriptions,
                                               "cycle_series": cycle_rows, "rule_met": met}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
