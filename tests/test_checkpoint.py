"""Interrupted training: Ctrl-C / SIGTERM stop cleanly, keep a checkpoint, and --resume continues."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lstmae
from lstmae import LSTMAutoencoder
from lstmae.persistence.checkpoint import checkpoint_path, load_checkpoint
from lstmae.cli.app import main
from lstmae.errors import ModelFileError, ParameterError

SRC = str(Path(lstmae.__file__).resolve().parents[1])


def series(n: int = 160, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sin(np.arange(n) / 3) + 0.1 * rng.standard_normal(n)


SMALL = dict(timesteps=8, units=3, batch_size=32, random_state=3, verbose=0, validation_split=0.2, patience=50)


def test_resumed_fit_is_identical_to_an_uninterrupted_one(tmp_path):
    x = series()
    ckpt = tmp_path / "m.ckpt"
    straight = LSTMAutoencoder(epochs=4, **SMALL).fit(x)
    LSTMAutoencoder(epochs=2, **SMALL).fit(x, checkpoint=ckpt)
    assert load_checkpoint(ckpt).epochs_done == 2
    resumed = LSTMAutoencoder(epochs=4, **SMALL).fit(x, checkpoint=ckpt, resume=True)
    assert resumed.history_ == straight.history_
    np.testing.assert_array_equal(resumed.anomaly_score(x), straight.anomaly_score(x))
    assert load_checkpoint(ckpt).epochs_done == 4
    # Killed after the last epoch but before the model was saved: resuming trains nothing more.
    again = LSTMAutoencoder(epochs=4, **SMALL).fit(x, checkpoint=ckpt, resume=True)
    assert again.history_ == straight.history_
    np.testing.assert_array_equal(again.anomaly_score(x), straight.anomaly_score(x))


def test_resume_refuses_other_parameters_or_data(tmp_path):
    x = series()
    ckpt = tmp_path / "m.ckpt"
    LSTMAutoencoder(epochs=1, **SMALL).fit(x, checkpoint=ckpt)
    with pytest.raises(ParameterError, match=r"parameters differ from the interrupted fit: units=4 \(checkpoint: 3\)"):
        LSTMAutoencoder(epochs=2, **{**SMALL, "units": 4}).fit(x, checkpoint=ckpt, resume=True)
    with pytest.raises(ParameterError, match=r"written while training on different data"):
        LSTMAutoencoder(epochs=2, **SMALL).fit(x * 2, checkpoint=ckpt, resume=True)
    with pytest.raises(ParameterError, match=r"resume=True needs checkpoint=PATH"):
        LSTMAutoencoder(epochs=2, **SMALL).fit(x, resume=True)


def test_damaged_checkpoint_is_refused(tmp_path):
    x = series()
    ckpt = tmp_path / "m.ckpt"
    LSTMAutoencoder(epochs=1, **SMALL).fit(x, checkpoint=ckpt)
    raw = ckpt.read_bytes()
    ckpt.write_bytes(raw[:-2] + bytes([raw[-2] ^ 1]) + raw[-1:])
    with pytest.raises(ModelFileError, match=r"checkpoint .* is damaged: its tensors do not match their checksum"):
        load_checkpoint(ckpt)
    ckpt.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError, match=r"checkpoint .* is damaged or not a checkpoint"):
        LSTMAutoencoder(epochs=2, **SMALL).fit(x, checkpoint=ckpt, resume=True)
    with pytest.raises(ModelFileError, match=r"no checkpoint to resume from"):
        load_checkpoint(tmp_path / "none.ckpt")


def _write_series(path: Path, n: int = 200) -> Path:
    index = pd.date_range("2024-01-01", periods=n, freq="h")
    pd.DataFrame({"timestamp": index, "value": series(n)}).to_csv(path, index=False)
    return path


FIT = ["--timesteps", "8", "--units", "3", "--batch-size", "64", "--seed", "0", "--patience", "1000", "--quiet"]


SIGNALS = {"SIGINT": (signal.SIGINT, 130, False), "SIGTERM": (signal.SIGTERM, 143, True)}


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> dict[str, dict]:
    """Both real `lstmae fit` processes at once (startup dominates): each signalled after its first epoch."""
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONWARNINGS": "ignore"}
    runs: dict[str, dict] = {}
    for name, (signum, code, old_model) in SIGNALS.items():
        directory = tmp_path_factory.mktemp(name)
        data = _write_series(directory / "s.csv")
        out = directory / "m.safetensors"
        if old_model:  # an existing model must survive the interruption untouched
            assert main(["fit", str(data), "-o", str(out), *FIT, "--epochs", "1"]) == 0
        runs[name] = {"dir": directory, "data": data, "out": out, "ckpt": checkpoint_path(out), "signum": signum,
                      "code": code, "before": out.read_bytes() if out.exists() else None}
    for run in runs.values():
        run["process"] = subprocess.Popen(
            [sys.executable, "-m", "lstmae", "fit", str(run["data"]), "-o", str(run["out"]), *FIT, "--epochs", "100000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
    try:
        started = time.monotonic()
        waiting = dict(runs)
        while waiting:
            for name, run in list(waiting.items()):
                process = run["process"]
                if run["ckpt"].exists():  # its first epoch has finished
                    process.send_signal(run["signum"])
                    run["sent"] = time.monotonic()
                    del waiting[name]
                else:
                    assert process.poll() is None, process.communicate()
            assert time.monotonic() - started < 240, "no checkpoint after 240 s"
            time.sleep(0.05)
        for run in runs.values():
            _, run["err"] = run["process"].communicate(timeout=60)
            run["stopped_after"] = time.monotonic() - run["sent"]
    finally:
        for run in runs.values():
            if run["process"].poll() is None:
                run["process"].kill()
    return runs


@pytest.mark.parametrize("name", list(SIGNALS))
def test_interrupted_fit_stops_cleanly_and_resumes(interrupted, name):
    run = interrupted[name]
    out, ckpt, err, signum = run["out"], run["ckpt"], run["err"], run["signum"]
    assert ckpt.name == "m.safetensors.ckpt"
    assert run["process"].returncode == run["code"], err
    # Measured from the signal to the end of the process, the other process running alongside.
    assert run["stopped_after"] < 15, f"took {run['stopped_after']:.1f} s to stop"
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"lstmae: interrupted ({signal.Signals(signum).name})", err
    assert f"was not written; the last finished epoch is kept in {ckpt}" in err
    # -o is as it was: absent, or the old model byte for byte; never a half-written file.
    assert (out.read_bytes() if out.exists() else None) == run["before"]
    assert not list(run["dir"].glob(".*.tmp"))
    done = load_checkpoint(ckpt).epochs_done
    assert done >= 1

    assert main(["fit", str(run["data"]), "-o", str(out), *FIT, "--epochs", str(done + 1), "--resume"]) == 0
    model = LSTMAutoencoder.load(out)
    assert len(model.history_["loss"]) == done + 1
    assert not ckpt.exists(), "a finished fit removes its checkpoint"
    assert np.isfinite(model.anomaly_score(pd.read_csv(run["data"], index_col=0)[["value"]])).all()


def test_checkpoint_loading_never_unpickles(tmp_path, monkeypatch):
    import pickle

    import torch

    import lstmae.persistence.checkpoint as checkpoint

    LSTMAutoencoder(epochs=1, **SMALL).fit(series(), checkpoint=tmp_path / "m.ckpt")

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling was attempted")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert load_checkpoint(tmp_path / "m.ckpt").epochs_done == 1
    source = Path(checkpoint.__file__).read_text()
    assert "import pickle" not in source and "torch.load" not in source


def test_early_stopped_checkpoint_trains_nothing_more_and_restores_the_best_weights(tmp_path):
    x = series()
    params = {**SMALL, "patience": 1, "learning_rate": 0.05}
    straight = LSTMAutoencoder(epochs=40, **params).fit(x)
    assert len(straight.history_["loss"]) < 40, "this configuration must stop early"
    ckpt = tmp_path / "m.ckpt"
    LSTMAutoencoder(epochs=40, **params).fit(x, checkpoint=ckpt)
    record = load_checkpoint(ckpt)
    assert record.stopped and record.epochs_done == len(straight.history_["loss"])
    raw = ckpt.read_bytes()
    again = LSTMAutoencoder(epochs=60, **params).fit(x, checkpoint=ckpt, resume=True)  # epochs raised: still stopped
    assert again.history_ == straight.history_
    np.testing.assert_array_equal(again.anomaly_score(x), straight.anomaly_score(x))
    assert ckpt.read_bytes() == raw, "no epoch ran, so nothing was rewritten"


def test_resuming_from_a_copied_checkpoint_leaves_the_original_alone(tmp_path):
    x = series()
    original = tmp_path / "m.ckpt"
    LSTMAutoencoder(epochs=1, **SMALL).fit(x, checkpoint=original)
    raw = original.read_bytes()
    copy = tmp_path / "m2.ckpt"  # e.g. `cp m.safetensors.ckpt m2.safetensors.ckpt; lstmae fit -o m2.safetensors --resume`
    copy.write_bytes(raw)
    LSTMAutoencoder(epochs=2, **SMALL).fit(x, checkpoint=copy, resume=True)
    assert original.read_bytes() == raw
    assert load_checkpoint(copy).epochs_done == 2


# ---------------------------------------------------------------------------
# The file format: Lightning's checkpoint dict as safetensors + JSON
# ---------------------------------------------------------------------------
def _lightning_like_checkpoint():
    import torch

    shared = torch.arange(6, dtype=torch.float32)
    return {
        "epoch": 3,
        "pytorch-lightning_version": "2.6.0",
        "state_dict": {"net.w": torch.randn(3, 2), "net.view": shared[2:4], "net.again": shared},
        "optimizer_states": [{"state": {0: {"step": torch.tensor(7.0), "exp_avg": torch.ones(2)}},
                              "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0]}]}],
        "callbacks": {"EarlyStopping{'monitor': 'val_loss'}": {"best_score": torch.tensor(float("inf")), "wait_count": 0},
                      "odd": {"__tensor__": "not a marker", "n": None, "flag": True, "nan": float("nan")},
                      "one": {"__tuple__": [1]}},
        "generator": torch.tensor([3, 0, 255], dtype=torch.uint8),
        "numpy": np.float64(0.25),
    }


def _same(a, b) -> bool:
    """Deep equality by type and value: tensors by dtype, shape and bits (NaN equals NaN)."""
    import math

    import torch

    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)))
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(type(k) is type(j) for k, j in zip(a, b)) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


def test_checkpoint_io_round_trips_lightnings_dictionary(tmp_path):
    from lstmae.persistence.checkpoint import SafetensorsCheckpointIO

    io = SafetensorsCheckpointIO()
    checkpoint = _lightning_like_checkpoint()
    io.save_checkpoint(checkpoint, tmp_path / "c.ckpt")
    loaded = io.load_checkpoint(tmp_path / "c.ckpt")
    expected = {**checkpoint, "numpy": 0.25}  # a numpy scalar comes back as the Python number
    assert _same(expected, loaded)
    assert isinstance(loaded["optimizer_states"][0]["param_groups"][0]["betas"], tuple)
    assert list(loaded["optimizer_states"][0]["state"]) == [0]  # int keys stay ints
    io.remove_checkpoint(tmp_path / "c.ckpt")
    assert not (tmp_path / "c.ckpt").exists()


def test_checkpoint_io_refuses_what_it_cannot_store_without_pickle(tmp_path):
    from lstmae.persistence.checkpoint import SafetensorsCheckpointIO

    with pytest.raises(ModelFileError, match=r"checkpoint\['callbacks'\]\['Mine'\]\['when'\] is a set .*never pickle"):
        SafetensorsCheckpointIO().save_checkpoint({"callbacks": {"Mine": {"when": {1, 2}}}}, tmp_path / "c.ckpt")
    assert not list(tmp_path.iterdir())


def test_an_interrupted_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import safetensors.torch

    from lstmae.persistence.checkpoint import SafetensorsCheckpointIO

    io = SafetensorsCheckpointIO()
    target = tmp_path / "c.ckpt"
    io.save_checkpoint(_lightning_like_checkpoint(), target)
    before = target.read_bytes()

    def half_written(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise KeyboardInterrupt  # Ctrl-C in the middle of the write

    monkeypatch.setattr(safetensors.torch, "save_file", half_written)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({**_lightning_like_checkpoint(), "epoch": 4}, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.ckpt"]
    assert io.load_checkpoint(target)["epoch"] == 3


def _rewrite_document(path: Path, change) -> None:
    """Write ``path`` again with its tensors and a changed JSON document (its checksums untouched)."""
    import json

    from safetensors import safe_open

    from lstmae.persistence.model_file import METADATA_KEY, write_document

    with safe_open(path, framework="pt") as stream:
        document = json.loads(stream.metadata()[METADATA_KEY])
        tensors = {key: stream.get_tensor(key) for key in stream.keys()}
    change(document)
    write_document(path, tensors, document, "a test checkpoint")


def test_changed_json_or_an_old_format_version_is_refused(tmp_path):
    from lstmae.persistence.checkpoint import SafetensorsCheckpointIO

    io = SafetensorsCheckpointIO()
    target = tmp_path / "c.ckpt"
    io.save_checkpoint(_lightning_like_checkpoint(), target)
    _rewrite_document(target, lambda d: d["checkpoint"].update(epoch=30))
    with pytest.raises(ModelFileError, match=r"is damaged: its contents do not match their checksum"):
        io.load_checkpoint(target)
    _rewrite_document(target, lambda d: d.update(format_version=1))
    with pytest.raises(ModelFileError, match=r"has format version 1 \(an older lstmae's layout\); this lstmae reads version 2 only; delete it"):
        load_checkpoint(target)
    _rewrite_document(target, lambda d: d.update(format="lstmae.model"))
    with pytest.raises(ModelFileError, match=r"is not an lstmae checkpoint"):
        load_checkpoint(target)
