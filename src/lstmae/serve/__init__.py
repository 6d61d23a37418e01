"""``lstmae serve``: a long-running scoring service (the extra ``lstmae[serve]``).

One process holds a model (a model file: one series' model or a global model;
or a fleet folder) and one `lstmae.streaming.scorer.StreamScorer` per series.
Points come in two ways: pulled from Prometheus (`prometheus`, ``query_range``
from where each stream stopped) or pushed over HTTP (`app`,
``POST /v1/series/{name}/points``). Scores go out as Prometheus metrics
(``GET /metrics``, `metrics`) and JSON (``/v1/series/{name}/intervals``).

The modules, each one job, data flowing one way (a layer uses only those below
it: an import-linter contract in pyproject.toml)::

    service     the process: options, threads (reader, checkpoints, reloads), uvicorn, signals
    app         the HTTP routes (Starlette): parse, check limits, hand points to the registry
    prometheus  the query_range reader: a cursor on the step grid, back-off while Prometheus is down
    limits      bearer token, request size, request rate
    metrics     the prometheus_client registry: per-series gauges and the service's own metrics
    points      request bodies (JSON rows or CSV) to (times, values), with errors that name the problem
    streams     the per-series streams, their checkpoints (atomic safetensors files, no pickle)
    models      the model (file or fleet), its hot reload, a scorer per series

The web stack (starlette, uvicorn, prometheus_client, httpx) is imported by
these modules only; `lstmae.cli.serve` imports `service` inside the command,
after checking the options and that the extra is installed (`missing_modules`).
"""

from __future__ import annotations

#: The distributions ``lstmae serve`` needs (the extra ``lstmae[serve]``), by import name.
REQUIRED = ("starlette", "uvicorn", "prometheus_client", "httpx")


def missing_modules() -> list[str]:
    """The modules of the serve extra that are not installed (empty when the service can run)."""
    import importlib.util

    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


__all__ = ["REQUIRED", "missing_modules"]
