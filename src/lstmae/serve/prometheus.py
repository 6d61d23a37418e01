"""The Prometheus reader: ``query_range`` from where the streams stopped, every series a stream of its own.

The reader keeps one cursor on the grid of multiples of ``step``: the next
evaluation time it has not read. Each poll asks for [cursor, end], where end is
the last grid time at least ``lag`` before now (a sample scraped late has
arrived by then), in chunks of at most `MAX_POINTS` steps (Prometheus refuses
more), and moves the cursor past what it read. So no grid time is read twice or
skipped; a stream ignores points at or before its last accepted time anyway
(after a restart the cursor is the checkpoint's, which is never after what the
streams' checkpoints hold).

Each result series (a label set) is a stream, named by the value of
``series_label`` (also the key that picks its model in a global model or a
fleet) or, without one, by its label set (``name{a="b"}``), scored by the one
model. A series missing at some grid times (a scrape failed, a target was down)
has them filled as missing values, interpolated by the scorer, up to
``max_gap`` steps; a longer absence is not filled (the stream goes on from the
next value). A series that disappears keeps its stream and its last scores;
one that appears starts a stream at its first value.

When Prometheus cannot be read (down, an error answer), the reader waits
``backoff`` seconds, doubling up to ``max_backoff``, counts each failure
(``lstmae_prometheus_read_failures_total``, ``lstmae_prometheus_up`` 0), and
then reads everything since the cursor: nothing is skipped.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from lstmae.errors import LstmaeError
from lstmae.persistence.atomic import atomic_target
from lstmae.serve.metrics import Metrics
from lstmae.serve.models import UnknownSeries
from lstmae.serve.streams import Registry, TooMany

log = logging.getLogger("lstmae.serve")

#: Points per series per query_range: Prometheus refuses more than 11,000.
MAX_POINTS = 10_000
CURSOR_FILE = "reader.json"


class ReadFailed(Exception):
    """Prometheus could not be read: why, in one line."""


def series_name(labels: dict[str, str]) -> str:
    """A label set as Prometheus writes it: ``name{a="b",c="d"}`` (labels sorted)."""
    name = labels.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}"


class Reader:
    """Polls ``query`` every ``step`` and feeds each result series to its stream (see the module docstring)."""

    def __init__(self, url: str, query: str, step: float, registry: Registry, metrics: Metrics, *,
                 series_label: str | None = None, lag: float | None = None, lookback: float | None = None,
                 max_gap: int = 1000, backoff: float = 1.0, max_backoff: float = 30.0, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url.rstrip("/")
        self.query = query
        self.step_ms = int(round(step * 1000))
        self.registry, self.metrics = registry, metrics
        self.series_label = series_label
        self.lag_ms = int(round((step if lag is None else lag) * 1000))
        self.lookback_ms = int(round((0 if lookback is None else lookback) * 1000))
        self.max_gap = max_gap
        self.backoff, self.max_backoff = backoff, max_backoff
        self.clock = clock
        self.client = httpx.Client(timeout=timeout)
        self.cursor_ms: int | None = None  # the next grid time to read
        self.failures = 0  # in a row
        self.last_error: str | None = None
        self.last_success: float | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the loop
    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set: every step, or after a back-off while Prometheus cannot be read."""
        while not stop.is_set():
            try:
                self.poll()
                wait = self.step_ms / 1000
            except ReadFailed as exc:
                self.failures += 1
                self.last_error = str(exc)
                self.metrics.read_failures.inc()
                self.metrics.prometheus_up.set(0)
                wait = min(self.max_backoff, self.backoff * 2 ** (self.failures - 1))
                log.warning("lstmae serve: cannot read Prometheus (%s); retrying in %.1f s", exc, wait)
            stop.wait(wait)

    def poll(self) -> int:
        """Read everything from the cursor to the newest complete grid time; the points accepted. ReadFailed on failure."""
        step = self.step_ms
        end = (int(self.clock() * 1000) - self.lag_ms) // step * step
        with self._lock:
            if self.cursor_ms is None:
                self.cursor_ms = (end - self.lookback_ms) // step * step
            accepted = 0
            while self.cursor_ms <= end:
                stop = min(end, self.cursor_ms + (MAX_POINTS - 1) * step)
                result = self._query(self.cursor_ms, stop)
                accepted += self._feed(result, self.cursor_ms, stop)
                self.cursor_ms = stop + step
        self.failures, self.last_error, self.last_success = 0, None, self.clock()
        self.metrics.prometheus_up.set(1)
        return accepted

    def _query(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        params = {"query": self.query, "start": f"{start_ms / 1000:.3f}", "end": f"{end_ms / 1000:.3f}", "step": f"{self.step_ms / 1000:.3f}"}
        try:
            answer = self.client.get(f"{self.url}/api/v1/query_range", params=params)
        except httpx.HTTPError as exc:
            raise ReadFailed(f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
        try:
            document = answer.json()
        except ValueError:
            raise ReadFailed(f"HTTP {answer.status_code} with a body that is not JSON: {answer.text[:200]!r}") from None
        if answer.status_code != 200 or not isinstance(document, dict) or document.get("status") != "success":
            error = document.get("error") if isinstance(document, dict) else None
            raise ReadFailed(f"HTTP {answer.status_code}: {error or answer.text[:200]}")
        data = document.get("data") or {}
        if data.get("resultType") != "matrix":
            raise ReadFailed(f"the query gives a {data.get('resultType')!r}, not a range vector (matrix); query one metric or an expression of series.")
        return data.get("result") or []

    # ------------------------------------------------------------------ feeding the streams
    def _feed(self, result: list[dict[str, Any]], start_ms: int, end_ms: int) -> int:
        accepted = 0
        step = self.step_ms
        for entry in result:
            labels = {str(k): str(v) for k, v in (entry.get("metric") or {}).items()}
            if self.series_label is not None:
                if self.series_label not in labels:
                    self.metrics.errors.labels("unknown_series").inc()
                    continue
                name = key = labels[self.series_label]
            else:
                name, key = series_name(labels), series_name(labels)
            pairs = entry.get("values") or []
            if not pairs:
                continue
            grid = np.array([int(round(float(t) * 1000)) for t, _ in pairs], dtype=np.int64)
            values = np.array([_value(v) for _, v in pairs], dtype=np.float64)
            try:
                stream = self.registry.stream(name, key, "prometheus", labels)
            except (UnknownSeries, TooMany) as exc:
                self.metrics.errors.labels("unknown_series").inc()
                log.warning("lstmae serve: series %s skipped: %s", name, exc)
                continue
            last = None if stream.last_time is None else int(round(stream.last_time * 1000))
            first = grid[0]
            if last is not None and last < first - step and (first - last) // step - 1 <= self.max_gap:
                grid = np.concatenate([np.arange(last + step, first, step, dtype=np.int64), grid])  # the gap before this read's first value
                values = np.concatenate([np.full(len(grid) - len(values), np.nan), values])
            full = np.arange(grid[0], grid[-1] + step, step, dtype=np.int64)  # gaps inside this read
            if len(full) != len(grid):
                filled = np.full(len(full), np.nan)
                filled[(grid - grid[0]) // step] = values
                grid, values = full, filled
            started = time.perf_counter()
            try:
                answer = self.registry.push(stream, grid / 1000.0, values[:, None] if values.ndim == 1 else values)
            except LstmaeError as exc:
                self.metrics.errors.labels("bad_input").inc()
                log.warning("lstmae serve: series %s: points refused: %s", name, exc)
                continue
            self.metrics.latency.observe(time.perf_counter() - started)
            self.metrics.points.labels("prometheus").inc(answer["accepted"])
            self.metrics.ignored.labels("prometheus").inc(answer["ignored"])
            accepted += answer["accepted"]
        return accepted

    # ------------------------------------------------------------------ the cursor's checkpoint
    def snapshot(self) -> int | None:
        """The cursor now (taken before the streams are saved, so that it is never after what they hold)."""
        return self.cursor_ms

    def save_cursor(self, folder: Path, cursor_ms: int | None) -> None:
        if cursor_ms is None:
            return
        document = {"query": self.query, "step_ms": self.step_ms, "cursor_ms": cursor_ms}
        with atomic_target(folder / CURSOR_FILE, "the reader's cursor") as temporary:
            temporary.write_text(json.dumps(document))

    def restore_cursor(self, folder: Path) -> bool:
        """Continue from a saved cursor of the same query and step; False when there is none."""
        path = folder / CURSOR_FILE
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            return False
        if document.get("query") != self.query or document.get("step_ms") != self.step_ms or not isinstance(document.get("cursor_ms"), int):
            log.warning("lstmae serve: %s is for another query or step; reading from now", path)
            return False
        self.cursor_ms = document["cursor_ms"]
        return True

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "query": self.query, "step_seconds": self.step_ms / 1000,
                "cursor": None if self.cursor_ms is None else self.cursor_ms / 1000,
                "failures_in_a_row": self.failures, "last_error": self.last_error, "last_success": self.last_success}


def _value(text: Any) -> float:
    try:
        number = float(text)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


__all__ = ["Reader", "ReadFailed", "series_name"]
