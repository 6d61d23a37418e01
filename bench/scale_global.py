"""Scaling benchmark, global-model half (issue 14, item 4): DDP at 1 vs 2 CPU processes, and one global
model against one model per series. Writes a markdown fragment that ``bench/scale.py`` includes.

1. **DDP** (`--part ddp`): one global model (`lstmae.data.collection`) on every NAB series of the data
   folder, stride-1 windows (over 300,000 of them), trained for ``--epochs`` epochs of
   ``--windows-per-epoch`` windows with Lightning's DDP on the CPU (gloo) at 1 and 2 processes.
   ``batch_size`` is per process (Lightning's convention), so 2 processes take half the optimizer steps
   of one over the same windows. Measured in the rank-0 process: training windows per second (a
   Lightning callback times the fit loop alone, not reading or the post-training scoring pass, which
   every process runs), and the validation loss (each series' last 10% of windows) of the last and of
   the best epoch. Each run is a separate ``python bench/scale_global.py ddp-worker`` process, because
   Lightning's launcher starts the second process by running the same command again.
2. **Global vs per-series** (`--part quality`): related series from the data folder (default: NAB's
   realAWSCloudwatch files; ``--related 'smap/A-*'`` for the SMAP channels of one letter). Per series:
   exactly `bench/quality.py`'s protocol (`lstmae.evaluation.series.evaluate_series`: fit on the series' normal
   prefix, score it all, TSB-AD's VUS-PR). Global: one model fitted on all the prefixes at once (each
   series scaled by its own statistics, each with its own threshold), then each series scored and
   measured the same way. Same estimator parameters for both.

    PYTHONPATH=src python bench/scale_global.py --out bench/RESULTS-scale-global.md
    PYTHONPATH=src python bench/scale_global.py --quick --out /tmp/global.md   # minutes, not an hour
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from lstmae.data.benchmarks import dev_data_folder

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

DEFAULT_DATA = dev_data_folder()  # $LSTMAE_BENCH_DATA, else ../shared/data beside the checkout
#: The DDP part's model: small and framed like the defaults, so an epoch is seconds, not minutes.
DDP_PARAMS = {"timesteps": 32, "units": 32, "batch_size": 64, "validation_split": 0.1, "patience": 1000,
              "scorer": "reconstruction", "random_state": 0, "verbose": 0}


def nab_collection(data: Path) -> dict[str, np.ndarray]:
    """Every NAB series of the data folder, whole, as {name: values (n, 1)}."""
    from quality import available  # bench/quality.py: the same series index

    entries = available(data)
    return {name: entries[name]().values for name in sorted(entries) if name.startswith("nab/")}


# ---------------------------------------------------------------------------------------------- DDP
def ddp_worker(args) -> None:
    """One DDP fit (every process runs this; rank 0 writes the result as JSON)."""
    import lightning.pytorch as pl
    import torch

    from lstmae import LSTMAutoencoder
    from lstmae.data.collection import series_cap
    from lstmae.data.windows import n_windows
    from lstmae.persistence.atomic import is_rank_zero
    from lstmae.params import n_train

    torch.set_num_threads(1)  # one core per process: the 2-process run gets 2 cores, the 1-process run 1

    class Clock(pl.Callback):
        def on_train_start(self, trainer, module):
            self.began = time.perf_counter()

        def on_train_end(self, trainer, module):
            self.seconds = time.perf_counter() - self.began

    series = nab_collection(args.data)
    windows = sum(n_windows(len(v), DDP_PARAMS["timesteps"], 1) for v in series.values())
    clock = Clock()
    options = {"accelerator": "cpu", "callbacks": [clock]}
    if args.processes > 1:
        options.update(strategy="ddp", devices=args.processes)
    model = LSTMAutoencoder(**DDP_PARAMS, epochs=args.epochs, windows_per_epoch=args.windows_per_epoch, trainer_kwargs=options)
    model.fit(series)
    if not is_rank_zero():
        return
    cap = series_cap("auto", args.windows_per_epoch, len(series))  # the epoch shared between the series
    trained = args.epochs * sum(min(cap, n_train(n_windows(len(v), DDP_PARAMS["timesteps"], 1), DDP_PARAMS["validation_split"])) for v in series.values())
    history = model.history_
    result = {
        "processes": args.processes, "series": len(series), "windows": windows, "epochs": len(history["loss"]),
        "trained_windows": trained, "train_seconds": clock.seconds, "windows_per_second": trained / clock.seconds,
        "val_loss_last": history["val_loss"][-1], "val_loss_best": min(history["val_loss"]),
        "fit_seconds": model.fit_seconds_,
    }
    Path(args.result).write_text(json.dumps(result))


def ddp_part(args) -> list[dict]:
    results = []
    for processes in (1, 2):
        target = Path(args.scratch) / f"ddp-{processes}.json"
        target.unlink(missing_ok=True)
        command = [sys.executable, str(Path(__file__).resolve()), "ddp-worker", "--processes", str(processes),
                   "--epochs", str(args.epochs), "--windows-per-epoch", str(args.windows_per_epoch),
                   "--data", str(args.data), "--result", str(target)]
        print(f"DDP, {processes} process(es): {' '.join(command[1:])}", flush=True)
        subprocess.run(command, check=True)
        results.append(json.loads(target.read_text()))
        print(json.dumps(results[-1]), flush=True)
    return results


# ------------------------------------------------------------------------------- global vs per-series
def quality_part(args) -> tuple[list[dict], list[dict]]:
    from quality import available

    from lstmae import LSTMAutoencoder
    from lstmae.evaluation.series import METRICS, evaluate_series, parse_params
    from lstmae.evaluation import metrics

    params = {"verbose": 0, "random_state": 0, **parse_params(args.params)}
    entries = available(args.data)
    names = [name for name in sorted(entries) if fnmatch.fnmatchcase(name, args.related)]
    if not names:
        sys.exit(f"scale_global.py: no series matches --related {args.related!r} under {args.data}.")
    series = [entries[name]() for name in names]
    print(f"{len(series)} related series ({args.related}); params {json.dumps(params, sort_keys=True)}", flush=True)

    per_series = []
    for one in series:
        row = evaluate_series(one, params)  # bench/quality.py's protocol, unchanged
        per_series.append(row)
        print(f"  per-series {one.name}: VUS-PR {row['vus_pr']:.3f} ({row['status']}), {row['seconds']:.1f} s", flush=True)

    began = time.perf_counter()
    model = LSTMAutoencoder(**params).fit({one.name: one.values[: one.train_end] for one in series})
    fitted = time.perf_counter()
    scores = model.anomaly_score({one.name: one.values for one in series})
    done = time.perf_counter()
    global_rows = []
    for one in series:  # the metric lines of lstmae.evaluation.series.evaluate_series, on the global model's scores
        row = {"name": one.name, "status": "ok", **{m: math.nan for m in METRICS}}
        positives = int(one.labels.sum())
        if 0 < positives < one.n:
            window = metrics.sliding_window(one.values)
            result = metrics.evaluate(one.labels, np.asarray(scores[one.name]), window=window,
                                      train_end=one.train_end if one.group == "ucr" else None)
            row.update({m: result.get(m, math.nan) for m in METRICS})
        else:
            row["status"] = "no-anomaly" if positives == 0 else "all-anomaly"
        global_rows.append(row)
        print(f"  global {one.name}: VUS-PR {row['vus_pr']:.3f} ({row['status']})", flush=True)
    global_rows[0]["fit_seconds"], global_rows[0]["score_seconds"] = fitted - began, done - fitted
    return per_series, global_rows


# ------------------------------------------------------------------------------------------ report
def mean(rows: list[dict], key: str) -> float:
    values = [row[key] for row in rows if row.get("status") == "ok" and not math.isnan(row[key])]
    return float(np.mean(values)) if values else math.nan


def fragment(args, ddp: list[dict] | None, quality: tuple[list[dict], list[dict]] | None) -> str:
    import platform

    import torch

    lines = ["### Global model and DDP (bench/scale_global.py)", ""]
    lines.append(
        f"{platform.machine()}, {os.cpu_count()} CPU(s) shared with other jobs, torch {torch.__version__}; "
        f"{'quick settings' if args.quick else 'full settings'}: `{' '.join(sys.argv[1:])}`."
    )
    lines.append("")
    if ddp:
        first = ddp[0]
        lines += [
            f"**DDP on the CPU (gloo), 1 vs 2 processes, one thread each.** One global model on {first['series']} NAB "
            f"series: {first['windows']:,} stride-1 windows of {DDP_PARAMS['timesteps']}; {args.epochs} epochs of "
            f"{args.windows_per_epoch:,} windows (shared between the series), batch_size {DDP_PARAMS['batch_size']} per process.",
            "",
            "| processes | training s | windows/s | speed-up | val loss (last epoch) | val loss (best) |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for row in ddp:
            lines.append(
                f"| {row['processes']} | {row['train_seconds']:.1f} | {row['windows_per_second']:,.0f} | "
                f"{row['windows_per_second'] / first['windows_per_second']:.2f}x | {row['val_loss_last']:.4f} | {row['val_loss_best']:.4f} |"
            )
        lines += ["", "With 2 processes the global batch is twice as large, so an epoch takes half the optimizer steps; "
                  "the validation loss shows what that costs at the same number of epochs.", ""]
    if quality:
        per, glob = quality
        lines += [
            f"**Global model vs one model per series**, {len(per)} related series (`{args.related}`), "
            f"bench/quality.py's protocol and metric (fit on each normal prefix, VUS-PR of TSB-AD), same parameters "
            f"(`{args.params or '{}'}`, random_state 0).",
            "",
            "| models | mean VUS-PR | mean AUC-PR | series measured | fit seconds (all series) |",
            "|---|---:|---:|---:|---:|",
            f"| one per series | {mean(per, 'vus_pr'):.3f} | {mean(per, 'auc_pr'):.3f} | "
            f"{sum(r['status'] == 'ok' for r in per)} | {sum(r.get('fit_seconds', 0) or 0 for r in per):.0f} |",
            f"| one global model | {mean(glob, 'vus_pr'):.3f} | {mean(glob, 'auc_pr'):.3f} | "
            f"{sum(r['status'] == 'ok' for r in glob)} | {glob[0]['fit_seconds']:.0f} |",
            "",
            "| series | per-series VUS-PR | global VUS-PR |",
            "|---|---:|---:|",
        ]
        for a, b in zip(per, glob):
            lines.append(f"| {a['name']} | {a['vus_pr']:.3f} | {b['vus_pr']:.3f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="run", choices=["run", "ddp-worker"], help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=["all", "ddp", "quality"], default="all")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, help="where to write the markdown fragment")
    parser.add_argument("--epochs", type=int, default=4, help="DDP: epochs (no early stopping)")
    parser.add_argument("--windows-per-epoch", type=int, default=16384, help="DDP: training windows per epoch")
    parser.add_argument("--related", default="nab/realAWSCloudwatch/*", help="glob of the related series (quality part)")
    parser.add_argument("--params", default="", help="estimator keywords as JSON for the quality part")
    parser.add_argument("--quick", action="store_true", help="fewer windows, epochs and series: minutes")
    parser.add_argument("--scratch", default="/tmp", help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode == "ddp-worker":
        return ddp_worker(args)
    if args.quick:
        args.epochs, args.windows_per_epoch = 2, 8192
        args.params = args.params or json.dumps({"epochs": 10})
    ddp = ddp_part(args) if args.part in ("all", "ddp") else None
    quality = quality_part(args) if args.part in ("all", "quality") else None
    text = fragment(args, ddp, quality)
    print(text)
    if args.out is not None:
        from lstmae.persistence.atomic import atomic_target

        with atomic_target(args.out, "the fragment") as temporary:
            temporary.write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
