"""Model files: one safetensors file holding the weights, with JSON in its header.

Layout of a model file (format version 1):

* tensors: the network's ``state_dict`` under ``net.<name>`` (float32) and any
  other arrays the estimator keeps (``scaler.mean``, ``scaler.scale``, float64);
* header metadata ``"lstmae"``: a JSON document with the format name and
  version, the versions of lstmae / torch / numpy that wrote it, the
  estimator's parameters and fitted state, the user's ``metadata`` (a JSON
  object, ``{}`` when none), and a SHA-256 of the tensors.

The scoring state (`lstmae.state.ScoringState`) is written and read as one
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
from typing import Any

import numpy as np
import torch

from lstmae._version import __version__
from lstmae.errors import DataFileError, ModelFileError, ParameterError, describe
from lstmae.files import atomic_target
from lstmae.inputs import check_model_path

FORMAT_NAME = "lstmae.model"
FORMAT_VERSION = 1
METADATA_KEY = "lstmae"


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
    from safetensors.torch import save_file

    metadata = {METADATA_KEY: json.dumps(document, allow_nan=True)}
    try:
        with atomic_target(target, what) as temporary:
            mode = temporary.stat().st_mode  # 0o666 less the umask, as atomic_target created it
            save_file(tensors, temporary, metadata=metadata)
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
    from safetensors import SafetensorError, safe_open

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


def model_document(model: Any, fields: dict[str, Any], metadata: Any) -> dict[str, Any]:
    """The JSON document of a fitted `LSTMAutoencoder`: parameters, network config, fitted fields, user metadata.

    ``fields`` are the scoring state's (`lstmae.state.ScoringState.to_tensors`);
    ``metadata`` must be a mapping of str to JSON values (ParameterError otherwise).
    """
    from lstmae.estimator import _jsonable_params

    if not (isinstance(metadata, Mapping) and all(isinstance(key, str) for key in metadata)):
        raise ParameterError(f"metadata must be a mapping with str keys (a dict), got {type(metadata).__name__}: {metadata!r:.200}.")
    try:
        json.dumps(dict(metadata), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"metadata must be a mapping of JSON values, got {describe(metadata)} ({exc}); "
            "keep str, numbers, bool, None, lists and dicts only."
        ) from None
    names = getattr(model, "feature_names_in_", None)
    return {
        "params": _jsonable_params(model.get_params()),
        "tuple_params": [key for key, value in model.get_params().items() if isinstance(value, tuple)],
        "network": model.config_.to_dict(),
        "fitted": {
            **fields,
            "history_": model.history_,
            "timesteps_reason_": model.timesteps_reason_,
            "input_kind_": model.input_kind_,
            "seed_": model.seed_,
            "fit_seconds_": model.fit_seconds_,
            "diagnostics_": getattr(model, "diagnostics_", None),
            "feature_names_in_": None if names is None else [str(n) for n in names],
        },
        "metadata": dict(metadata),
    }


def load_estimator(cls: type, path: str | os.PathLike, device: str = "auto") -> Any:
    """An `LSTMAutoencoder` (``cls``) from a file written by `save_model` with `model_document`; old files included."""
    from lstmae.config import NetworkConfig
    from lstmae.diagnostics import Diagnostics
    from lstmae.estimator import resolve_device
    from lstmae.nn import LSTMAutoencoder as Network
    from lstmae.state import ScoringState

    tensors, info = load_model(path)
    try:
        params = dict(info["params"])
        params["device"] = device
        for key in info.get("tuple_params", []):  # JSON has no tuples: give back what was given
            params[key] = tuple(params[key])
        model = cls(**params)
        config = NetworkConfig.from_dict(info["network"])
        network = Network(config)
        network.load_state_dict({k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
        fitted = info["fitted"]
        model.config_, model.timesteps_, model.n_features_in_ = config, config.timesteps, config.n_features
        if "series_states" in fitted:  # a global model over a collection of series: one state per series
            from lstmae.collection import states_from_tensors

            model.series_states_ = states_from_tensors(tensors, fitted["series_states"], model._settings())
        else:
            model.scoring_state_ = ScoringState.from_tensors(tensors, fitted, model._settings())
        metadata = info.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata is a {type(metadata).__name__}, not an object")
    except (KeyError, TypeError, ValueError, RuntimeError, ParameterError) as exc:
        raise ModelFileError(f"{str(path)!r} is an lstmae file with incomplete or inconsistent content ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}).") from None
    network.eval()
    model.module_ = network.to(resolve_device(device))
    model.metadata_ = metadata
    model.history_ = {k: [float(x) for x in v] for k, v in fitted["history_"].items()}
    model.timesteps_reason_ = fitted.get("timesteps_reason_", "")
    model.input_kind_ = fitted.get("input_kind_", "series")
    model.seed_ = fitted.get("seed_")
    model.fit_seconds_ = fitted.get("fit_seconds_")
    if fitted.get("diagnostics_") is not None:
        model.diagnostics_ = Diagnostics.from_dict(fitted["diagnostics_"]).to_dict()
    if fitted.get("feature_names_in_") is not None:
        model.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
    return model
