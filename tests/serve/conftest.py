"""Fixtures shared by the serve tests."""

from __future__ import annotations

import pytest

from serving import fit, sine


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """(a model fitted on a 400-point noisy sine, the path it is saved at), once per test module."""
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    model = fit(sine(400, seed=0))
    model.save(path)
    return model, path
