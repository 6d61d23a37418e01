"""The ``lstmae serve`` process: the model, the streams, the threads beside the web server, the signals.

Threads: uvicorn's event loop answers HTTP (scoring runs in its thread pool,
one series at a time under the series' lock); a reader thread polls
Prometheus (`lstmae.serve.prometheus`); a keeper thread writes checkpoints
every ``checkpoint_every`` seconds and reloads the model when its file changes
(or on SIGHUP). SIGTERM (and Ctrl-C): uvicorn stops taking requests, the
reader stops, a last checkpoint is written, exit 143 (130).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstmae.errors import LstmaeWarning
from lstmae.serve.limits import RateLimit, read_token
from lstmae.serve.metrics import Metrics
from lstmae.serve.models import Models
from lstmae.serve.streams import Registry

log = logging.getLogger("lstmae.serve")


@dataclass
class Options:
    """What ``lstmae serve`` was given (checked by the command line)."""

    model: Path
    host: str = "127.0.0.1"
    port: int = 8000
    state_dir: Path | None = None
    checkpoint_every: float = 30.0
    token_file: Path | None = None
    max_body: int = 1 << 20
    max_points: int = 10_000
    rate_limit: float = 1000.0
    max_series: int = 10_000
    min_gap: int | None = None
    prometheus_url: str | None = None
    query: str | None = None
    step: float = 60.0
    series_label: str | None = None
    lag: float | None = None
    lookback: float = 0.0
    max_gap: int = 1000
    threads: int = 1


class Service:
    """Everything the routes and the threads share."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.log = log
        self.token = read_token(options.token_file) if options.token_file is not None else None
        self.rate = RateLimit(options.rate_limit)
        self.max_body, self.max_points = options.max_body, options.max_points
        self.models = Models(options.model, min_gap=options.min_gap)
        if options.state_dir is not None:
            (options.state_dir / "streams").mkdir(parents=True, exist_ok=True)
        self.registry = Registry(self.models, max_series=options.max_series, state_dir=options.state_dir)
        self.metrics = Metrics(self.registry, lambda: self.models.last_error is None)
        self.reader = None
        if options.prometheus_url is not None:
            from lstmae.serve.prometheus import Reader

            self.reader = Reader(options.prometheus_url, options.query or "", options.step, self.registry, self.metrics,
                                 series_label=options.series_label, lag=options.lag, lookback=options.lookback, max_gap=options.max_gap)
        self.stop_event = threading.Event()
        self.reload_requested = threading.Event()
        self.threads: list[threading.Thread] = []
        self.started = False
        self.stopped = False

    # ------------------------------------------------------------------ life
    def restore(self) -> None:
        """Streams (and the reader's cursor) from the state folder's checkpoints."""
        if self.options.state_dir is None:
            return
        count = self.registry.restore()
        for problem in self.registry.restore_errors:
            log.warning("lstmae serve: a checkpoint was not restored: %s", problem)
        if self.reader is not None and self.reader.restore_cursor(self.options.state_dir):
            log.info("lstmae serve: the Prometheus reader continues from %.3f", self.reader.cursor_ms / 1000)
        if count:
            log.info("lstmae serve: restored %d stream(s) from %s", count, self.options.state_dir)

    def start(self) -> None:
        keeper = threading.Thread(target=self._keep, name="lstmae-keeper", daemon=True)
        self.threads.append(keeper)
        if self.reader is not None:
            self.threads.append(threading.Thread(target=self.reader.run, args=(self.stop_event,), name="lstmae-reader", daemon=True))
        for thread in self.threads:
            thread.start()
        self.started = True

    def stop(self) -> None:
        """Stop the threads and write a last checkpoint (once)."""
        if self.stopped:
            return
        self.stopped = True
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=30)
        self.checkpoint()

    def checkpoint(self) -> int:
        if self.options.state_dir is None:
            return 0
        cursor = self.reader.snapshot() if self.reader is not None else None  # before the streams: never after them
        written = self.registry.checkpoint()
        if self.reader is not None:
            self.reader.save_cursor(self.options.state_dir, cursor)
        self.metrics.checkpoints.inc(written)
        return written

    def reload(self) -> bool:
        if self.models.reload():
            self.metrics.reloads.inc()
            log.info("lstmae serve: model reloaded from %s (version %s)", self.models.path, self.models.current.version)
            return True
        if self.models.last_error:
            self.metrics.reload_failures.inc()
            log.error("lstmae serve: %s", self.models.last_error)
        return False

    def _keep(self) -> None:
        last_checkpoint = time.monotonic()
        while not self.stop_event.wait(0.25):
            try:
                if self.reload_requested.is_set() or self.models.changed():
                    self.reload_requested.clear()
                    self.reload()
                if time.monotonic() - last_checkpoint >= self.options.checkpoint_every:
                    last_checkpoint = time.monotonic()
                    self.checkpoint()
            except Exception as exc:  # the keeper must live on: say it, count it
                self.metrics.errors.labels("internal").inc()
                log.error("lstmae serve: checkpoint or reload failed: %s: %s", type(exc).__name__, exc)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = {"model": self.models.describe(), "series": len(self.registry.streams)}
        problems = []
        if self.models.last_error:
            problems.append(self.models.last_error)
        if self.reader is not None:
            detail["prometheus"] = self.reader.describe()
            if self.reader.failures:
                problems.append(f"Prometheus cannot be read ({self.reader.last_error}); retrying")
        if self.registry.restore_errors:
            detail["restore_errors"] = self.registry.restore_errors[:10]
        detail["problems"] = problems
        return self.started and not self.stopped, detail


def run(options: Options) -> None:
    """Serve until SIGTERM / Ctrl-C; a last checkpoint on the way out."""
    import torch
    import uvicorn

    from lstmae.serve.app import build_app

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    warnings.filterwarnings("ignore", category=LstmaeWarning, message=r".*(filled|interpolat).*")  # gaps: expected in a stream
    torch.set_num_threads(options.threads)
    service = Service(options)
    service.restore()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):  # noqa: ANN202
        service.start()
        loaded = service.models.current
        what = {"model": "a model of one series", "global": f"a global model of {len(loaded.keys)} series",
                "fleet": f"a fleet of {len(loaded.keys)} series"}[loaded.kind]
        log.info("lstmae serve: %s (%s), %d stream(s); listening on http://%s:%d", what, options.model,
                 len(service.registry.streams), options.host, options.port)
        try:
            yield
        finally:
            service.stop()
            log.info("lstmae serve: stopped; checkpoint written" if options.state_dir else "lstmae serve: stopped")

    if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, lambda signum, frame: service.reload_requested.set())
    config = uvicorn.Config(build_app(service, lifespan), host=options.host, port=options.port, log_level="warning",
                            access_log=False, lifespan="on", timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        service.stop()
    if not service.started:
        from lstmae.errors import ParameterError

        raise ParameterError(f"the service could not start on {options.host}:{options.port} (the port may be in use); pick another --port.")


__all__ = ["Options", "Service", "run"]
