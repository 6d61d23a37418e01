"""Which torch device a parameter names: ``"auto"`` -> CUDA when available, else the CPU."""

from __future__ import annotations

import torch

from lstmae.errors import ParameterError
from lstmae.params import check


def resolve_device(device: str) -> torch.device:
    """"auto" -> CUDA when available, else CPU; explicit names checked by the parameter table."""
    check("device", device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device={device!r} but no CUDA device is available here; use device='auto' or 'cpu'.")
    return resolved


__all__ = ["resolve_device"]
