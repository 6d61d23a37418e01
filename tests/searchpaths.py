"""Running a test with the nearest-row search in C or in torch (lstmae.scoring.latent, lstmae.scoring.neighbours)."""

from __future__ import annotations

import contextlib
from unittest import mock

import pytest

from lstmae.backends import kernels


def search_path(path: str):
    """Run the nearest-row search in C (lstmae.backends.kernels; skipped where the kernels are not built) or in torch."""
    if path == "torch":
        return mock.patch.object(kernels, "searchable", lambda *tensors: False)
    if kernels.library() is None:
        pytest.skip("the C kernels are not built here")
    return contextlib.nullcontext()
