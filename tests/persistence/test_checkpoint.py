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
from lstmae.errors import ModelFileError, ParameterError, ResumeWarning

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
    with pytest.warns(ResumeWarning, match=r"holds 4 epochs and the fit asked for 4, so training ended with the checkpoint's best weights"):
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
    with pytest.warns(ResumeWarning, match=rf"holds {record.epochs_done} epochs, after which early stopping had ended its training, so training ended with the checkpoint's best weights, at epoch {record.best_epoch} \(lowest validation loss\)\.$"):
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


# ---------------------------------------------------------------------------
# The resume matrix (issue 23): fewer, as many and more epochs than the
# checkpoint holds, other data, other parameters, a damaged or missing
# checkpoint. Every cell continues, ends cleanly, or gives one error line.
# ---------------------------------------------------------------------------
HELD = 4  # epochs in the matrix's checkpoint
# A high learning rate makes the validation loss jump about, so the best epoch is not the last one:
# the matrix then tells the checkpoint's best weights from its last ones.
MATRIX_FIT = ["--timesteps", "8", "--units", "3", "--batch-size", "32", "--seed", "1", "--patience", "1000",
              "--learning-rate", "0.05", "--quiet"]


def _interrupt_after(epochs: int):
    """Ctrl-C as the epoch after ``epochs`` starts: its checkpoint (written at the end of each epoch) holds ``epochs``."""
    from lstmae.persistence.checkpoint import FitRecord

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == epochs:
            raise KeyboardInterrupt

    return FitRecord, "on_train_epoch_start", on_train_epoch_start


@pytest.fixture(scope="module")
def held(tmp_path_factory) -> dict:
    """A `lstmae fit --epochs 100` interrupted after HELD epochs: its data, checkpoint bytes and contents."""
    from lstmae.persistence.checkpoint import SafetensorsCheckpointIO

    directory = tmp_path_factory.mktemp("held")
    data = _write_series(directory / "s.csv")
    out = directory / "m.safetensors"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(*_interrupt_after(HELD))
        assert main(["fit", str(data), "-o", str(out), *MATRIX_FIT, "--epochs", "100"]) == 130
    ckpt = checkpoint_path(out)
    record = load_checkpoint(ckpt)
    contents = SafetensorsCheckpointIO().load_checkpoint(ckpt)
    assert not out.exists() and record.epochs_done == HELD
    best = contents["callbacks"]["BestWeights"]
    history = contents["callbacks"]["HistoryRecorder"]["history"]
    # The matrix needs a best epoch before the last, and it must be the one of lowest val_loss.
    assert record.best_epoch == best["epoch"] == 1 + int(np.argmin(history["val_loss"])) < HELD, history
    return {"data": data, "raw": ckpt.read_bytes(), "best": best["state"], "last": contents["state_dict"],
            "best_epoch": best["epoch"], "history": history}


def _weights(model: LSTMAutoencoder) -> dict:
    return {f"net.{name}": tensor for name, tensor in model.module_.state_dict().items()}


def _equal_weights(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k].float(), b[k].float()) for k in a)


def _other_data(directory: Path, data: Path) -> list[str]:
    frame = pd.read_csv(data)
    frame.loc[10, "value"] += 1.0
    frame.to_csv(directory / "s.csv", index=False)
    return []


def _write_checkpoint(content: bytes | None):
    def make(directory: Path, data: Path) -> list[str]:
        ckpt = checkpoint_path(directory / "m.safetensors")
        if content is None:
            ckpt.unlink()
        else:
            ckpt.write_bytes(content)
        return []
    return make


def _damage(change):
    def make(directory: Path, data: Path) -> list[str]:
        ckpt = checkpoint_path(directory / "m.safetensors")
        ckpt.write_bytes(change(ckpt.read_bytes()))
        return []
    return make


