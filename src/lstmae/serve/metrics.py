"""``GET /metrics``: the per-series scores and the service's own metrics, in Prometheus' exposition format.

Per series (label ``series``; the streams are read at each scrape, nothing is
copied per point): ``lstmae_anomaly_score`` (the latest final score),
``lstmae_anomaly`` (1 when it is above the threshold), ``lstmae_threshold``,
``lstmae_score_timestamp_seconds`` (the time of the point scored) and
``lstmae_stream_delay_seconds`` (now minus that time: how far behind the scores are).

The service's own: ``lstmae_points_scored_total``, ``lstmae_points_ignored_total``
(resent points at or before the last accepted time), ``lstmae_score_seconds``
(a histogram of the time a block takes to score), ``lstmae_errors_total{kind}``,
``lstmae_prometheus_read_failures_total``, ``lstmae_prometheus_up``,
``lstmae_model_reloads_total``, ``lstmae_model_reload_failures_total``,
``lstmae_model_reload_ok`` (0 while a refused replacement is on disk), ``lstmae_series``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lstmae.serve.streams import Registry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class SeriesCollector(Collector):
    """The per-series gauges, read from the streams at each scrape."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[GaugeMetricFamily]:
        score = GaugeMetricFamily("lstmae_anomaly_score", "The latest final anomaly score of the series (higher: more anomalous).", labels=["series"])
        anomaly = GaugeMetricFamily("lstmae_anomaly", "1 when the latest final score is above the series' threshold, else 0.", labels=["series"])
        threshold = GaugeMetricFamily("lstmae_threshold", "The series' threshold (the model's).", labels=["series"])
        stamp = GaugeMetricFamily("lstmae_score_timestamp_seconds", "Time of the point the latest final score is for.", labels=["series"])
        delay = GaugeMetricFamily("lstmae_stream_delay_seconds", "Now minus the time of the latest final score's point.", labels=["series"])
        now = time.time()
        for stream in list(self.registry.streams.values()):
            labels = [stream.name]
            threshold.add_metric(labels, stream.threshold)
            if math.isnan(stream.score):
                continue  # no final score yet: absent, not 0
            score.add_metric(labels, stream.score)
            anomaly.add_metric(labels, float(stream.score > stream.threshold))
            stamp.add_metric(labels, stream.score_time)
            delay.add_metric(labels, max(0.0, now - stream.score_time))
        return [score, anomaly, threshold, stamp, delay]


class Metrics:
    """The service's prometheus_client registry (its own, not the process-wide default)."""

    def __init__(self, registry: Registry, reload_ok: Callable[[], bool]) -> None:
        disable_created_metrics()  # no *_created series beside every counter: half the exposition, nothing to alert on
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.points = Counter("lstmae_points_scored", "Points accepted and scored.", ["source"], registry=r)
        self.ignored = Counter("lstmae_points_ignored", "Points at or before their series' last accepted time (resent), ignored.", ["source"], registry=r)
        self.latency = Histogram("lstmae_score_seconds", "Time to score one block of points (one push, or one series of one Prometheus read).",
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=r)
        self.errors = Counter("lstmae_errors", "Requests or series refused, by kind.", ["kind"], registry=r)
        self.read_failures = Counter("lstmae_prometheus_read_failures", "Failed query_range reads (Prometheus down, an error answer).", registry=r)
        self.prometheus_up = Gauge("lstmae_prometheus_up", "1 when the last read from Prometheus succeeded, else 0.", registry=r)
        self.reloads = Counter("lstmae_model_reloads", "Model replacements swapped in.", registry=r)
        self.reload_failures = Counter("lstmae_model_reload_failures", "Model replacements refused (the previous model kept serving).", registry=r)
        self.reload_ok = Gauge("lstmae_model_reload_ok", "0 while the model file on disk was refused and the previous model serves.", registry=r)
        self.reload_ok.set_function(lambda: float(reload_ok()))
        self.series = Gauge("lstmae_series", "Series the service holds.", registry=r)
        self.series.set_function(lambda: float(len(registry.streams)))
        self.checkpoints = Counter("lstmae_checkpoint_files", "Stream checkpoint files written.", registry=r)
        for kind in ("bad_input", "unauthorized", "too_large", "rate_limited", "unknown_series"):
            self.errors.labels(kind)  # present at 0 from the start
        for source in ("push", "prometheus"):
            self.points.labels(source)
            self.ignored.labels(source)
        r.register(SeriesCollector(registry))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["CONTENT_TYPE", "Metrics", "SeriesCollector"]
