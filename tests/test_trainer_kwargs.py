"""Lightning Trainer options passed through `LSTMAutoencoder(trainer_kwargs=...)`."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
from lightning.pytorch.loggers import Logger

from lstmae import LSTMAutoencoder
from lstmae.errors import ParameterError

SMALL = dict(timesteps=8, units=3, batch_size=32, epochs=3, random_state=0, verbose=0, validation_split=0.2, patience=50)


def series(n: int = 120) -> np.ndarray:
    return np.sin(np.arange(n) / 3) + 0.1 * np.random.default_rng(0).standard_normal(n)


class Counting(pl.Callback):
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def on_fit_start(self, trainer, pl_module) -> None:
        self._count("fit_start")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._count("train_epoch_end")
        assert "loss" in trainer.callback_metrics  # runs after lstmae's own hooks have logged

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._count("train_batch_end")


class Recording(Logger):
    """A Lightning logger that keeps what it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[dict] = []

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.metrics.append(dict(metrics))


def test_a_user_callback_gets_its_hooks_called():
    counting = Counting()
    model = LSTMAutoencoder(**SMALL, trainer_kwargs={"callbacks": [counting]}).fit(series())
    windows = 120 - 8 + 1
    train_batches = -(-int(windows * 0.8) // 32)
    assert counting.calls == {"fit_start": 1, "train_epoch_end": 3, "train_batch_end": 3 * train_batches}
    assert len(model.history_["loss"]) == 3


def test_a_user_logger_receives_the_epoch_losses():
    recording = Recording()
    model = LSTMAutoencoder(**SMALL, trainer_kwargs={"logger": recording}).fit(series())
    logged = {key: [m[key] for m in recording.metrics if key in m] for key in ("loss", "val_loss", "mae", "val_mae")}
    assert logged == {key: pytest.approx(values, rel=1e-6) for key, values in model.history_.items()}
    assert len(logged["loss"]) == 3


def test_trainer_kwargs_leave_a_seeded_fit_unchanged_and_are_not_saved(tmp_path):
    plain = LSTMAutoencoder(**SMALL).fit(series())
    passed = LSTMAutoencoder(**SMALL, trainer_kwargs={"enable_progress_bar": False, "deterministic": True,
                                                      "callbacks": Counting(), "logger": Recording()}).fit(series())
    np.testing.assert_array_equal(plain.anomaly_score(series()), passed.anomaly_score(series()))
    passed.save(tmp_path / "m.safetensors")
    loaded = LSTMAutoencoder.load(tmp_path / "m.safetensors")
    assert loaded.trainer_kwargs is None
    np.testing.assert_array_equal(loaded.anomaly_score(series()), plain.anomaly_score(series()))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_epochs": 5}, r"trainer_kwargs\['max_epochs'\]=5: lstmae sets 'max_epochs' itself; use the estimator's epochs instead"),
        ({"gradient_clip_val": 0.5}, r"trainer_kwargs\['gradient_clip_val'\]=0.5: lstmae sets 'gradient_clip_val' itself; use nothing: lstmae clips gradients by norm at 1.0"),
        ({"limit_train_batches": 3}, r"use the estimator's windows_per_epoch instead"),
        ({"enable_checkpointing": True}, r"use fit\(checkpoint=PATH\) \(`lstmae fit` always keeps OUTPUT.ckpt; see --resume\) instead"),
        ({"max_epocs": 5}, r"trainer_kwargs\['max_epocs'\]=5 is not a Trainer option lstmae passes through; supported: accelerator, .*precision"),
        (["logger"], r"trainer_kwargs must be None or a dict of Lightning Trainer options with str keys, got \['logger'\]"),
        ({1: "x"}, r"trainer_kwargs must be None or a dict .* got \{1: 'x'\}"),
        ({"precision": "bf16-mixed"}, r"trainer_kwargs\['precision'\]='bf16-mixed': mixed precision needs a CUDA device .* use '32-true' \(the default\) or '64-true'"),
        ({"callbacks": ["not a callback"]}, r"trainer_kwargs\['callbacks'\] must be a Lightning Callback or a list of them, got \['not a callback'\]"),
    ],
)
def test_refused_trainer_kwargs_say_what_to_use_instead(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        LSTMAutoencoder(**SMALL, trainer_kwargs=kwargs).fit(series())


def test_float64_training_gives_a_float32_model_close_to_the_float32_one():
    import torch

    plain = LSTMAutoencoder(**SMALL).fit(series())
    double = LSTMAutoencoder(**SMALL, trainer_kwargs={"precision": "64-true"}).fit(series())
    assert all(p.dtype == torch.float32 for p in double.module_.parameters())
    np.testing.assert_allclose(double.history_["loss"], plain.history_["loss"], rtol=1e-4)
    np.testing.assert_allclose(double.anomaly_score(series()), plain.anomaly_score(series()), rtol=1e-3)
