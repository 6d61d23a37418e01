"""Scaling: a fleet of real series on 1 and 2 local workers and on Ray, the driver's memory on a
50-million-row table, and the global model / DDP fragment of bench/scale_global.py.

Run from the repository root (lstmae importable, e.g. ``pip install -e '.[ray]'`` or ``PYTHONPATH=src``)::

    python bench/scale.py                 # everything: about 30-60 minutes on 2 idle cores
    python bench/scale.py --quick         # a smoke run: 24 short series, a 2M-row table (minutes)
    python bench/scale.py --part fleet    # one part (fleet | memory | global); the others' last
                                          # results (in --work) are kept in the report

Parts:

* **fleet**: at least 200 real series from the development data (every NAB file, the
  telemetry channel of every SMAP/MSL channel, every UCR series; each cut to its first
  ``--length`` points), one long Parquet table. ``lstmae fleet fit`` on it with the local
  engine at 1 and 2 workers and with Ray at 2 workers: series per minute, parallel
  efficiency, peak RSS of the driver and of the largest worker. Each run is its own child
  process (a clean driver RSS); workers are sampled from /proc (VmHWM) while it runs.
* **memory**: a generated long table of 50 million rows (``--rows``) in ``--series``
  series; a fleet fitted on each series' first 2,000 rows, then ``fleet score`` of the whole
  table: the driver's peak RSS (target: under 1 GB) and rows per second.
* **global**: runs ``bench/scale_global.py --out FRAGMENT`` (the global model and DDP,
  written by its own script) when that file exists, and includes its fragment.

Results of each part go to ``--work``/scale-<part>.json; the ``Scaling`` section of
bench/RESULTS.md is rebuilt from whichever parts have results.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from lstmae.data.benchmarks import dev_data_folder

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATA = dev_data_folder()  # $LSTMAE_BENCH_DATA, else ../shared/data beside the checkout
START, END = "<!-- scale:start -->", "<!-- scale:end -->"
#: The model every series gets in the fleet part: small and quick, so that a run of ~290
#: series takes minutes; the same for every engine.
FLEET_PARAMS = {"timesteps": 32, "units": 16, "epochs": 2, "windows_per_epoch": 512, "batch_size": 64,
                "validation_split": 0.1, "random_state": 0, "verbose": 0}
#: The memory part measures the driver, not the network: tiny models, every 32nd window scored.
MEMORY_PARAMS = {"timesteps": 32, "units": 8, "epochs": 1, "windows_per_epoch": 128, "score_stride": 32,
                 "random_state": 0, "verbose": 0}
RUNS = (("local", 1), ("local", 2), ("ray", 2))


# ------------------------------------------------------------------ data
def fleet_table(data: Path, length: int, limit: int | None, path: Path) -> dict:
    """Every NAB file, SMAP/MSL telemetry channel and UCR series (first ``length`` points) as one long table."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    def series():
        for file in sorted((data / "nab" / "data").rglob("*.csv")):
            yield f"nab/{file.parent.name}/{file.stem}", pd.read_csv(file)["value"].to_numpy(float)
        for file in sorted((data / "smap_msl").glob("*.npz")):
            z = np.load(file)
            yield f"smap_msl/{file.stem}", np.concatenate([z["train"][:, 0], z["test"][:, 0]]).astype(float)
        for file in sorted((data / "ucr").glob("*.txt.gz")):
            with gzip.open(file, "rt") as stream:
                yield f"ucr/{file.name.split('_')[0]}", np.array(stream.read(length * 40).split()[:length], float)

    writer, count, rows = None, 0, 0
    for name, values in series():
        if limit is not None and count >= limit:
            break
        values = values[:length]
        table = pa.table({"series": [name] * len(values), "step": np.arange(len(values)), "value": values})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        count, rows = count + 1, rows + len(values)
    writer.close()
    return {"series": count, "rows": rows, "length": length}


