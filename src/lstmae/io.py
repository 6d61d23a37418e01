"""Model files: one safetensors file holding the weights, with JSON in its header.

Layout of a model file (format version 1):

* tensors: the network's ``state_dict`` under ``net.<name>`` (float32) and any
  other arrays the estimator keeps (``scaler.mean``, ``scaler.scale``, float64);
* header metadata ``"lstmae"``: a JSON document with the format name and
  version, the versions of lstmae / torch / numpy that wrote it, the
  estimator's parameters and fitted state, and a SHA-256 of the tensors.

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
from typing import Any

import numpy as np
import torch

from lstmae._version import __version__
from lstmae.errors import DataFileError, ModelFileError
from lstmae.files import atomic_target

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
            save_file(tensors, temporary, metadata=metadata)
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
    if not source.exists():
        raise ModelFileError(f"no model file at {name!r}; train one with `lstmae fit DATA -o {name}`.")
    if source.is_dir():
        raise ModelFileError(f"{name!r} is a directory, not a model file; pass the .safetensors file written by `lstmae fit`.")
    if source.stat().st_size == 0:
        raise ModelFileError(f"model file {name!r} is empty (0 bytes); it was not written completely. Train it again.")
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
