"""The model the service scores with: a model file (one series' or a global model) or a fleet folder.

`Models` loads it whole, then swaps it in (`reload`): a replacement that does not
load (a half-copied file, another model kind, bad JSON) leaves the old model
serving, and `status` says why. A series' scorer comes from `scorer_for`.

Which model scores which series (``key``: the series' name, or the value of
``--series-label`` for a Prometheus series):

* a model of one series: every series;
* a global model: the series fitted under that key (keys compared as text);
* a fleet folder: the series' own model (``manifest.parquet``, status "ok").
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstmae.errors import LstmaeError, ModelFileError
from lstmae.estimator import LSTMAutoencoder
from lstmae.streaming.scorer import StreamScorer


class UnknownSeries(LstmaeError):
    """No model scores this series (a global model or a fleet that was not fitted on it)."""


@dataclass
class Loaded:
    """One loaded version of the model: what a stream needs to be scored, and how to tell versions apart."""

    path: Path
    kind: str  # "model" (one series), "global", "fleet"
    version: str  # a digest of the files' names, sizes and times; a stream remembers the version it was made with
    model: LSTMAutoencoder | None = None  # "model" and "global"
    keys: dict[str, Any] = field(default_factory=dict)  # "global": {key as text: key}; "fleet": {series: model file}
    fleet_models: dict[str, LSTMAutoencoder] = field(default_factory=dict)  # fleet models loaded so far


def _signature(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}".encode())
    return digest.hexdigest()[:16]


def _watched(path: Path) -> list[Path]:
    """The files whose change means a new model: the model file, or a fleet's settings and manifest."""
    if path.is_dir():
        return [path / "fleet.json", path / "manifest.parquet"]
    return [path]


def load(path: Path) -> Loaded:
    """Load the model at ``path`` whole; ModelFileError (one line) when it cannot serve."""
    if not path.exists():
        raise ModelFileError(f"model {str(path)!r} does not exist; pass --model with a file written by `lstmae fit` or a fleet folder.")
    try:
        version = _signature(_watched(path))
    except OSError as exc:
        raise ModelFileError(f"cannot read model {str(path)!r}: {exc.strerror or exc}.") from None
    if path.is_dir():
        from lstmae.fleet.runner import Fleet

        fleet = Fleet.load(path)
        manifest = fleet.manifest_
        ok = manifest[manifest["status"] == "ok"]
        keys = {str(name): path / str(model) for name, model in zip(ok["series"], ok["model"])}
        if not keys:
            raise ModelFileError(f"the fleet {str(path)!r} has no fitted series (every status is not 'ok'); fit it first.")
        return Loaded(path, "fleet", version, keys=keys)
    model = LSTMAutoencoder.load(path, device="cpu")
    if model.input_kind_ == "panel":
        raise ModelFileError(f"{str(path)!r} was fitted on a panel of separate sequences; the service scores long series.")
    states = model.scoring_states_
    if None in states:
        return Loaded(path, "model", version, model=model)
    return Loaded(path, "global", version, model=model, keys={str(key): key for key in states})


class Models:
    """The model in force and its reloads; thread-safe (`reload` runs beside the scoring threads)."""

    def __init__(self, path: str | os.PathLike, *, min_gap: int | None = None) -> None:
        self.path = Path(path)
        self.min_gap = min_gap
        self._lock = threading.Lock()
        self.current = load(self.path)
        self.reloads = 0
        self.last_error: str | None = None  # why the last replacement was refused (None: the file on disk serves)

    # ------------------------------------------------------------------ scorers
    def scorer_for(self, key: str) -> tuple[StreamScorer, str]:
        """(a new scorer for series ``key``, the model version it belongs to); UnknownSeries when none fits."""
        loaded = self.current
        return self._scorer(loaded, key), loaded.version

    def _scorer(self, loaded: Loaded, key: str) -> StreamScorer:
        if loaded.kind == "model":
            return loaded.model.stream(min_gap=self.min_gap)
        if loaded.kind == "global":
            if key not in loaded.keys:
                raise UnknownSeries(self._unknown(loaded, key, "the global model was fitted on"))
            return loaded.model.stream(min_gap=self.min_gap, series=loaded.keys[key])
        if key not in loaded.keys:
            raise UnknownSeries(self._unknown(loaded, key, "the fleet has models for"))
        with self._lock:
            model = loaded.fleet_models.get(key)
            if model is None:
                model = loaded.fleet_models[key] = LSTMAutoencoder.load(loaded.keys[key], device="cpu")
        return model.stream(min_gap=self.min_gap)

    @staticmethod
    def _unknown(loaded: Loaded, key: str, what: str) -> str:
        known = sorted(loaded.keys)
        return (f"no model for series {key!r}: {what} {known[:10]}{' ...' if len(known) > 10 else ''}; "
                "name the series as in the fit (or pick the label with --series-label).")

    # ------------------------------------------------------------------ reloads
    def changed(self) -> bool:
        """Whether the files on disk differ from the model in force (or from the last refused replacement)."""
        try:
            return _signature(_watched(self.path)) not in (self.current.version, self._refused)
        except OSError:
            return False  # being replaced right now: look again later

    _refused: str | None = None

    def reload(self) -> bool:
        """Load the model on disk and swap it in; on failure keep the old one and remember why. True when swapped."""
        try:
            signature = _signature(_watched(self.path))
        except OSError as exc:
            self.last_error = f"cannot read {str(self.path)!r}: {exc.strerror or exc}"
            return False
        try:
            loaded = load(self.path)
            if loaded.kind == "model":
                loaded.model.stream()  # a model that cannot stream fails here, not in the first request
        except (LstmaeError, OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            self._refused = signature
            self.last_error = f"the replacement of {str(self.path)!r} was refused, the previous model still serves: {' '.join(str(exc).split())[:300]}"
            return False
        self.current, self._refused, self.last_error = loaded, None, None
        self.reloads += 1
        return True

    def describe(self) -> dict[str, Any]:
        loaded = self.current
        about: dict[str, Any] = {"path": str(self.path), "kind": loaded.kind, "version": loaded.version, "reloads": self.reloads}
        if loaded.kind != "model":
            about["series"] = len(loaded.keys)
        if self.last_error:
            about["reload_error"] = self.last_error
        return about


__all__ = ["Loaded", "Models", "UnknownSeries", "load"]
