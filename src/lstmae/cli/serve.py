"""``lstmae serve``: the options, checked before anything heavy is imported, then `lstmae.serve.service.run`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from lstmae.errors import ParameterError
from lstmae.inputs import check_fleet_path, check_model_path

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(option: str, text: str, minimum: float = 0.0) -> float:
    """'60s', '1m', '500ms', '2h', '1.5' (seconds) as seconds; ParameterError naming the option otherwise."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ParameterError(f"{option} {text!r} is not a duration; write e.g. 60s, 1m, 500ms or a number of seconds.")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < minimum or (minimum == 0 and seconds < 0):
        raise ParameterError(f"{option} {text!r} is too short; it must be at least {minimum:g} s.")
    return seconds


def parse_size(option: str, text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([kKmM]i?[bB]?|[bB])?\s*", text)
    if not match:
        raise ParameterError(f"{option} {text!r} is not a size; write e.g. 1MB, 256kB or a number of bytes.")
    factor = {"k": 1 << 10, "m": 1 << 20}.get((match.group(2) or "b")[0].lower(), 1)
    size = int(match.group(1)) * factor
    if size < 1024:
        raise ParameterError(f"{option} {text!r} is smaller than 1kB; a request needs room for its points.")
    return size


def _check_address(host: str, port: int) -> None:
    """Refuse, in one line, an address the server could not listen on (a port in use, a host not of this machine)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        raise ParameterError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port (or --host).") from None


def serve(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model file written by `lstmae fit` (one series, or a global model: --series-column), or a fleet folder (`lstmae fleet fit`).", show_default=False)],
    host: Annotated[str, typer.Option("--host", help="Address to listen on; 0.0.0.0 exposes the service to the network (use --token-file then).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    state_dir: Annotated[Optional[Path], typer.Option("--state-dir", help="Folder for the streams' checkpoints; restored at start. Default: none (a restart starts every stream afresh).")] = None,
    checkpoint_every: Annotated[str, typer.Option("--checkpoint-every", help="Seconds between checkpoints (and one at SIGTERM).")] = "30s",
    token_file: Annotated[Optional[Path], typer.Option("--token-file", help="File holding a bearer token that /v1 and /metrics then require.")] = None,
    max_body: Annotated[str, typer.Option("--max-body", help="Largest request body.")] = "1MB",
    max_points: Annotated[int, typer.Option("--max-points", help="Most points in one push.")] = 10_000,
    rate_limit: Annotated[float, typer.Option("--rate-limit", help="Requests per second per client address (bursts of twice that); 0: no limit.")] = 1000.0,
    max_series: Annotated[int, typer.Option("--max-series", help="Most series the service holds.")] = 10_000,
    min_gap: Annotated[Optional[int], typer.Option("--min-gap", help="Normal points that close an interval (default: the model's timesteps).")] = None,
    prometheus_url: Annotated[Optional[str], typer.Option("--prometheus-url", help="Read the series from this Prometheus (with --query).")] = None,
    query: Annotated[Optional[str], typer.Option("--query", help="PromQL whose result series are scored, each as its own stream.")] = None,
    step: Annotated[str, typer.Option("--step", help="Resolution of the reads: one point per step (the series' sampling interval when fitted).")] = "60s",
    series_label: Annotated[Optional[str], typer.Option("--series-label", help="Label whose value names a Prometheus series and picks its model in a global model or fleet.")] = None,
    lag: Annotated[Optional[str], typer.Option("--lag", help="Read only up to this long before now, so that late scrapes have arrived (default: one step).")] = None,
    lookback: Annotated[str, typer.Option("--lookback", help="At the first start (no checkpoint), read this far into the past.")] = "0s",
    threads: Annotated[int, typer.Option("--threads", help="Torch threads for scoring.")] = 1,
) -> None:
    """Serve scores: pull series from Prometheus or take pushed points; /metrics, intervals, checkpoints."""
    from lstmae.serve import missing_modules

    missing = missing_modules()
    if missing:
        raise ParameterError(f"lstmae serve needs the serve extra (missing: {', '.join(missing)}): pip install 'lstmae[serve]'.")
    if model.is_dir():
        check_fleet_path(model)
    else:
        check_model_path(model)
    if not 0 < port < 65536:
        raise ParameterError(f"--port {port} is not a port; use 1 to 65535.")
    if (prometheus_url is None) != (query is None):
        raise ParameterError("--prometheus-url and --query go together: the Prometheus to read and the PromQL to score.")
    if prometheus_url is not None and not re.match(r"https?://", prometheus_url):
        raise ParameterError(f"--prometheus-url {prometheus_url!r} is not an http(s) URL; write e.g. http://127.0.0.1:9090.")
    for option, value, least in (("--max-points", max_points, 1), ("--max-series", max_series, 1), ("--threads", threads, 1)):
        if value < least:
            raise ParameterError(f"{option} {value} must be at least {least}.")
    if rate_limit < 0:
        raise ParameterError(f"--rate-limit {rate_limit:g} must be 0 (no limit) or more.")
    if token_file is not None and not token_file.is_file():
        raise ParameterError(f"--token-file {str(token_file)!r} is not a file; write the token into one (e.g. `openssl rand -hex 32 > token`).")
    if state_dir is not None and state_dir.exists() and not state_dir.is_dir():
        raise ParameterError(f"--state-dir {str(state_dir)!r} is a file; give a folder.")
    _check_address(host, port)
    from lstmae.serve.service import Options, run

    run(Options(
        model=model, host=host, port=port, state_dir=state_dir, checkpoint_every=parse_duration("--checkpoint-every", checkpoint_every, 0.1),
        token_file=token_file, max_body=parse_size("--max-body", max_body), max_points=max_points, rate_limit=rate_limit,
        max_series=max_series, min_gap=min_gap, prometheus_url=prometheus_url, query=query, step=parse_duration("--step", step, 0.001),
        series_label=series_label, lag=None if lag is None else parse_duration("--lag", lag), lookback=parse_duration("--lookback", lookback),
        threads=threads,
    ))


__all__ = ["parse_duration", "parse_size", "serve"]