def generated_table(path: Path, rows: int, series: int) -> None:
    """``series`` noisy sines of ``rows // series`` points each, written in chunks (never all in memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    per = rows // series
    rng = np.random.default_rng(0)
    writer = None
    for number in range(series):
        t = np.arange(per)
        values = np.sin(2 * np.pi * t / (24 + number % 17)) + 0.1 * rng.standard_normal(per)
        table = pa.table({"series": pa.array([f"g{number:05d}"] * per).dictionary_encode(), "value": values})
        writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=1 << 20)
    writer.close()


def prefix_table(source: Path, path: Path, rows: int) -> None:
    """The first ``rows`` rows of every series of ``source`` (read row group by row group)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    reader = pq.ParquetFile(source)
    seen: dict[str, int] = {}
    writer = None
    for batch in reader.iter_batches(1 << 20):
        table = pa.Table.from_batches([batch]).cast(pa.schema([("series", pa.string()), ("value", pa.float64())]))
        keep = []
        for name in pc.unique(table["series"]).to_pylist():
            have = seen.get(name, 0)
            if have < rows:
                part = table.filter(pc.equal(table["series"], name)).slice(0, rows - have)
                seen[name] = have + part.num_rows
                keep.append(part)
        if keep:
            out = pa.concat_tables(keep)
            writer = writer or pq.ParquetWriter(path, out.schema)
            writer.write_table(out)
    writer.close()


