"""End to end against a real Prometheus (Debian's ``prometheus``): an exporter serves a sine with an injected
anomaly, Prometheus scrapes it and ``lstmae serve``, which reads the sine through Prometheus' query_range; a PromQL
query then finds ``lstmae_anomaly == 1`` during the anomaly and never before it, and the guide's alert fires.
Then Prometheus is stopped and started again: the service says so, and then reads every grid time it missed, once.

The Prometheus configuration and alerting rule are the user guide's own files (docs/guide/serve/), with this
test's ports and 1 s intervals. Without ``prometheus`` the test is skipped, except in CI (CI=true): it fails there.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily

from paths import ROOT
from serving import Served, fit, free_port, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

GUIDE = ROOT / "docs" / "guide" / "serve"
PERIOD = 30.0  # seconds
ANOMALY_AFTER = 40.0  # seconds after the exporter starts
ANOMALY_FOR = 25.0  # the scores trail the data by the model's delay (18 s here: T - 1 + T - 1, "peak") plus --lag and a scrape
OFFSET = 4.0


def prometheus_binary() -> str:
    found = os.environ.get("LSTMAE_PROMETHEUS") or shutil.which("prometheus")
    if found is None or not os.access(found, os.X_OK):
        reason = "no prometheus binary (apt-get install prometheus, or set LSTMAE_PROMETHEUS)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the end-to-end test cannot run in CI: {reason}; .ci/run must install it")
        pytest.skip(reason)
    return found


def wave(t: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * t / PERIOD)


def training_series(n: int = 600) -> np.ndarray:
    """The sine as query_range gives it: one value a second, a scrape now and then late (a value repeated) or early."""
    rng = np.random.default_rng(0)
    t = np.arange(n) + rng.choice([-1, 0, 1], size=n, p=[0.05, 0.9, 0.05]) + rng.uniform(0, 0.2, n)
    return wave(t) + 0.02 * rng.standard_normal(n)


class Exporter:
    """The application: ``app_load`` = the sine of the time, OFFSET higher during the anomaly."""

    def __init__(self) -> None:
        self.start = time.time()
        self.registry = CollectorRegistry()
        self.registry.register(self)
        self.port = free_port()
        self.server, self.thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)

    def anomalous(self, t: float) -> bool:
        return self.start + ANOMALY_AFTER <= t < self.start + ANOMALY_AFTER + ANOMALY_FOR

    def collect(self):
        now = time.time()
        gauge = GaugeMetricFamily("app_load", "A synthetic load: a sine with an injected anomaly.", labels=["instance_name"])
        gauge.add_metric(["web-1"], float(wave(np.array([now]))[0] + (OFFSET if self.anomalous(now) else 0.0)))
        yield gauge


def configure(folder, exporter_port: int, serve_port: int) -> None:
    """The guide's files with this test's ports and intervals (each replaced text must be there: a check on the guide)."""
    config = (GUIDE / "prometheus.yml").read_text()
    for old, new in (("127.0.0.1:9100", f"127.0.0.1:{exporter_port}"), ("127.0.0.1:8000", f"127.0.0.1:{serve_port}"),
                     ("scrape_interval: 15s", "scrape_interval: 1s"), ("evaluation_interval: 15s", "evaluation_interval: 1s")):
        assert old in config, f"docs/guide/serve/prometheus.yml no longer holds {old!r}; update this test with it"
        config = config.replace(old, new)
    (folder / "prometheus.yml").write_text(config)
    shutil.copyfile(GUIDE / "lstmae-alerts.yml", folder / "lstmae-alerts.yml")


def test_prometheus_sees_lstmae_anomaly_during_the_injected_anomaly_and_not_before(tmp_path):
    binary = prometheus_binary()
    model = fit(training_series(), timesteps=10, epochs=8, units=8, score_stride="auto")
    model.save(tmp_path / "model.safetensors")
    exporter = Exporter()
    serve_port, prometheus_port = free_port(), free_port()
    configure(tmp_path, exporter.port, serve_port)

    def start_prometheus() -> subprocess.Popen:
        with open(tmp_path / "prometheus.log", "ab") as log:
            return subprocess.Popen(
                [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prometheus_port}", "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT)

    prometheus = start_prometheus()
    url = f"http://127.0.0.1:{prometheus_port}"
    client = httpx.Client(base_url=url, timeout=10)
    service = None
    try:
        wait_for(lambda: _ok(client, "/-/ready"), 30, "Prometheus to be ready")
        service = Served(["--model", str(tmp_path / "model.safetensors"), "--prometheus-url", url, "--query", "app_load",
                          "--step", "1s", "--lag", "1s", "--lookback", "60s", "--series-label", "instance_name", "--state-dir", str(tmp_path / "state")],
                         tmp_path / "serve.log", port=serve_port)
        service.wait_ready()
        end = exporter.start + ANOMALY_AFTER + ANOMALY_FOR
        time.sleep(max(0.0, end - time.time()))
        samples = _range(client, 'lstmae_anomaly{series="web-1"}', exporter.start, end)
        onset = exporter.start + ANOMALY_AFTER
        before = [v for t, v in samples if t < onset]
        during = [v for t, v in samples if onset <= t < end]
        assert len(before) >= 5, f"too few scores before the anomaly: {samples}\n{service.output()}"
        assert max(before) == 0, f"lstmae_anomaly was 1 before the anomaly: {samples}"
        assert max(during) == 1, f"lstmae_anomaly never 1 during the anomaly: {samples}\n{service.output()}"
        firing = wait_for(lambda: _vector(client, 'ALERTS{alertname="LstmaeAnomaly",alertstate="firing",series="web-1"}'), 10,
                          "the guide's alert to fire")
        assert firing
        assert _vector(client, 'lstmae_points_scored_total{source="prometheus"} > 30')  # Prometheus scraped the service's own metrics

        # Prometheus stops and comes back (same storage): the reader says so, backs off, then reads what it missed.
        prometheus.terminate()
        prometheus.wait(30)
        wait_for(lambda: "lstmae_prometheus_up 0.0" in service.client.get("/metrics").text, 15, "the reader to notice")
        time.sleep(2)
        prometheus = start_prometheus()
        wait_for(lambda: _ok(client, "/-/ready"), 30, "Prometheus to be ready again")
        wait_for(lambda: "lstmae_prometheus_up 1.0" in service.client.get("/metrics").text, 30, "the reader to recover")
        assert "lstmae_prometheus_read_failures_total 0.0" not in service.client.get("/metrics").text
        target = time.time() - 3
        wait_for(lambda: service.client.get("/v1/series").json()["series"][0]["last_accepted_time"] >= target, 20, "the stream to catch up")
        kept = service.client.get("/v1/series/web-1/scores").json()["scores"]
        assert np.all(np.diff([row["time"] for row in kept]) == 1.0), "a grid time was skipped or read twice"
    finally:
        if service is not None:
            service.stop()
        prometheus.terminate()
        prometheus.wait(30)
        exporter.server.shutdown()


def _ok(client: httpx.Client, path: str) -> bool:
    try:
        return client.get(path).status_code == 200
    except httpx.HTTPError:
        return False


def _range(client: httpx.Client, query: str, start: float, end: float) -> list[tuple[float, float]]:
    answer = client.get("/api/v1/query_range", params={"query": query, "start": start, "end": end, "step": "1s"}).json()
    assert answer["status"] == "success", answer
    return [(float(t), float(v)) for series in answer["data"]["result"] for t, v in series["values"] if math.isfinite(float(v))]


def _vector(client: httpx.Client, query: str) -> list:
    answer = client.get("/api/v1/query", params={"query": query}).json()
    return answer["data"]["result"] if answer.get("status") == "success" else []
