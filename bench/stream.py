"""Streaming benchmark: `LSTMAutoencoder.stream()` throughput, single-point latency and memory over a long stream.

The model has the default parameters (units 32, timesteps "auto", score_stride
"auto", scorer "combined" with its latent reference, window aggregation), trained
briefly (``--epochs``, default 2: the speed depends on the network's shape, not on
how well it is trained) on a noisy sine of period ``--period`` with
``--train`` points, so that the latent reference is as large as a real fit makes it.
Everything runs on one core (``torch.set_num_threads(1)``).

Measured:

* throughput (points/s) fed in blocks of 1, 10 and 100 points (``--points`` each);
* latency of a single-point ``update`` (median, p99, max) from the 1-point run;
* resident memory (RSS) every ``--points-memory / 10`` points while ``--points-memory``
  points (default 1,000,000) go through in blocks of 100: flat memory means the
  last sample is within a few MB of the first.

Targets (issue 15): >= 20,000 points/s with blocks of 100, p99 <= 5 ms, flat memory.

    PYTHONPATH=src python bench/stream.py                 # the full run, a few minutes
    PYTHONPATH=src python bench/stream.py --points 2000 --points-memory 20000   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np
import torch

from lstmae import LSTMAutoencoder


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc)."""
    with open("/proc/self/statm") as stream:
        pages = int(stream.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def series(n: int, period: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sin(2 * np.pi * np.arange(n) / period) + 0.1 * rng.standard_normal(n)


def throughput(model: LSTMAutoencoder, values: np.ndarray, block: int) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(points per wall second, points per CPU second, wall and CPU seconds of each update) in blocks of ``block``.

    CPU time (`time.thread_time`, this thread: torch runs single-threaded in it) is what an update
    costs when the core is not shared; wall time is what it took on this machine at its load.
    """
    scorer = model.stream()
    wall, cpu = [], []
    for first in range(0, len(values), block):
        w0, c0 = time.perf_counter(), time.thread_time()
        scorer.update(values[first : first + block])
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    wall, cpu = np.asarray(wall), np.asarray(cpu)
    return len(values) / wall.sum(), len(values) / cpu.sum(), wall, cpu


def memory(model: LSTMAutoencoder, total: int, period: float, samples: int = 10) -> list[tuple[int, float]]:
    """(points fed, RSS MB) after every total / samples points, fed in blocks of 100."""
    scorer = model.stream()
    chunk = series(100_000, period, seed=3)  # reused: the stream sees a periodic signal, memory is what is measured
    out, fed, step = [], 0, max(100, total // samples)
    while fed < total:
        part = chunk[(fed % len(chunk)) : (fed % len(chunk)) + step]
        for first in range(0, len(part), 100):
            scorer.update(part[first : first + 100])
        fed += len(part)
        out.append((fed, rss_mb()))
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", type=float, default=100.0)
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--points", type=int, default=20_000, help="points per throughput run")
    parser.add_argument("--points-memory", type=int, default=1_000_000)
    parser.add_argument("--score-stride", default="auto", help="'auto' (the default model) or an integer")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    stride = args.score_stride if args.score_stride == "auto" else int(args.score_stride)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LSTMAutoencoder(epochs=args.epochs, random_state=0, verbose=0, score_stride=stride)
        model.fit(series(args.train, args.period, seed=1))
    scorer = model.stream()
    result: dict = {
        "model": {"timesteps": model.timesteps_, "frame": model.config_.frame, "units": list(model.config_.units),
                  "score_stride": scorer.stride, "scorer": scorer.settings.scorer,
                  "parts": [part.name for part in scorer.parts],
                  "references": {part.name: int(part.prepared.rows.shape[0]) for part in scorer.parts if hasattr(part, "prepared")},
                  "grids": [[name, length, step] for name, length, step, _ in scorer.grids],
                  "delay": scorer.delay},
        "machine": {"cpu": platform.processor() or platform.machine(), "load": os.getloadavg(), "torch": torch.__version__},
        "throughput": {},
    }
    values = series(args.points, args.period, seed=2)
    stats = (("median", np.median), ("p99", lambda t: np.quantile(t, 0.99)), ("max", np.max))
    for block in (1, 10, 100):
        rate, cpu_rate, wall, cpu = throughput(model, values, block)
        result["throughput"][block] = {"wall": round(rate), "cpu": round(cpu_rate)}
        if block == 1:
            result["latency_ms"] = {clock: {name: round(float(f(t)) * 1e3, 3) for name, f in stats}
                                    for clock, t in (("wall", wall), ("cpu", cpu))}
        print(f"blocks of {block:>3}: {rate:,.0f} points/s (wall), {cpu_rate:,.0f} points/s (CPU time)", flush=True)
    print(f"single-point update, ms: {result['latency_ms']}", flush=True)
    samples = memory(model, args.points_memory, args.period)
    result["rss_mb"] = [(fed, round(mb, 1)) for fed, mb in samples]
    print("RSS (points, MB): " + ", ".join(f"{fed:,}: {mb:.1f}" for fed, mb in samples), flush=True)
    result["machine"]["load_after"] = os.getloadavg()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