# -------------------------------------------------------------- children
class WorkerPeak:
    """The largest VmHWM (peak RSS) among this process's descendants (local workers; Ray's raylet and workers), every second."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "WorkerPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.wait(1.0):
            parents: dict[int, int] = {}
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    try:  # "pid (name) state ppid ...": the name may hold spaces, so split after its ")"
                        parents[int(entry.name)] = int(Path(entry.path, "stat").read_text().rpartition(")")[2].split()[1])
                    except (OSError, ValueError, IndexError):
                        continue
            for pid in parents:
                ancestor, depth = parents.get(pid), 0
                while ancestor not in (None, 0, 1, me) and depth < 8:
                    ancestor, depth = parents.get(ancestor), depth + 1
                if ancestor != me:
                    continue
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)
                except OSError:
                    continue


def child_fleet(args: argparse.Namespace) -> dict:
    """In a child process: one fleet fit (and score) of ``args.table``; timings and peak memory."""
    from lstmae import LSTMAutoencoder
    from lstmae.fleet.runner import Fleet

    params = json.loads(args.params)
    result: dict = {}
    with WorkerPeak() as workers:
        if args.engine == "ray":  # a local Ray started first and timed apart, as a cluster is running before a fleet joins it
            import ray

            started = time.perf_counter()
            ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
            result["engine_start_seconds"] = time.perf_counter() - started
        fleet = Fleet(LSTMAutoencoder(**params), engine=args.engine, workers=args.workers, verbose=0)
        started = time.perf_counter()
        fleet.fit(args.table, series_column="series", output=args.output)
        result["fit_seconds"] = time.perf_counter() - started
        result["ok"] = int((fleet.manifest_["status"] == "ok").sum())
        result["failed"] = {str(r.series): str(r.error) for r in fleet.manifest_.itertuples() if r.status != "ok"}
        if args.score:
            started = time.perf_counter()
            fleet.write_scores(args.score, Path(args.output) / "scores")
            result["score_seconds"] = time.perf_counter() - started
    result["driver_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["worker_peak_mb"] = workers.peak_mb
    models = list(Path(args.output, "models").glob("*.safetensors"))
    result["model_bytes"] = float(np.mean([m.stat().st_size for m in models])) if models else None
    return result


def run_child(log, **options) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "child"]
    for key, value in options.items():
        if value is not None:
            command += [f"--{key.replace('_', '-')}", str(value)]
    log(f"  $ {' '.join(command[2:])}")
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------- parts
def part_fleet(args: argparse.Namespace, log) -> dict:
    table = args.work / "fleet.parquet"
    info = fleet_table(args.data, args.length, args.limit, table)
    log(f"fleet table: {info['series']} series, {info['rows']:,} rows (each cut to {args.length:,} points)")
    trials: dict[tuple[str, int], list[dict]] = {run: [] for run in RUNS}
    for trial in range(args.repeats):  # the engines interleaved, so that the machine's drift hits each alike
        for engine, workers in RUNS:
            output = args.work / f"fleet-{engine}-{workers}"
            shutil.rmtree(output, ignore_errors=True)  # a fresh fit each time, never a resumed one
            result = run_child(log, engine=engine, workers=workers, table=table, output=output, params=json.dumps(FLEET_PARAMS))
            log(f"  [{trial + 1}/{args.repeats}] {engine} x{workers}: {result['fit_seconds']:.1f} s, "
                f"driver {result['driver_peak_mb']:.0f} MB, worker {result['worker_peak_mb']:.0f} MB, {result['ok']} ok")
            trials[(engine, workers)].append(result)
    runs = []
    for (engine, workers), results in trials.items():  # the fastest trial of each (the least disturbed); peaks over all
        results = sorted(results, key=lambda r: r["fit_seconds"])
        result = dict(results[0])
        result.update(engine=engine, workers=workers, series_per_minute=info["series"] / result["fit_seconds"] * 60,
                      fit_seconds_all=[r["fit_seconds"] for r in results],
                      driver_peak_mb=max(r["driver_peak_mb"] for r in results),
                      worker_peak_mb=max(r["worker_peak_mb"] for r in results))
        runs.append(result)
    return {"table": info, "params": FLEET_PARAMS, "runs": runs}


def part_memory(args: argparse.Namespace, log) -> dict:
    table, prefix = args.work / "long.parquet", args.work / "long-prefix.parquet"
    if not table.exists() or table.stat().st_size == 0 or json.loads((args.work / "long.json").read_text() if (args.work / "long.json").exists() else "{}") != {"rows": args.rows, "series": args.series}:
        log(f"generating {args.rows:,} rows in {args.series} series ...")
        generated_table(table, args.rows, args.series)
        (args.work / "long.json").write_text(json.dumps({"rows": args.rows, "series": args.series}))
    prefix_table(table, prefix, 2000)
    result = run_child(log, engine="local", workers=2, table=prefix, output=args.work / "memory-fleet",
                       params=json.dumps(MEMORY_PARAMS), score=table)
    result.update(rows=args.rows, series=args.series, table_mb=table.stat().st_size / 2**20,
                  rows_per_second=args.rows / result["score_seconds"])
    log(f"  scored {args.rows:,} rows in {result['score_seconds']:.1f} s; driver peak {result['driver_peak_mb']:.0f} MB")
    return result


def part_global(args: argparse.Namespace, log) -> dict:
    script = HERE / "scale_global.py"
    if not script.exists():
        return {"fragment": None, "note": "bench/scale_global.py is not in this checkout"}
    fragment = args.work / "global.md"
    command = [sys.executable, str(script), "--out", str(fragment), *(["--quick"] if args.quick else [])]
    log(f"  $ {' '.join(command[1:])}")
    done = subprocess.run(command, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True)
    if done.returncode != 0 or not fragment.exists():
        return {"fragment": None, "note": f"bench/scale_global.py failed ({done.returncode}): {done.stderr[-500:]}"}
    return {"fragment": fragment.read_text()}


# ---------------------------------------------------------------- report
def projection(fleet: dict, cores: int = 16, nodes: tuple[int, ...] = (1, 10, 50), series: int = 100_000) -> list[str]:
    """100,000 series on Ray clusters of N nodes x C cores, from the measured per-series cost."""
    runs = {(r["engine"], r["workers"]): r for r in fleet["runs"]}
    one = runs.get(("local", 1))
    ray = runs.get(("ray", 2))
    if one is None:
        return []
    core_seconds = one["fit_seconds"] / fleet["table"]["series"]  # one series on one core
    efficiency = (ray["series_per_minute"] / (2 * one["series_per_minute"])) if ray else 1.0
    model_mb = (one["model_bytes"] or 0) / 2**20
    lines = [
        f"Cost model: one series of {fleet['table']['length']:,} points costs t = {core_seconds:.2f} core-seconds "
        f"(local, 1 worker); Ray keeps e = {efficiency:.2f} of linear speed-up at 2 workers here. For S series on "
        f"N nodes x C cores: time = S x t / (N x C x e) (+ the driver's one streaming pass over the table); "
        f"memory = one worker ({one['worker_peak_mb']:.0f} MB peak) per core, the driver bounded (memory part); "
        f"storage = S x {model_mb:.2f} MB of models + the scores (about 10 bytes per row in Parquet).",
        "",
        f"| {series:,} series on | time | worker memory per node | model storage |",
        "|---|---|---|---|",
    ]
    for n in nodes:
        hours = series * core_seconds / (n * cores * efficiency) / 3600
        took = f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"
        lines.append(f"| {n} node(s) x {cores} cores | {took} | {cores * one['worker_peak_mb'] / 1024:.1f} GB | "
                     f"{series * model_mb / 1024:.1f} GB |")
    return lines


def report(results: dict, args: argparse.Namespace) -> str:
    lines = ["## Scaling (`bench/scale.py`)", ""]
    lines.append(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
                 f"{'--quick (smoke run: not the measurement)' if args.quick else 'full run'}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
    lines.append("")
    fleet = results.get("fleet")
    if fleet:
        info = fleet["table"]
        lines += [
            "### Fleet: one model per series",
            "",
            f"{info['series']} real series (NAB, SMAP/MSL telemetry channels, UCR; each cut to its first "
            f"{info['length']:,} points: {info['rows']:,} rows), one long Parquet table; `Fleet.fit` with "
            f"`{json.dumps(fleet['params'])}`.",
            "",
            "| engine | workers | fit (s) | series / min | vs 1 worker | engine start (s), not in fit | driver peak RSS | largest worker peak RSS | ok |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        base = next((r for r in fleet["runs"] if (r["engine"], r["workers"]) == ("local", 1)), None)
        for r in fleet["runs"]:
            speedup = r["series_per_minute"] / base["series_per_minute"] if base else float("nan")
            start = f"{r['engine_start_seconds']:.1f}" if "engine_start_seconds" in r else "–"
            lines.append(f"| {r['engine']} | {r['workers']} | {r['fit_seconds']:.1f} | {r['series_per_minute']:.1f} | "
                         f"{speedup:.2f}x | {start} | {r['driver_peak_mb']:.0f} MB | {r['worker_peak_mb']:.0f} MB | "
                         f"{r['ok']}/{info['series']} |")
        if any("fit_seconds_all" in r for r in fleet["runs"]):
            lines += ["", "Each engine ran " + str(len(fleet["runs"][0].get("fit_seconds_all", [0]))) + " times, interleaved "
                      "(1 worker, 2 workers, Ray, then again), each a fresh fit; the table gives the fastest (the run the "
                      "machine disturbed least), the peaks are over all runs. Fit seconds of every run: "
                      + "; ".join(f"{r['engine']} x{r['workers']}: " + ", ".join(f"{t:.1f}" for t in r.get("fit_seconds_all", []))
                                  for r in fleet["runs"]) + "."]
        runs = {(r["engine"], r["workers"]): r for r in fleet["runs"]}
        if {("local", 1), ("local", 2), ("ray", 2)} <= set(runs):
            speedup = runs[("local", 2)]["series_per_minute"] / runs[("local", 1)]["series_per_minute"]
            ray_ratio = runs[("ray", 2)]["series_per_minute"] / runs[("local", 2)]["series_per_minute"]
            lines += [
                "",
                f"- local, 2 workers vs 1: **{speedup:.2f}x** (parallel efficiency {speedup / 2:.0%}); target >= 1.7x: "
                f"{'met' if speedup >= 1.7 else 'NOT met'}.",
                f"- ray vs local at 2 workers: **{ray_ratio:.2f}x** the series per minute; target within 15%: "
                f"{'met' if ray_ratio >= 0.85 else 'NOT met'}.",
            ]
        lines.append("- Ray's start (`ray.init` of a local Ray: its GCS server, raylet and agents, a few seconds) is timed "
                     "apart, as a cluster is running before a fleet joins it; its processes still share the 2 cores with its "
                     "2 workers during the fit.")
        lines.append("- worker peak RSS: the largest VmHWM among the driver's descendants, sampled every second "
                     "(local: the worker processes; Ray: its workers and also its raylet and GCS server).")
        failed = {name: error for r in fleet["runs"] for name, error in r["failed"].items()}
        if failed:
            lines.append(f"- series that failed (the same in every run): {', '.join(f'{k} ({v})' for k, v in list(failed.items())[:5])}")
        lines += ["", "#### Projection: 100,000 series on a Ray cluster", ""] + projection(fleet)
        lines.append("")
    memory = results.get("memory")
    if memory:
        lines += [
            "### Driver memory: fleet-scoring a long table",
            "",
            f"`fleet score` of a generated table of {memory['rows']:,} rows ({memory['series']} series, "
            f"{memory['table_mb']:.0f} MB of Parquet), local engine, 2 workers, models fitted on each series' first 2,000 rows "
            f"(`{json.dumps(MEMORY_PARAMS)}`):",
            "",
            f"- driver peak RSS: **{memory['driver_peak_mb']:.0f} MB** (target < 1 GB: {'met' if memory['driver_peak_mb'] < 1024 else 'NOT met'}); "
            f"largest worker: {memory['worker_peak_mb']:.0f} MB",
            f"- {memory['score_seconds']:.0f} s for the table (staging included): {memory['rows_per_second']:,.0f} rows/s",
            "",
        ]
    glob = results.get("global")
    if glob:
        lines += [glob["fragment"].rstrip() if glob.get("fragment") else f"_Global model and DDP: {glob['note']}._", ""]
    else:
        lines += ["### Global model and DDP", "",
                  "Measured by `bench/scale_global.py` on its own (`--part global` runs it from here): "
                  "bench/RESULTS-scale-global.md.", ""]
    return "\n".join(lines)


def write_results(text: str, path: Path) -> None:
    from perf import write_results as write_section  # bench/ is on sys.path when this script runs

    write_section(text, path, START, END)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="run", choices=["run", "child"], help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=["all", "fleet", "memory", "global", "report"], default="all",
                        help="one part, or 'report': rebuild the section from the parts' last results only")
    parser.add_argument("--quick", action="store_true", help="24 series of 1,000 points, a 2M-row table: minutes")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lstmae-scale"))
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--length", type=int, default=None, help="points per fleet series (default 4,000; quick 1,000)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many fleet series (default all; quick 24)")
    parser.add_argument("--rows", type=int, default=None, help="rows of the memory table (default 50M; quick 2M)")
    parser.add_argument("--series", type=int, default=None, help="series of the memory table (default 100; quick 20)")
    parser.add_argument("--repeats", type=int, default=2, help="fleet runs of each engine, interleaved; the fastest is reported")
    # child options
    for name in ("engine", "table", "output", "params", "score"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode == "child":
        print(json.dumps(child_fleet(args)))
        return
    args.length = args.length or (1000 if args.quick else 4000)
    args.limit = args.limit or (24 if args.quick else None)
    args.rows = args.rows or (2_000_000 if args.quick else 50_000_000)
    args.series = args.series or (20 if args.quick else 100)
    args.work = args.work / ("quick" if args.quick else "full")
    args.work.mkdir(parents=True, exist_ok=True)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    parts = {"all": ("fleet", "memory", "global"), "report": ()}.get(args.part, (args.part,))
    for part in parts:
        log(f"[{part}]")
        started = time.perf_counter()
        result = {"fleet": part_fleet, "memory": part_memory, "global": part_global}[part](args, log)
        (args.work / f"scale-{part}.json").write_text(json.dumps(result, indent=1))
        log(f"[{part}] done in {time.perf_counter() - started:.0f} s")
    results = {part: json.loads((args.work / f"scale-{part}.json").read_text())
               for part in ("fleet", "memory", "global") if (args.work / f"scale-{part}.json").exists()}
    write_results(report(results, args), args.results)
    log(f"wrote the Scaling section of {args.results}")


if __name__ == "__main__":
    main()
