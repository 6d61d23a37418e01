"""Distributed training (Lightning DDP, gloo on the CPU): the defining property, and the rank-0 save.

One optimisation step with the global batch split over 2 processes gives the
weights one process gets with the whole batch (to 1e-6): DDP averages the two
processes' gradients, each the mean over half the batch, which is the mean over
the whole batch. The 2-process run goes through Lightning's own launcher
(`strategy="ddp", devices=2`), which starts the second process by running the
script again, so that fit runs as a script (tests/ddp_fit.py), as a user's would.
Measured under the fused C training pass: DDP's gradient hooks fire on the
parameters it differentiates, so the C pass takes part in the sync (largest
difference 7e-9).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lstmae import LSTMAutoencoder
from lstmae.config import NetworkConfig
from lstmae.errors import ParameterError
from lstmae.backends.network import LSTMAutoencoder as Network
from paths import TESTS

HERE = TESTS
SCRIPT = HERE / "ddp_fit.py"


def run_fit(out: Path, processes: int) -> None:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE"):  # a clean launch, whatever ran this test
        environment.pop(name, None)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), str(processes)], env=environment, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _helper():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ddp_fit", SCRIPT)
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    return helper


def weights(path: Path) -> dict[str, torch.Tensor]:
    return LSTMAutoencoder.load(path, device="cpu").module_.state_dict()


def test_one_step_split_over_two_processes_gives_the_weights_of_one_process_with_the_whole_batch(tmp_path):
    single, split = tmp_path / "single", tmp_path / "ddp"
    single.mkdir(), split.mkdir()
    threads = torch.get_num_threads()
    try:
        _helper().fit(single, 1)  # in this process: no launcher needed
    finally:
        torch.set_num_threads(threads)  # the helper pins one thread, as each DDP process does
    run_fit(split, 2)

    # only rank 0 wrote the model: the second process saved nothing
    assert sorted(p.name for p in split.iterdir()) == ["model-0.safetensors"]
    one, two = weights(single / "model-0.safetensors"), weights(split / "model-0.safetensors")
    assert one.keys() == two.keys()
    for name in one:
        assert torch.allclose(one[name], two[name], rtol=0, atol=1e-6), name
    # the step moved the weights (Adam's first step: about learning_rate each), so equality is not vacuous
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)  # the seed random_state=3 gives the network (estimator._train)
        start = Network(NetworkConfig(2, 12, (8,), "repeat", 1)).state_dict()
    moved = max(float((one[name] - start[name]).abs().max()) for name in one)
    assert 5e-4 < moved < 2e-3


def test_several_processes_need_a_seed():
    with pytest.raises(ParameterError, match=r"several processes.*set random_state"):
        LSTMAutoencoder(trainer_kwargs={"strategy": "ddp", "devices": 2}).fit([0.0] * 50)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"devices": 0}, r"trainer_kwargs\['devices'\] must be an integer >= 1, 'auto' or a list of device indices, got 0"),
        ({"num_nodes": 0}, r"trainer_kwargs\['num_nodes'\] must be an integer >= 1, got 0"),
        ({"accelerator": "tpx"}, r"trainer_kwargs\['accelerator'\] must be 'cpu', 'gpu' or 'auto', got 'tpx'"),
    ],
)
def test_distributed_options_are_checked_before_any_work(options, message):
    with pytest.raises(ParameterError, match=message):
        LSTMAutoencoder(trainer_kwargs=options, random_state=0).fit([0.0] * 50)


@pytest.mark.parametrize(
    ("variables", "zero"),
    [({}, True), ({"RANK": "0", "LOCAL_RANK": "0"}, True), ({"RANK": "1"}, False),
     ({"LOCAL_RANK": "1", "NODE_RANK": "0"}, False), ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False), ({"SLURM_PROCID": "3"}, False)],
)
def test_the_rank_comes_from_the_launchers_variables(monkeypatch, variables, zero):
    from lstmae.persistence.atomic import RANK_VARIABLES, is_rank_zero

    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert is_rank_zero() is zero
