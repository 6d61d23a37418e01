"""What the service's tests share: a tiny fitted model, free ports, a `lstmae serve` subprocess, a fake Prometheus.

The fake Prometheus (`FakePrometheus`) answers ``/api/v1/query_range`` as
Prometheus does (a matrix, values as strings, one point per grid time of the
step) from series the test sets, so that a test knows exactly which points the
service was given; the end-to-end test (test_e2e.py) runs the real one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import numpy as np

from paths import ROOT

#: The small model's parameters: exact streaming needs score_stride=1 (then final stream scores equal batch scores).
PARAMS = dict(timesteps=10, units=6, epochs=2, batch_size=32, random_state=0, verbose=0, score_stride=1)
PERIOD = 20


def sine(n: int, *, start: int = 0, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    t = np.arange(start, start + n)
    return np.sin(2 * np.pi * t / PERIOD) + noise * np.random.default_rng(seed).standard_normal(n)



def saved_model(directory: Path) -> tuple[Any, Path]:
    """(a model fitted on a 400-point noisy sine, the path in ``directory`` it is saved at)."""
    path = directory / "model.safetensors"
    model = fit(sine(400, seed=0))
    model.save(path)
    return model, path

def fit(values: np.ndarray, **params: Any):
    from lstmae import LSTMAutoencoder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LSTMAutoencoder(**{**PARAMS, **params}).fit(values)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Served:
    """``lstmae serve ARGS`` in a subprocess on a free port; `url`, `client`; `kill` (-9) / `term` / `wait_ready`."""

    def __init__(self, args: list[str], log: Path, port: int | None = None, token: str | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.log = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen([sys.executable, "-m", "lstmae.cli.app", "serve", "--port", str(self.port), *args],
                                        stdout=self.log, stderr=subprocess.STDOUT, env=environment(), cwd=ROOT)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.url, timeout=30, headers=headers)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"lstmae serve exited with {self.process.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if self.client.get("/readyz").status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"lstmae serve was not ready after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def term(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self.client.close()
        self.log.close()


@contextlib.contextmanager
def served(args: list[str], log: Path, **kwargs: Any):
    service = Served(args, log, **kwargs)
    try:
        service.wait_ready()
        yield service
    finally:
        service.stop()


def metric(text: str, name: str, series: str | None = None) -> float | None:
    """The value of ``name{series="..."}`` (or of an unlabelled ``name``) in an exposition."""
    wanted = f'{name}{{series="{series}"}}' if series is not None else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return None


class FakePrometheus:
    """A /api/v1/query_range server on a free port: ``series`` {labels as a tuple of pairs: function(time) -> value or None}.

    A point exists at every grid time t = start + k * step up to ``now`` (the test's clock, set with `advance`);
    a function returning None leaves it out (a gap). `down` / `up` stop and restart it on the same port.
    """

    def __init__(self, series: dict[tuple, Any], now: float) -> None:
        self.series, self.now = series, now
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[dict] = []
        self.server: ThreadingHTTPServer | None = None
        self.up()

    def up(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path != "/api/v1/query_range":
                    self.send_response(404)
                    self.end_headers()
                    return
                fake.requests.append(query)
                start, end, step = float(query["start"]), float(query["end"]), float(query["step"])
                grid = [round(start + k * step, 3) for k in range(int(round((end - start) / step)) + 1)]
                result = []
                for labels, function in fake.series.items():
                    values = [[t, repr(float(v))] for t in grid if t <= fake.now and (v := function(t)) is not None]
                    if values:
                        result.append({"metric": dict(labels), "values": values})
                body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def wait_for(condition: Any, timeout: float, what: str, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
