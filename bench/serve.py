"""``lstmae serve`` benchmark: pushed points per second, push latency, memory over a long run, the Prometheus reader.

A model (default parameters, as bench/stream.py: units 32, timesteps auto,
scorer combined; ``--epochs`` 2, speed depends on the network's shape only) is
fitted on a noisy sine of period 100, saved, and served by ``lstmae serve`` in
a subprocess (``--rate-limit 0``, a state folder with checkpoints every 30 s,
torch on one thread). A load process (asyncio + httpx, its own process so that
it does not share the server's interpreter) runs ``--clients`` concurrent
clients on loopback, each pushing blocks of ``--block`` points (JSON rows) to
the series in turn, the next block of a series only after its previous one was
answered.

Measured:

* pushes to 100 and to 1,000 series, ``--seconds`` each: points/s, p50/p99 of a push (client side);
* memory: the server's RSS sampled while it takes as many points as fit in ``--memory-seconds``
  (100 series, blocks of 100): flat means the last samples are within a few MB of the first after warm-up;
* the Prometheus reader on ``--reader-series`` series: a fake Prometheus (an HTTP server made here, in its own
  process: a real one with 1,000 series takes long to fill) answers query_range with every series over
  ``--reader-history`` seconds at step 1 s; the service reads that backlog at start (points/s), then one new point
  per series per second (the time a poll of every series takes: from the service's lstmae_score_seconds).

Targets (issue 24): >= 20,000 points/s pushed in blocks of 100 on 2 cores, p99 < 50 ms, memory flat.

    PYTHONPATH=src python bench/serve.py                       # the full run, about 8 minutes
    PYTHONPATH=src python bench/serve.py --seconds 5 --memory-seconds 10 --reader-history 60 --train 2000   # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PERIOD = 100
T0 = 1_700_000_000.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wave(t: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * t / PERIOD) + 0.1 * np.sin(12.9 * t)  # deterministic "noise": any block is reproducible


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as stream:
        for line in stream:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start_service(model: Path, state: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    log = open(state.parent / f"serve-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "lstmae.cli.app", "serve", "--model", str(model), "--port", str(port),
                                "--rate-limit", "0", "--max-series", "5000", "--state-dir", str(state), "--checkpoint-every", "30s",
                                *extra], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"lstmae serve exited: {(state.parent / f'serve-{port}.log').read_text()[-2000:]}")
        time.sleep(0.1)
    raise SystemExit("lstmae serve did not start")


# ---------------------------------------------------------------- the load process
def load(url: str, series: int, clients: int, block: int, seconds: float, start_at: dict, out: multiprocessing.Queue) -> None:
    """Push for ``seconds``; put (points, elapsed, latencies) on ``out``. ``start_at``: {series: next point}."""
    import httpx

    async def main() -> tuple[int, float, list[float]]:
        latencies: list[float] = []
        points = 0
        names = [f"s{i}" for i in range(series)]
        queue: asyncio.Queue = asyncio.Queue()
        for name in names:
            queue.put_nowait(name)
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
            deadline = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal points
                while time.perf_counter() < deadline:
                    name = await queue.get()
                    first = start_at.get(name, 0)
                    t = np.arange(first, first + block)
                    body = json.dumps([{"time": T0 + float(i), "value": float(v)} for i, v in zip(t, wave(t))])
                    began = time.perf_counter()
                    answer = await client.post(f"/v1/series/{name}/points", content=body, headers={"content-type": "application/json"})
                    latencies.append(time.perf_counter() - began)
                    if answer.status_code != 200:
                        raise SystemExit(f"push refused: {answer.status_code} {answer.text[:300]}")
                    points += answer.json()["accepted"]
                    start_at[name] = first + block
                    queue.put_nowait(name)

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            return points, time.perf_counter() - began, latencies

    out.put(asyncio.run(main()))


def push_run(url: str, series: int, clients: int, block: int, seconds: float, start_at: dict, pid: int,
             sample_every: float | None = None) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    manager_state = dict(start_at)
    process = multiprocessing.get_context("fork").Process(target=load, args=(url, series, clients, block, seconds, manager_state, queue))
    rss = []
    began = time.perf_counter()
    process.start()
    while process.is_alive():
        rss.append((time.perf_counter() - began, rss_mb(pid)))
        time.sleep(sample_every or 1.0)
        if not queue.empty():
            break
    points, elapsed, latencies = queue.get()
    process.join()
    ms = np.array(latencies) * 1000
    return {"series": series, "clients": clients, "block": block, "points": points, "seconds": elapsed,
            "points_per_s": points / elapsed, "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()), "requests": len(ms), "rss": rss}


# ---------------------------------------------------------------- a fake Prometheus
def fake_prometheus(port: int, series: int, history: float, started: float) -> None:
    """query_range over ``series`` series, each the wave, points from ``started - history`` on (step as asked)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            q = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
            start, end, step = float(q["start"]), float(q["end"]), float(q["step"])
            t = np.arange(start, end + step / 2, step)
            t = t[t >= started - history]
            values = wave(t)
            pairs = ",".join(f'[{a:.3f},"{b!r}"]' for a, b in zip(t.tolist(), values.tolist()))
            result = ",".join('{"metric":{"__name__":"load","instance":"i%d"},"values":[%s]}' % (i, pairs) for i in range(series))
            body = ('{"status":"success","data":{"resultType":"matrix","result":[%s]}}' % (result if len(t) else "")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def scraped(url: str, name: str) -> float:
    import httpx

    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return float("nan")


def reader_run(model: Path, folder: Path, series: int, history: float, seconds: float) -> dict:
    port = free_port()
    started = float(int(time.time()))
    fake = multiprocessing.get_context("fork").Process(target=fake_prometheus, args=(port, series, history, started), daemon=True)
    fake.start()
    process, url = start_service(model, folder / "state-reader", ["--prometheus-url", f"http://127.0.0.1:{port}", "--query", "load",
                                                                  "--step", "1s", "--lag", "0s", "--lookback", f"{history}s"])
    try:
        began = time.perf_counter()
        backlog = series * history
        counter = 'lstmae_points_scored_total{source="prometheus"}'
        while scraped(url, counter) < backlog * 0.99 and time.perf_counter() - began < 600:
            time.sleep(0.5)
        backlog_seconds = time.perf_counter() - began
        backlog_points = scraped(url, counter)
        count0, sum0 = scraped(url, "lstmae_score_seconds_count"), scraped(url, "lstmae_score_seconds_sum")
        time.sleep(seconds)
        live_points = scraped(url, counter) - backlog_points
        count1, sum1 = scraped(url, "lstmae_score_seconds_count"), scraped(url, "lstmae_score_seconds_sum")
        delays = [float(line.split()[-1]) for line in __import__("httpx").get(url + "/metrics").text.splitlines()
                  if line.startswith("lstmae_stream_delay_seconds{")]
        return {"series": series, "history_s": history, "backlog_points": backlog_points, "backlog_seconds": backlog_seconds,
                "backlog_points_per_s": backlog_points / backlog_seconds, "live_points_per_s": live_points / seconds,
                "live_seconds_per_poll": (sum1 - sum0) / max(1.0, count1 - count0) * series,
                "delay_median_s": float(np.median(delays)) if delays else float("nan"), "rss_mb": rss_mb(process.pid)}
    finally:
        process.terminate()
        process.wait(60)
        fake.terminate()


# ---------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--memory-seconds", type=float, default=180)
    parser.add_argument("--reader-series", type=int, default=1000)
    parser.add_argument("--reader-history", type=float, default=600)
    parser.add_argument("--reader-seconds", type=float, default=20)
    parser.add_argument("--parts", default="push,memory,reader", help="Comma-separated: push, memory, reader.")
    parser.add_argument("--json", type=Path, help="Also write the results to this JSON file.")
    args = parser.parse_args()

    import torch

    from lstmae import LSTMAutoencoder

    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="lstmae-bench-serve-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        rng = np.random.default_rng(0)
        model = LSTMAutoencoder(epochs=args.epochs, random_state=0, verbose=0).fit(
            np.sin(2 * np.pi * np.arange(args.train) / PERIOD) + 0.1 * rng.standard_normal(args.train))
    print(f"fitted in {time.perf_counter() - started:.0f} s: timesteps {model.timesteps_}, delay {model.stream().delay} points", flush=True)
    model.save(folder / "model.safetensors")
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
                     "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "timesteps": model.timesteps_,
                     "delay": model.stream().delay, "load_average_start": os.getloadavg()[0], "push": []}

    process, url = start_service(folder / "model.safetensors", folder / "state", [])
    try:
        for run_number, series in enumerate((100, 1000) if "push" in args.parts else ()):
            # Each phase starts every series at a later time than any phase before (the load process's own
            # copy of where each series is does not come back): a warm-up, so that every series has its first
            # windows (the first pushes of a series score nothing yet), then the measured run.
            base = 20_000_000 * run_number
            push_run(url, series, args.clients, args.block, max(3.0, series / 150), {f"s{i}": base for i in range(series)}, process.pid)
            start_at = {f"s{i}": base + 10_000_000 for i in range(series)}
            run = push_run(url, series, args.clients, args.block, args.seconds, start_at, process.pid)
            run.pop("rss")
            print(json.dumps(run), flush=True)
            results["push"].append(run)
        if "memory" in args.parts:
            start_at = {f"s{i}": 100_000_000 for i in range(100)}
            memory = push_run(url, 100, args.clients, args.block, args.memory_seconds, start_at, process.pid, sample_every=args.memory_seconds / 20)
            results["memory"] = {"points": memory["points"], "seconds": memory["seconds"], "points_per_s": memory["points_per_s"],
                                 "p99_ms": memory["p99_ms"], "rss": [(round(t, 1), round(m, 1)) for t, m in memory["rss"]]}
            print(json.dumps(results["memory"]), flush=True)
    finally:
        process.terminate()
        process.wait(60)
    if "reader" in args.parts:
        results["reader"] = reader_run(folder / "model.safetensors", folder, args.reader_series, args.reader_history, args.reader_seconds)
        print(json.dumps(results["reader"]), flush=True)
    results["load_average_end"] = os.getloadavg()[0]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
