"""The service's streams: one `StreamScorer` per series, what it last said, and its checkpoint.

A `Stream` takes points in time order (times: seconds since the epoch, as
Prometheus gives them). A point at or before the last accepted time is
ignored and counted, never scored twice, so a client (or the Prometheus
reader) may resend from the last accepted time it was told.

Checkpoints (`Registry.checkpoint`): one safetensors file per changed stream in
``STATE_DIR/streams/``, written atomically (`lstmae.persistence.model_file.write_document`):
the scorer's `StreamScorer.state_dict` plus the stream's own fields (name, key,
last accepted time, the last raw rows, intervals) as JSON. No pickle.
`Registry.restore` reads them back at start: a stream continues exactly where
its checkpoint stopped; what came after the checkpoint was never accepted.

A model replaced on disk (`lstmae.serve.models.Models.reload`) reaches a stream
at its next points: a new scorer is fed the stream's last raw rows
(`KEEP_ROWS`, or the old model's ``delay + 2 * timesteps`` if more: enough for
every point not final yet to be scored by the new model as a whole series
would be, for windows up to about 300), and only points after the last final
one are reported (those the swap itself made final, in the next push's answer).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors import SafetensorError, safe_open

from lstmae.errors import LstmaeError, ModelFileError, ParameterError
from lstmae.persistence.model_file import METADATA_KEY, write_document
from lstmae.serve.models import Models, UnknownSeries
from lstmae.streaming.scorer import StreamScorer

#: Closed intervals a stream keeps for ``GET /v1/series/{name}/intervals`` (the oldest go first).
KEEP_INTERVALS = 1000
#: Raw rows a stream keeps at least, for a model swap: a new model of window T scores exactly (as a whole series
#: would) the points not final at the swap when the old model's delay + 1.5 T fits in them.
KEEP_ROWS = 512
#: Final scores a stream keeps for ``GET /v1/series/{name}/scores`` (the newest).
KEEP_SCORES = 1024
SERVE_FORMAT = "lstmae.serve.stream"
SERVE_VERSION = 1


class Stream:
    """One series: its scorer, the last accepted time, its latest final score, its intervals."""

    def __init__(self, name: str, key: str, scorer: StreamScorer, version: str, source: str, labels: dict | None = None) -> None:
        self.name, self.key, self.source, self.labels = name, key, source, dict(labels or {})
        self.lock = threading.Lock()
        self._use(scorer, version)
        self.last_time: float | None = None  # the last accepted point's time
        self.accepted = 0
        self.ignored = 0
        self.score = float("nan")  # the latest final score, and its point's time
        self.score_time = float("nan")
        self.closed: deque[dict] = deque(maxlen=KEEP_INTERVALS)
        self.recent_times = np.zeros(0)
        self.recent_values = np.zeros((0, scorer.n_features))
        self.score_times = np.zeros(0)  # the last KEEP_SCORES final scores and their times
        self.scores = np.zeros(0)
        self.updated = 0.0  # wall time of the last accepted point
        self.pending: list[dict[str, Any]] = []  # final scores a model swap gave, for the next push's answer
        self.dirty = True

    def _use(self, scorer: StreamScorer, version: str) -> None:
        self.scorer, self.version = scorer, version
        self.keep = max(KEEP_ROWS, scorer.delay + 2 * scorer.timesteps)  # raw rows kept for a model swap

    @property
    def threshold(self) -> float:
        return self.scorer.threshold

    # ------------------------------------------------------------------ points
    def push(self, times: np.ndarray, values: np.ndarray, provisional: bool = False) -> dict[str, Any]:
        """Score the points after the last accepted time; (under ``lock``). Returns what the push answers.

        ``times`` (k,) float64 strictly increasing, ``values`` (k, F) float64 (NaN: missing, interpolated).
        Raises `lstmae.errors.DataError` (nothing accepted) for values the scorer refuses.
        """
        new = times > self.last_time if self.last_time is not None else np.ones(len(times), dtype=bool)
        ignored = int(len(times) - new.sum())
        times, values = times[new], values[new]
        final = self._update(values, times) if len(times) else None
        self.ignored += ignored
        answer: dict[str, Any] = {"series": self.name, "accepted": int(len(times)), "ignored": ignored}
        answer["scores"] = self.pending + _rows(final)
        self.pending = []
        if provisional:
            guess = self.scorer.provisional()
            answer["provisional"] = [{"time": float(t), "score": float(s), "anomaly": int(s > self.threshold)}
                                     for t, s in zip(guess.index.to_numpy(dtype=np.float64), guess.to_numpy())]
        answer["last_accepted_time"] = self.last_time
        answer["threshold"] = self.threshold
        return answer

    def _update(self, values: np.ndarray, times: np.ndarray) -> pd.DataFrame:
        was_open = self.scorer.open_start >= 0
        final = self.scorer.update(values, times)  # gap warnings: the service filters them once (service.run)
        self.last_time = float(times[-1])
        self.accepted += len(times)
        self.updated = time.time()
        self.recent_times = np.concatenate([self.recent_times, times])[-self.keep:]
        self.recent_values = np.concatenate([self.recent_values, values])[-self.keep:]
        if len(final):
            self._scored(final)
            if was_open or final["anomaly"].to_numpy().any():  # else no interval can have closed: skip building the table
                for row in self.scorer.closed_intervals.to_dict("records"):
                    self.closed.append(_interval(row))
        self.dirty = True
        return final

    def _scored(self, final: pd.DataFrame) -> None:
        times, scores = final.index.to_numpy(dtype=np.float64), final["score"].to_numpy(dtype=np.float64)
        self.score, self.score_time = float(scores[-1]), float(times[-1])
        self.score_times = np.concatenate([self.score_times, times])[-KEEP_SCORES:]
        self.scores = np.concatenate([self.scores, scores])[-KEEP_SCORES:]

    def recent_scores(self, since: float | None = None) -> list[dict[str, Any]]:
        """The final scores kept (the newest `KEEP_SCORES`), after ``since`` when given."""
        keep = self.score_times > since if since is not None else slice(None)
        threshold = self.threshold
        return [{"time": t, "score": s, "anomaly": int(s > threshold)}
                for t, s in zip(self.score_times[keep].tolist(), self.scores[keep].tolist())]

    def swap(self, scorer: StreamScorer, version: str) -> None:
        """Continue with another model's scorer: replay the last raw rows; report nothing before the last final point."""
        last_final = self.score_time
        final = scorer.update(self.recent_values, self.recent_times) if len(self.recent_times) else None
        self._use(scorer, version)
        if final is not None and len(final) and not np.isnan(last_final):
            final = final[final.index.to_numpy(dtype=np.float64) > last_final]
        if final is not None and len(final):
            self._scored(final)
            self.pending = _rows(final)  # a new model with a shorter delay finalises points at once: the next answer has them
        self.dirty = True

    # ------------------------------------------------------------------ reading
    def open_interval(self) -> dict[str, Any] | None:
        """The interval still open (its last anomalous point so far), or None."""
        scorer = self.scorer
        if scorer.open_start < 0 or not len(scorer.open_times):
            return None
        last = min(scorer.open_end - scorer.open_start, len(scorer.open_times) - 1)
        scores = scorer.open_scores[: last + 1]
        return {"start_time": float(scorer.open_times[0]), "end_time": float(scorer.open_times[last]),
                "length": int(last + 1), "peak_score": float(scores.max()), "mean_score": float(scores.mean()),
                "severity": float(scores.max() / scorer.threshold) if scorer.threshold else None}

    def describe(self) -> dict[str, Any]:
        return {"series": self.name, "key": self.key, "source": self.source, "labels": self.labels,
                "last_accepted_time": self.last_time, "accepted": self.accepted, "ignored": self.ignored,
                "score": None if np.isnan(self.score) else self.score,
                "score_time": None if np.isnan(self.score_time) else self.score_time,
                "anomaly": None if np.isnan(self.score) else int(self.score > self.threshold),
                "threshold": self.threshold, "delay_points": self.scorer.delay}

    # ------------------------------------------------------------------ saving
    def save(self, path: Path) -> None:
        state = self.scorer.state_dict()
        tensors = dict(state["tensors"])
        import torch

        tensors["serve.recent_times"] = torch.from_numpy(np.ascontiguousarray(self.recent_times, dtype=np.float64))
        tensors["serve.recent_values"] = torch.from_numpy(np.ascontiguousarray(self.recent_values, dtype=np.float64))
        tensors["serve.score_times"] = torch.from_numpy(np.ascontiguousarray(self.score_times, dtype=np.float64))
        tensors["serve.scores"] = torch.from_numpy(np.ascontiguousarray(self.scores, dtype=np.float64))
        fields = dict(state["fields"])
        fields["serve"] = {
            "format": SERVE_FORMAT, "format_version": SERVE_VERSION, "name": self.name, "key": self.key,
            "source": self.source, "labels": self.labels, "version": self.version, "last_time": self.last_time,
            "accepted": self.accepted, "ignored": self.ignored, "score": self.score, "score_time": self.score_time,
            "closed": list(self.closed),
        }
        write_document(path, tensors, fields, "the stream checkpoint")

    @classmethod
    def restore(cls, path: Path, models: Models) -> "Stream":
        """The stream saved in ``path``, continued by the model in force (replayed when the model changed)."""
        try:
            with safe_open(path, framework="pt", device="cpu") as stored:
                fields = json.loads((stored.metadata() or {}).get(METADATA_KEY, "null"))
                tensors = {key: stored.get_tensor(key) for key in stored.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{str(path)!r} is not a readable stream checkpoint ({' '.join(str(exc).split())[:200]}).") from None
        about = fields.get("serve") if isinstance(fields, dict) else None
        if not isinstance(about, dict) or about.get("format") != SERVE_FORMAT:
            raise ModelFileError(f"{str(path)!r} is not a stream checkpoint of lstmae serve.")
        scorer, version = models.scorer_for(about["key"])
        stream = cls(about["name"], about["key"], scorer, version, about["source"], about.get("labels"))
        stream.recent_times = tensors["serve.recent_times"].numpy().copy()
        stream.recent_values = tensors["serve.recent_values"].numpy().copy()
        stream.score_times = tensors["serve.score_times"].numpy().copy()
        stream.scores = tensors["serve.scores"].numpy().copy()
        stream.last_time, stream.accepted, stream.ignored = about["last_time"], about["accepted"], about["ignored"]
        stream.score, stream.score_time = float(about["score"]), float(about["score_time"])
        stream.closed.extend(about["closed"])
        try:
            scorer.load_state_dict({"tensors": tensors, "fields": fields})
        except (ParameterError, ModelFileError):  # the model changed while the service was down: replay
            stream.swap(models.scorer_for(about["key"])[0], version)
        stream.dirty = False
        return stream


def _rows(final: pd.DataFrame | None) -> list[dict[str, Any]]:
    if final is None or not len(final):
        return []
    times = final.index.to_numpy(dtype=np.float64).tolist()
    return [{"time": t, "score": s, "anomaly": a} for t, s, a in zip(times, final["score"].tolist(), final["anomaly"].tolist())]


def _interval(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name in ("start_time", "end_time", "length", "peak_score", "mean_score", "severity", "top_features"):
        if name in row:
            value = row[name]
            out[name] = value.item() if hasattr(value, "item") else value
    return out


def file_name(name: str) -> str:
    """A checkpoint's file name: a digest of the series name (any label set fits, no path tricks)."""
    return hashlib.sha256(name.encode()).hexdigest()[:32] + ".safetensors"


class Registry:
    """{series name: Stream}, made on first use; checkpoints and restores them all."""

    def __init__(self, models: Models, *, max_series: int = 10_000, state_dir: Path | None = None) -> None:
        self.models = models
        self.max_series = max_series
        self.state_dir = state_dir
        self.streams: dict[str, Stream] = {}
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self.restore_errors: list[str] = []

    def get(self, name: str) -> Stream | None:
        return self.streams.get(name)

    def stream(self, name: str, key: str, source: str, labels: dict | None = None) -> Stream:
        """The stream ``name`` (made now if new: UnknownSeries when no model fits; TooMany past ``max_series``)."""
        found = self.streams.get(name)
        if found is not None:
            return found
        with self._lock:
            found = self.streams.get(name)
            if found is None:
                if len(self.streams) >= self.max_series:
                    raise TooMany(f"the service holds {len(self.streams)} series, its limit (--max-series {self.max_series}); "
                                  "raise --max-series or run another service.")
                scorer, version = self.models.scorer_for(key)
                found = self.streams[name] = Stream(name, key, scorer, version, source, labels)
        return found

    def forget_if_empty(self, name: str) -> None:
        """Drop a stream that never accepted a point (its first push was refused): refused pushes make no series."""
        with self._lock:
            stream = self.streams.get(name)
            if stream is not None and stream.accepted == 0 and stream.last_time is None:
                del self.streams[name]

    def push(self, stream: Stream, times: np.ndarray, values: np.ndarray, provisional: bool = False) -> dict[str, Any]:
        """`Stream.push` under the stream's lock, first moving it to a reloaded model."""
        with stream.lock:
            version = self.models.current.version
            if stream.version != version:
                try:
                    stream.swap(*self.models.scorer_for(stream.key))
                except UnknownSeries:
                    pass  # the new model does not know it: the old one goes on
            return stream.push(times, values, provisional)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self) -> int:
        """Write every changed stream's checkpoint (atomically, one file each). Returns how many were written."""
        if self.state_dir is None:
            return 0
        folder = self.state_dir / "streams"
        written = 0
        with self._save_lock:
            for stream in list(self.streams.values()):
                if not stream.dirty:
                    continue
                with stream.lock:
                    stream.dirty = False
                    stream.save(folder / file_name(stream.name))  # under the lock: state and fields of one moment
                written += 1
        return written

    def restore(self) -> int:
        """Read the checkpoints in the state folder; a damaged one is skipped and said (``restore_errors``)."""
        if self.state_dir is None:
            return 0
        folder = self.state_dir / "streams"
        for leftover in folder.glob(".*.tmp"):  # a checkpoint being written when the process was killed
            leftover.unlink(missing_ok=True)
        for path in sorted(folder.glob("*.safetensors")):
            try:
                stream = Stream.restore(path, self.models)
            except (LstmaeError, KeyError, TypeError, ValueError) as exc:
                self.restore_errors.append(f"{path.name}: {' '.join(str(exc).split())[:300]}")
                continue
            self.streams[stream.name] = stream
        return len(self.streams)


class TooMany(LstmaeError):
    """The service holds as many series as --max-series allows."""


__all__ = ["Registry", "Stream", "TooMany", "file_name"]
