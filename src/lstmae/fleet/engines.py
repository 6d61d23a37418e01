"""Run one function over many independent jobs on worker processes: a local pool, or Ray tasks.

A job is ``(key, payload)``; the function is named by ``"module:name"`` (it is
imported in each worker, after the worker has limited its math libraries to one
thread) and returns a small dict. Both engines give back one `Outcome` per job,
in completion order, and survive a worker that dies mid-job (``kill -9``, out of
memory): that job runs once more on a fresh worker, and if its worker dies again
it comes back as an error. The function reports its own failures (bad data) in
its result; the engine only reports what the function could not: a dead worker.

* ``LocalEngine``: ``workers`` processes started with ``spawn``, each in its own
  process group (a Ctrl-C in the terminal reaches only the driver, which stops
  them), each fed one job at a time through a pipe.
* ``RayEngine``: Ray tasks of one CPU each, ``max_retries=1``; a local Ray of
  ``workers`` CPUs, or a running cluster (``address="auto"`` or ``"host:port"``).
  Ray is an optional extra: ``pip install lstmae[ray]``.

Jobs are handed out as workers free up, so at most a few jobs per worker are in
flight and the driver's memory does not grow with the number of jobs.
"""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lstmae.errors import ParameterError, describe

#: How many times a job whose worker died runs again before it is reported failed.
RETRIES = 1
#: Jobs in flight per Ray worker slot: enough to keep every CPU busy between two polls.
RAY_AHEAD = 2
ENGINES = ("local", "ray")
#: Math libraries read these when they load; a worker sets them before importing anything heavy.
_ONE_THREAD = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class Outcome:
    """What one job gave back: the function's result, or ``error`` (one line) when its worker died."""

    key: str
    result: dict | None
    error: str | None
    attempts: int


def make_engine(engine: str, workers: int | None, address: str | None = None) -> "LocalEngine | RayEngine":
    """The engine called ``engine`` ("local" or "ray"), started (a local Ray) or joined (a cluster)."""
    check_engine(engine, workers, address)
    if engine == "local":
        return LocalEngine(workers or os.cpu_count() or 1)
    return RayEngine(workers, address)


def check_engine(engine: str, workers: int | None, address: str | None) -> None:
    """ParameterError for an unknown engine, a bad worker count, or an address without Ray."""
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {', '.join(map(repr, ENGINES))}, got {describe(engine)}.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ParameterError(f"workers must be an integer >= 1 (or None: one per CPU), got {describe(workers)}.")
    if engine == "local" and address is not None:
        raise ParameterError(f"address={describe(address)} is for engine='ray'; drop it, or use engine='ray'.")


def call(function: str, payload: Any) -> dict:
    """Import ``"module:name"`` and call it on ``payload`` with torch on one thread (in a worker)."""
    module, name = function.split(":")
    target: Callable[[Any], dict] = getattr(importlib.import_module(module), name)
    import torch  # here, in the worker: after _worker_main has set the math libraries' thread variables

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    return target(payload)


# ------------------------------------------------------------------ local
def _worker_main(connection: Any) -> None:
    """A local worker: run jobs from ``connection`` until it closes or sends None."""
    os.setpgrp()  # the terminal's Ctrl-C goes to the driver's group only; the driver stops us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in _ONE_THREAD:
        os.environ[name] = "1"
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if message is None:
            return
        function, key, payload = message
        try:
            result, error = call(function, payload), None
        except KeyboardInterrupt:  # the driver stopped us (SIGTERM, turned into Interrupted by training): quietly
            return
        except Exception as exc:  # a bug, not bad data (the function reports that itself): one line back
            result, error = None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        connection.send((key, result, error))


class _Worker:
    """One spawned process, its end of the pipe, and the job it is running (None when idle)."""

    def __init__(self, context: Any) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child,), daemon=True, name="lstmae-fleet-worker")
        self.process.start()
        child.close()
        self.job: tuple[str, Any, int] | None = None

    def stop(self) -> None:
        """Ask the process to end: a message when idle, SIGTERM when busy (`stop_all` waits, then kills)."""
        if self.process.is_alive():
            if self.job is None:
                try:
                    self.connection.send(None)
                except OSError:
                    pass
            else:
                self.process.terminate()


def stop_all(pool: list[_Worker], wait: float) -> None:
    """Stop every worker at once; those still running after ``wait`` seconds are killed."""
    for worker in pool:
        worker.stop()
    deadline = time.monotonic() + wait
    for worker in pool:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.connection.close()


