"""The service's guards: a bearer token, the size of a request's body, the rate of requests per client."""

from __future__ import annotations

import hmac
import threading
import time
from pathlib import Path

from lstmae.errors import ParameterError
from lstmae.serve.points import BadInput


def read_token(path: Path) -> str:
    """The token in ``path`` (its first line, stripped); ParameterError when it is missing or empty."""
    try:
        token = path.read_text().strip().splitlines()[0].strip() if path.read_text().strip() else ""
    except OSError as exc:
        raise ParameterError(f"--token-file {str(path)!r} cannot be read: {exc.strerror or exc}.") from None
    if len(token) < 16:
        raise ParameterError(f"--token-file {str(path)!r} holds a token of {len(token)} characters; use at least 16 (e.g. `openssl rand -hex 32`).")
    return token


def check_token(expected: str | None, header: str | None) -> None:
    """BadInput 401 unless the Authorization header is ``Bearer <token>`` (compared in constant time)."""
    if expected is None:
        return
    if not header or not header.startswith("Bearer "):
        raise BadInput("this service needs a bearer token: send the header 'Authorization: Bearer <token>'.", 401, "unauthorized")
    if not hmac.compare_digest(header[len("Bearer "):].strip().encode(), expected.encode()):
        raise BadInput("the bearer token is not the one this service was started with (--token-file).", 401, "unauthorized")


class RateLimit:
    """A token bucket per client address: ``rate`` requests per second, bursts of ``burst``; rate 0: no limit."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, 2 * rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens < 1:
                self._buckets[client] = (tokens, now)
                raise BadInput(f"too many requests from {client}: the limit is {self.rate:g} per second (--rate-limit); slow down and retry.",
                               429, "rate_limited")
            self._buckets[client] = (tokens - 1, now)
            if len(self._buckets) > 10_000:  # forget idle clients
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}


async def read_body(receive_stream, declared: str | None, limit: int) -> bytes:
    """The request body, refused (413) past ``limit`` bytes, whether or not a Content-Length says so."""
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadInput(f"Content-Length {declared!r} is not a number.", 400, "bad_input") from None
        if size > limit:
            raise BadInput(f"the body has {size} bytes, more than the limit of {limit} (--max-body); send smaller blocks.", 413, "too_large")
    chunks, total = [], 0
    async for chunk in receive_stream:
        total += len(chunk)
        if total > limit:
            raise BadInput(f"the body has more than {limit} bytes, the limit (--max-body); send smaller blocks.", 413, "too_large")
        chunks.append(chunk)
    return b"".join(chunks)


__all__ = ["RateLimit", "check_token", "read_body", "read_token"]
