"""Tests for lstmae.versions and `lstmae info`: versions, the kernels' state, threads, CUDA devices."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import lstmae
from lstmae.backends import kernels
from lstmae.cli.app import main
from lstmae.versions import versions


@pytest.fixture
def fresh_kernels(monkeypatch):
    monkeypatch.delenv("LSTMAE_KERNELS", raising=False)
    kernels.reset()
    yield
    kernels.reset()


def test_versions_name_what_is_installed():
    import lightning

    found = versions()
    assert found["lstmae"] == lstmae.__version__
    assert found["torch"] == torch.__version__ and found["numpy"] == np.__version__
    assert found["lightning"] == lightning.__version__
    assert found["torch_threads"] == torch.get_num_threads()
    assert found["kernels"] == kernels.status()


def test_kernels_state_off_and_unavailable(fresh_kernels, monkeypatch):
    monkeypatch.setenv("LSTMAE_KERNELS", "0")
    assert versions()["kernels"]["state"] == "off"
    monkeypatch.delenv("LSTMAE_KERNELS")
    monkeypatch.setattr(kernels, "library_file", lambda: None)
    kernels.reset()
    state = versions()["kernels"]
    assert state["state"] == "unavailable" and state["vector_width"] is None and "not built" in state["detail"]


def test_kernels_built_report_their_width_and_threads():
    state = versions()["kernels"]
    if kernels.library() is None:
        pytest.skip(f"the kernels are not usable here: {state['detail']}")
    assert state["state"] == "built at install" and state["vector_width"] == "avx2"
    expected_threads = torch.get_num_threads() if kernels.library().lstmae_kernels_threaded() else 1
    assert state["openmp_threads"] == expected_threads


def test_cuda_devices_are_listed(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: f"Fake GPU {i}")
    assert versions()["cuda_devices"] == ["Fake GPU 0", "Fake GPU 1"]


def test_show_versions_prints_one_line_per_item(capsys):
    lstmae.show_versions()
    lines = capsys.readouterr().out.splitlines()
    names = [line.split(":", 1)[0] for line in lines]
    assert names == ["lstmae", "python", "platform", "torch", "lightning", "numpy", "kernels",
                     "kernels vector width", "kernels OpenMP threads", "torch threads", "CUDA devices"]
    assert f"torch: {torch.__version__}" in lines


def test_cli_info_lines_and_json(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert f"lstmae: {lstmae.__version__}" in text and "kernels: " in text
    assert main(["info", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["kernels"]["state"] == kernels.status()["state"] and found["torch"] == torch.__version__
