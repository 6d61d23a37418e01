"""Model files: one safetensors file holding the weights, with JSON in its header.

Layout of a model file (format version 1):

* tensors: the network's ``state_dict`` under ``net.<name>`` (float32) and any
  other arrays the estimator keeps (``scaler.mean``, ``scaler.scale``, float64);
* header metadata ``"lstmae"``: a JSON document with the format name and
  version, the versions of lstmae / torch / numpy that wrote it, the
  estimator's parameters and fitted state, the user's ``metadata`` (a JSON
  object, ``{}`` when none), and a SHA-256 of the tensors.

The scoring state (`lstmae.scoring.state.ScoringState`) is written and read as one
unit (``to_tensors`` / ``from_tensors``): ``scaler.*`` and ``scoring.*`` tensors
plus its fields under ``fitted``; files written before it existed have the
same names and load unchanged.

Loading parses JSON and raw tensors only; it never executes code (no pickle).
Files are written to a temporary name in the same directory, flushed to disk
and renamed over the target, so an existing model is never half-replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import safetensors.torch
from safetensors import SafetensorError, safe_open

from lstmae._version import __version__
from lstmae.backends.device import resolve_device
from lstmae.backends.network import LSTMAutoencoder as Network
from lstmae.config import NetworkConfig
from lstmae.errors import DataFileError, ModelFileError, ParameterError, describe
from lstmae.inputs import check_model_path
from lstmae.params import jsonable_params
from lstmae.persistence.atomic import atomic_target
from lstmae.scoring.state import ScoringSettings, ScoringState

FORMAT_NAME = "lstmae.model"
#: 2: the scoring state as named score parts (`lstmae.scoring.parts`); format 1 files still load.
#: 3: parts with fitted options that change what a score means (a multivariate reconstruction's maximum over
#: features, the nearest windows' columns), the training rows' fingerprints: a lstmae that reads format 2 only
#: would score such a file differently without a word, so it refuses it. Files of formats 1 and 2 still load.
#: 4: aggregation="peak" (each timestep's most anomalous window), the default since issue 25: a lstmae that reads
#: format 3 would take it for "timestep" without a word. Files of formats 1 to 3 still load.
FORMAT_VERSION = 4
METADATA_KEY = "lstmae"
#: How a global model's file names each series' scoring state tensors: ``series.<i>.<name>``.
SERIES_PREFIX = "series.{}."


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of the tensors, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_model(path: str | os.PathLike, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> Path:
    """Write ``tensors`` and the JSON-serialisable ``info`` to ``path`` atomically.

    Returns the path written. Raises ModelFileError if the directory cannot be
    written; the previous file at ``path``, if any, is then untouched.
    """
    target = Path(path)
    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    document = {
        **info,  # first, so that it can never overwrite the format fields below
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "lstmae_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tensors_sha256": tensors_digest(tensors),
    }
    write_document(target, tensors, document, "the model")
    return target


def write_document(target: Path, tensors: dict[str, torch.Tensor], document: dict[str, Any], what: str) -> None:
    """One safetensors file: ``tensors`` (contiguous, on the CPU) and ``document`` as JSON in its header.

    Written atomically (a temporary file, then a rename); ``what`` names the file in errors.
    Raises ModelFileError if the directory cannot be written.
    """
    metadata = {METADATA_KEY: json.dumps(document, allow_nan=True)}
    try:
        with atomic_target(target, what) as temporary:
            mode = temporary.stat().st_mode  # 0o666 less the umask, as atomic_target created it
            safetensors.torch.save_file(tensors, temporary, metadata=metadata)  # looked up now: tests replace it
            os.chmod(temporary, mode)  # safetensors re-creates the file as 0o600: unreadable to the user's group
    except DataFileError as exc:
        raise ModelFileError(str(exc)) from None


def load_model(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a model file written by `save_model`.

    Returns
    -------
    tensors : dict of name -> Tensor (CPU)
    info : dict
        The JSON document (format fields included).

    Raises
    ------
    ModelFileError
        Missing file, a directory, not a safetensors file, truncated or
        damaged content (hash mismatch), not an lstmae model, or a newer format.
    """
    source = Path(path)
    name = str(source)
    check_model_path(source)  # the checks the command line runs before importing torch
    try:
        with safe_open(source, framework="pt", device="cpu") as stream:
            metadata = stream.metadata() or {}
            tensors = {key: stream.get_tensor(key) for key in stream.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(
            f"{name!r} is not a readable lstmae model (damaged, truncated or not a safetensors file: {reason}); train it again."
        ) from None
    if METADATA_KEY not in metadata:
        raise ModelFileError(f"{name!r} is a safetensors file but not an lstmae model (no {METADATA_KEY!r} header).")
    try:
        info = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{name!r} has a damaged header ({exc.msg}); train the model again.") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{name!r} is not an lstmae model (format {info.get('format') if isinstance(info, dict) else None!r}).")
    version = info.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{name!r} has an invalid format version {version!r}.")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{name!r} uses model format {version}, newer than this lstmae ({__version__}) reads "
            f"(format {FORMAT_VERSION}); upgrade lstmae to load it."
        )
    if tensors_digest(tensors) != info.get("tensors_sha256"):
        raise ModelFileError(f"{name!r} is damaged: its weights do not match the checksum stored with them; train it again.")
    return tensors, info