class LocalEngine:
    """``workers`` local processes, one job each at a time, one torch thread each."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def map(self, function: str, jobs: Iterable[tuple[str, Any]]) -> Iterator[Outcome]:
        """One `Outcome` per job, as they finish. Stopping the iteration (or Ctrl-C) stops every worker."""
        context = multiprocessing.get_context("spawn")
        waiting: deque[tuple[str, Any, int]] = deque()
        source = iter(jobs)
        pool: list[_Worker] = []
        try:
            while True:
                self._hand_out(function, pool, waiting, source, context)
                busy = [w for w in pool if w.job is not None]
                if not busy:
                    return
                ready = multiprocessing.connection.wait([w.connection for w in busy] + [w.process.sentinel for w in busy])
                for worker in busy:
                    if worker.connection in ready or worker.process.sentinel in ready:
                        outcome = self._collect(worker, waiting)
                        if outcome is not None:
                            yield outcome
                        if worker.connection.closed:  # its process died: a fresh one takes its place
                            pool.remove(worker)
        finally:
            stop_all(pool, wait=3.0)

    def _hand_out(self, function: str, pool: list[_Worker], waiting: deque, source: Iterator, context: Any) -> None:
        """Give every idle worker a job (jobs to retry first), starting workers up to ``self.workers``."""
        while True:
            idle = next((w for w in pool if w.job is None), None)
            if idle is None and len(pool) >= self.workers:
                return
            if waiting:
                job = waiting.popleft()
            else:
                item = next(source, None)
                if item is None:
                    return
                job = (item[0], item[1], 1)
            if idle is None:
                idle = _Worker(context)
                pool.append(idle)
            idle.job = job
            idle.connection.send((function, job[0], job[1]))

    @staticmethod
    def _collect(worker: _Worker, waiting: deque) -> Outcome | None:
        """The finished job's outcome; a dead worker's job goes back to ``waiting`` (or fails) instead."""
        key, payload, attempts = worker.job  # type: ignore[misc]
        try:
            if worker.connection.poll():
                done_key, result, error = worker.connection.recv()
                worker.job = None
                return Outcome(done_key, result, error, attempts)
        except (EOFError, OSError):
            pass
        worker.process.join(5)
        if worker.process.is_alive():  # woken but nothing to read yet
            return None
        worker.job = None
        worker.connection.close()
        code = worker.process.exitcode
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        if attempts <= RETRIES:
            waiting.appendleft((key, payload, attempts + 1))
            return None
        return Outcome(key, None, f"its worker process died ({how}) on each of {attempts} attempts", attempts)


# -------------------------------------------------------------------- ray
class RayEngine:
    """Ray tasks of one CPU each: a local Ray of ``workers`` CPUs, or the cluster at ``address``."""

    name = "ray"

    def __init__(self, workers: int | None, address: str | None) -> None:
        try:
            import ray  # optional: the `ray` extra
        except ImportError:
            raise ParameterError(
                "engine='ray' needs Ray, which is not installed; install it with `pip install lstmae[ray]`, "
                "or use engine='local'."
            ) from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                options["num_cpus"] = workers or os.cpu_count() or 1
            else:
                options["address"] = address
            try:
                ray.init(**options)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ParameterError(
                    f"cannot start or reach Ray (address={describe(address)}): {' '.join(str(exc).split())[:300]}; "
                    "start a cluster with `ray start --head`, or leave address out for a local Ray."
                ) from None
            self._started = True
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map(self, function: str, jobs: Iterable[tuple[str, Any]]) -> Iterator[Outcome]:
        """One `Outcome` per job, as they finish; a task whose worker died is retried once by Ray."""
        ray = self._ray
        task = ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)(call)
        running: dict[Any, str] = {}
        source = iter(jobs)
        try:
            while True:
                while len(running) < RAY_AHEAD * self.workers:
                    job = next(source, None)
                    if job is None:
                        break
                    running[task.remote(function, job[1])] = job[0]
                if not running:
                    return
                done, _ = ray.wait(list(running), num_returns=1)
                for reference in done:
                    key = running.pop(reference)
                    try:
                        yield Outcome(key, ray.get(reference), None, 1)
                    except ray.exceptions.WorkerCrashedError:
                        yield Outcome(key, None, f"its Ray worker died on each of {RETRIES + 1} attempts", RETRIES + 1)
                    except ray.exceptions.RayError as exc:
                        yield Outcome(key, None, " ".join(str(exc).split())[:300], RETRIES + 1)
        finally:
            for reference in running:
                ray.cancel(reference, force=True)

    def close(self) -> None:
        """Stop the local Ray this engine started (a cluster it joined keeps running)."""
        if self._started:
            self._ray.shutdown()
            self._started = False


def close(engine: Any) -> None:
    if hasattr(engine, "close"):
        engine.close()
