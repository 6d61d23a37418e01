"""The HTTP routes (Starlette). Every refusal is a 4xx with a JSON body ``{"error": kind, "detail": what and how to fix}``.

    POST /v1/series/{name}/points     push points (JSON rows or CSV); the final scores they completed
    GET  /v1/series/{name}/intervals  closed and open anomalous intervals
    GET  /v1/series/{name}/scores     the last final scores (up to 1024; ``?since=T``)
    GET  /v1/series                   the series held, their last accepted times and scores
    GET  /metrics                     Prometheus exposition format (`lstmae.serve.metrics`)
    GET  /healthz, /readyz            alive; ready to score (with what is wrong, if anything)

With a token (``--token-file``), /v1 and /metrics need ``Authorization: Bearer <token>``;
/healthz and /readyz do not (probes).
"""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lstmae.errors import LstmaeError
from lstmae.serve.limits import check_token, read_body
from lstmae.serve.metrics import CONTENT_TYPE
from lstmae.serve.models import UnknownSeries
from lstmae.serve.points import BadInput, parse_csv, parse_json
from lstmae.serve.streams import TooMany

#: A pushed series' name: what fits in a URL path segment and a Prometheus label value without escaping.
NAME = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


def _error(exc: BadInput) -> JSONResponse:
    return JSONResponse({"error": exc.kind, "detail": exc.message}, status_code=exc.status)


def build_app(service: Any, lifespan: Any = None) -> Starlette:
    """The ASGI application of ``service`` (a `lstmae.serve.service.Service`; not imported here: the service imports this module)."""

    def guard(request: Request) -> None:
        check_token(service.token, request.headers.get("authorization"))
        client = request.client.host if request.client else "unknown"
        service.rate.check(client)

    def refused(exc: BadInput) -> JSONResponse:
        service.metrics.errors.labels(exc.kind if exc.kind in ("unauthorized", "too_large", "rate_limited", "unknown_series") else "bad_input").inc()
        return _error(exc)

    def series_name(request: Request) -> str:
        name = request.path_params["name"]
        if not NAME.fullmatch(name):
            raise BadInput(f"series name {name[:80]!r} is not allowed; use 1 to 200 of A-Z a-z 0-9 _ . : -.", 400, "bad_input")
        return name

    async def push(request: Request) -> Response:
        made = False  # whether this request made the series: a refused first push leaves none behind
        try:
            guard(request)
            name = series_name(request)
            body = await read_body(request.stream(), request.headers.get("content-length"), service.max_body)
            made = service.registry.get(name) is None
            try:
                stream = service.registry.stream(name, name, "push")
            except UnknownSeries as exc:
                raise BadInput(str(exc), 404, "unknown_series") from None
            except TooMany as exc:
                raise BadInput(str(exc), 409, "bad_input") from None
            scorer = stream.scorer
            provisional = _flag(request.query_params.get("provisional"))
            if (request.headers.get("content-type") or "").split(";")[0].strip().lower() in ("text/csv", "application/csv"):
                times, values = parse_csv(body, scorer.n_features, scorer.feature_names, service.max_points)
            else:
                times, values, asked = parse_json(body, scorer.n_features, scorer.feature_names, service.max_points)
                provisional = provisional or bool(asked)
            started = time.perf_counter()
            try:
                answer = await run_in_threadpool(service.registry.push, stream, times, values, provisional)
            except LstmaeError as exc:
                raise BadInput(f"the points were refused, none accepted: {' '.join(str(exc).split())}", 422, "bad_input") from None
            service.metrics.latency.observe(time.perf_counter() - started)
            service.metrics.points.labels("push").inc(answer["accepted"])
            service.metrics.ignored.labels("push").inc(answer["ignored"])
            return JSONResponse(answer)
        except BadInput as exc:
            if made:
                service.registry.forget_if_empty(request.path_params["name"])
            return refused(exc)

    def known(request: Request):
        """(name, its stream) of the request's series; a 404 BadInput when the service has none by that name."""
        name = request.path_params["name"]
        stream = service.registry.get(name)
        if stream is None:
            raise BadInput(f"no series {name[:200]!r} in this service; GET /v1/series lists them.", 404, "unknown_series")
        return name, stream

    def since(request: Request) -> float | None:
        """The ``?since=T`` query parameter in seconds since the epoch, or None; a 400 BadInput when not a number."""
        value = request.query_params.get("since")
        try:
            return None if value is None else float(value)
        except ValueError:
            raise BadInput(f"since={value!r} is not a number; pass seconds since the epoch.", 400, "bad_input") from None

    async def intervals(request: Request) -> Response:
        try:
            guard(request)
            name, stream = known(request)
            after = since(request)
            with stream.lock:
                closed = list(stream.closed)
                opened = stream.open_interval()
                about = stream.describe()
            if after is not None:
                closed = [c for c in closed if c.get("end_time", np.inf) >= after]
            return JSONResponse({"series": name, "threshold": about["threshold"], "last_accepted_time": about["last_accepted_time"],
                                 "closed": closed, "open": opened})
        except BadInput as exc:
            return refused(exc)

    async def scores(request: Request) -> Response:
        try:
            guard(request)
            name, stream = known(request)
            after = since(request)
            with stream.lock:
                rows = stream.recent_scores(after)
                about = stream.describe()
            return JSONResponse({"series": name, "threshold": about["threshold"], "last_accepted_time": about["last_accepted_time"],
                                 "scores": rows})
        except BadInput as exc:
            return refused(exc)

    async def series(request: Request) -> Response:
        try:
            guard(request)
        except BadInput as exc:
            return refused(exc)
        return JSONResponse({"series": [s.describe() for s in list(service.registry.streams.values())]})

    async def metrics(request: Request) -> Response:
        try:
            guard(request)
        except BadInput as exc:
            return refused(exc)
        return Response(await run_in_threadpool(service.metrics.exposition), media_type=CONTENT_TYPE)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready, detail = service.readiness()
        return JSONResponse({"status": "ready" if ready else "not ready", **detail}, status_code=200 if ready else 503)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        hint = {404: "no such route; see GET /v1/series, POST /v1/series/{name}/points", 405: "method not allowed on this route"}
        return JSONResponse({"error": "not_found" if exc.status_code == 404 else "bad_request",
                             "detail": hint.get(exc.status_code, str(exc.detail))}, status_code=exc.status_code)

    async def internal(request: Request, exc: Exception) -> Response:  # a bug: one line, no traceback to the client
        service.metrics.errors.labels("internal").inc()
        service.log.error("lstmae serve: internal error on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return JSONResponse({"error": "internal", "detail": f"internal error ({type(exc).__name__}); it was logged, please report it."}, status_code=500)

    routes = [
        Route("/v1/series/{name}/points", push, methods=["POST"]),
        Route("/v1/series/{name}/intervals", intervals, methods=["GET"]),
        Route("/v1/series/{name}/scores", scores, methods=["GET"]),
        Route("/v1/series", series, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: internal}, lifespan=lifespan)


def _flag(text: str | None) -> bool:
    return text is not None and text.strip().lower() in ("1", "true", "yes", "on")


__all__ = ["NAME", "build_app"]