def model_document(params: Mapping[str, Any], config: NetworkConfig, fitted: Mapping[str, Any], metadata: Any) -> dict[str, Any]:
    """The JSON document of a fitted model: parameters, network config, fitted fields, user metadata.

    ``params`` are the estimator's keywords (`get_params`); ``fitted`` its fitted
    fields, the scoring state's (`lstmae.scoring.state.ScoringState.to_tensors`,
    `series_states_to_tensors`) included; ``metadata`` must be a mapping of str to
    JSON values (ParameterError otherwise).
    """
    if not (isinstance(metadata, Mapping) and all(isinstance(key, str) for key in metadata)):
        raise ParameterError(f"metadata must be a mapping with str keys (a dict), got {type(metadata).__name__}: {metadata!r:.200}.")
    try:
        json.dumps(dict(metadata), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"metadata must be a mapping of JSON values, got {describe(metadata)} ({exc}); "
            "keep str, numbers, bool, None, lists and dicts only."
        ) from None
    return {
        "params": jsonable_params(params),
        "tuple_params": [key for key, value in params.items() if isinstance(value, tuple)],
        "network": config.to_dict(),
        "fitted": dict(fitted),
        "metadata": dict(metadata),
    }


@dataclass(frozen=True)
class StoredModel:
    """What a model file holds, read and checked, for the estimator to become (`read_model`).

    params : the estimator's keywords (tuples given back as tuples, ``device`` as asked)
    config : the network's configuration
    network : the trained network, in eval mode, on the device asked for
    fitted : the fitted fields of the JSON document (``history_``, ``seed_``, ...)
    metadata : the user's metadata (a dict)
    tensors : every tensor of the file; `scoring_states` reads the scoring states from them
    """

    path: str
    params: dict[str, Any]
    config: NetworkConfig
    network: Network
    fitted: dict[str, Any]
    metadata: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    def scoring_states(self, settings: ScoringSettings) -> dict[Any, ScoringState]:
        """{series key: scoring state}: one entry, key None, for a model of one series or panel (`scoring_tensors`)."""
        try:
            if "series_states" in self.fitted:  # a global model over a collection of series
                return series_states_from_tensors(self.tensors, self.fitted["series_states"], settings)
            return {None: ScoringState.from_tensors(self.tensors, self.fitted, settings)}
        except _CONTENT_ERRORS as exc:
            raise self.inconsistent(exc) from None

    def inconsistent(self, exc: BaseException) -> ModelFileError:
        """The error for content that does not fit together (``exc``, raised while turning it into objects)."""
        return _inconsistent(self.path, exc)


# What bad content raises while it is turned into objects.
_CONTENT_ERRORS = (KeyError, TypeError, ValueError, RuntimeError, ParameterError)


def _inconsistent(name: str, exc: BaseException) -> ModelFileError:
    reason = str(exc).splitlines()[0] if str(exc) else ""
    return ModelFileError(f"{name!r} is an lstmae file with incomplete or inconsistent content ({type(exc).__name__}: {reason}).")


def read_model(path: str | os.PathLike, device: str = "auto") -> StoredModel:
    """A model file written by `save_model` with `model_document`, old files included, read into plain parts.

    Raises ModelFileError (`load_model`'s, and for content that does not fit together).
    """
    tensors, info = load_model(path)
    name = str(path)
    try:
        params = dict(info["params"])
        params["device"] = device
        for key in info.get("tuple_params", []):  # JSON has no tuples: give back what was given
            params[key] = tuple(params[key])
        config = NetworkConfig.from_dict(info["network"])
        network = Network(config)
        network.load_state_dict({k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
        fitted = dict(info["fitted"])
        metadata = info.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata is a {type(metadata).__name__}, not an object")
    except _CONTENT_ERRORS as exc:
        raise _inconsistent(name, exc) from None
    network.eval()
    return StoredModel(name, params, config, network.to(resolve_device(device)), fitted, metadata, tensors)


def scoring_tensors(states: Mapping[Any, ScoringState]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A model's scoring states as model-file tensors and fields.

    A model of one series or panel (the one key None) writes its state as format 1 always has
    (``scaler.*``, ``scoring.*`` and its fields); a global model ``series.<i>.*`` and ``series_states``.
    """
    if list(states) == [None]:
        return states[None].to_tensors()
    return series_states_to_tensors(states)


def series_states_to_tensors(states: Mapping[Any, ScoringState]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every series' scoring state as model-file tensors ``series.<i>.<name>`` and fields ``{"series_states": [...]}``."""
    tensors: dict[str, torch.Tensor] = {}
    entries = []
    for number, (key, state) in enumerate(states.items()):
        own, fields = state.to_tensors()
        tensors.update({SERIES_PREFIX.format(number) + name: tensor for name, tensor in own.items()})
        entries.append({"key": key, **fields})
    return tensors, {"series_states": entries}


def series_states_from_tensors(tensors: dict[str, torch.Tensor], entries: list, settings: ScoringSettings) -> dict[Any, ScoringState]:
    """The dict {key: ScoringState} `series_states_to_tensors` wrote. Raises KeyError, TypeError or ValueError on bad content."""
    states = {}
    for number, entry in enumerate(entries):
        prefix = SERIES_PREFIX.format(number)
        own = {name[len(prefix):]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}
        key = entry["key"]
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise ValueError(f"series key {key!r} is neither str nor int")
        states[key] = ScoringState.from_tensors(own, entry, settings)
    return states


__all__ = [
    "METADATA_KEY", "StoredModel", "load_model", "model_document", "read_model", "save_model", "scoring_tensors",
    "series_states_from_tensors", "series_states_to_tensors", "write_document",
]