# name -> (epochs asked, what to change in the copy, extra options, exit code, stderr pattern)
RESUME_MATRIX = {
    "fewer epochs": (2, None, [], 0, rf"holds {HELD} epochs and the fit asked for 2, so training ended with the checkpoint's best weights, at epoch \d"),
    "as many epochs": (HELD, None, [], 0, rf"holds {HELD} epochs and the fit asked for {HELD}, so training ended with the checkpoint's best weights"),
    "more epochs": (HELD + 2, None, [], 0, None),
    "other data": (HELD + 2, _other_data, [], 2, r"it was written while training on different data"),
    "other parameters": (HELD + 2, None, ["--units", "4"], 2, r"parameters differ from the interrupted fit: units="),
    "other parameters, fewer epochs": (2, None, ["--patience", "7"], 2, r"parameters differ from the interrupted fit: patience=7 \(checkpoint: 1000\)"),
    "truncated checkpoint": (HELD + 2, _damage(lambda raw: raw[: len(raw) // 2]), [], 2, r"checkpoint .* is damaged or not a checkpoint .*delete it and fit without --resume"),
    "bit-flipped checkpoint": (HELD + 2, _damage(lambda raw: raw[:-2] + bytes([raw[-2] ^ 1]) + raw[-1:]), [], 2, r"is damaged: its tensors do not match their checksum"),
    "garbage checkpoint": (HELD + 2, _write_checkpoint(np.random.default_rng(0).bytes(3000)), [], 2, r"is damaged or not a checkpoint"),
    "empty checkpoint": (HELD + 2, _write_checkpoint(b""), [], 2, r"is damaged or not a checkpoint"),
    "a model file as checkpoint": (HELD + 2, None, [], 2, r"is not an lstmae checkpoint"),
    "missing checkpoint": (HELD + 2, _write_checkpoint(None), [], 2, r"--resume: no checkpoint .*m\.safetensors\.ckpt.*run without --resume"),
}


@pytest.mark.parametrize("cell", list(RESUME_MATRIX))
def test_resume_matrix_through_the_cli(capsys, held, tmp_path, cell):
    import re

    epochs, change, extra, code, pattern = RESUME_MATRIX[cell]
    data, out, ckpt = tmp_path / "s.csv", tmp_path / "m.safetensors", checkpoint_path(tmp_path / "m.safetensors")
    data.write_bytes(held["data"].read_bytes())
    ckpt.write_bytes(held["raw"])
    if change is not None:
        change(tmp_path, data)
    if cell == "a model file as checkpoint":
        assert main(["fit", str(data), "-o", str(tmp_path / "other.safetensors"), *MATRIX_FIT, "--epochs", "1"]) == 0
        ckpt.write_bytes((tmp_path / "other.safetensors").read_bytes())
    before = ckpt.read_bytes() if ckpt.exists() else None
    capsys.readouterr()

    result = main(["fit", str(data), "-o", str(out), *MATRIX_FIT, *extra, "--epochs", str(epochs), "--resume"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and "internal error" not in err, err
    assert result == code, err
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("lstmae: error: "), err
        assert re.search(pattern, lines[0]), lines[0]
        assert not out.exists(), "a refused resume writes no model"
        assert (ckpt.read_bytes() if ckpt.exists() else None) == before, "a refused resume leaves the checkpoint as it was"
        return
    model = LSTMAutoencoder.load(out)
    assert not ckpt.exists(), "a finished fit removes its checkpoint"
    resumed = [line for line in lines if "so training ended with" in line]
    if pattern is None:  # epochs were left: training went on from epoch HELD + 1
        assert resumed == [], err
        assert len(model.history_["loss"]) == epochs
        assert {k: v[:HELD] for k, v in model.history_.items()} == held["history"]
        return
    assert len(resumed) == 1 and resumed[0].startswith("lstmae: warning: ") and re.search(pattern, resumed[0]), err
    assert f"at epoch {held['best_epoch']} (lowest validation loss)" in resumed[0]
    assert model.history_ == held["history"], "nothing was trained: the checkpoint's history, all of it"
    assert _equal_weights(_weights(model), held["best"]), "the model has the checkpoint's best weights"
    assert not _equal_weights(_weights(model), held["last"])


@pytest.mark.filterwarnings("ignore::lstmae.errors.DegenerateModelWarning")
def test_resume_with_fewer_epochs_in_python_ends_with_the_best_or_last_weights(tmp_path):
    from lstmae.persistence.checkpoint import SafetensorsCheckpointIO

    x = series()
    params = {**SMALL, "learning_rate": 0.05}
    ckpt = tmp_path / "m.ckpt"
    LSTMAutoencoder(epochs=4, **params).fit(x, checkpoint=ckpt)
    best = SafetensorsCheckpointIO().load_checkpoint(ckpt)["callbacks"]["BestWeights"]
    with pytest.warns(ResumeWarning, match=rf"holds 4 epochs and the fit asked for 1, so training ended with the checkpoint's best weights, at epoch {best['epoch']} "):
        model = LSTMAutoencoder(epochs=1, **params).fit(x, checkpoint=ckpt, resume=True)
    assert len(model.history_["loss"]) == 4
    assert _equal_weights(_weights(model), best["state"])

    # A checkpoint from before BestWeights kept its epoch: still its best weights, without an epoch to name.
    io = SafetensorsCheckpointIO()
    contents = io.load_checkpoint(ckpt)
    del contents["callbacks"]["BestWeights"]["epoch"]
    io.save_checkpoint(contents, ckpt)
    with pytest.warns(ResumeWarning, match=r"so training ended with the checkpoint's best weights \(lowest validation loss\); ask for more than 4 epochs"):
        model = LSTMAutoencoder(epochs=2, **params).fit(x, checkpoint=ckpt, resume=True)
    assert _equal_weights(_weights(model), best["state"])

    # No validation windows, so no best epoch: the weights after the checkpoint's last epoch.
    ckpt = tmp_path / "no-val.ckpt"
    params = {**params, "validation_split": 0.0}
    LSTMAutoencoder(epochs=3, **params).fit(x, checkpoint=ckpt)
    last = SafetensorsCheckpointIO().load_checkpoint(ckpt)["state_dict"]
    with pytest.warns(ResumeWarning, match=r"holds 3 epochs and the fit asked for 2, so training ended with the checkpoint's last weights, at epoch 3"):
        model = LSTMAutoencoder(epochs=2, **params).fit(x, checkpoint=ckpt, resume=True)
    assert _equal_weights(_weights(model), last)
    with pytest.raises(ModelFileError, match=r"no checkpoint to resume from"):
        LSTMAutoencoder(epochs=2, **params).fit(x, checkpoint=tmp_path / "none.ckpt", resume=True)
