"""Shared small data and small fitted models for the estimator and training tests.

Every model here is tiny (a handful of units, 1-2 epochs, a few hundred
timesteps) so that one fit costs well under a second once Lightning is loaded.
Fitted models are module-scoped: tests that reuse them must not mutate them
(use `sklearn.base.clone` or fit a fresh one to change anything).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from paths import BENCH

# The CI/test machines have two slow, shared cores: torch's default of one
# thread per core oversubscribes them when other processes run and makes each
# fit several times slower. One thread keeps fits fast and does not change what
# the tests check (determinism is compared within one process).
torch.set_num_threads(1)

#: Parameters shared by the small models: silent, seeded, quick. They score the
#: plain way: squared errors of every stride-1 window merged per timestep, no
#: per-feature normalisation, no window smoothing, no latent part; that is what
#: the loop references in test_estimator.py rebuild. The default scoring
#: (which adds those steps to this one) is tested in test_latent.py and
#: test_estimator.py's default-scoring tests.
TINY = dict(
    units=6, epochs=2, batch_size=32, random_state=0, verbose=0,
    scorer="reconstruction", normalize_errors=False, aggregation="timestep", score_stride=1,
)


def sine(n: int, period: float, *, noise: float = 0.05, seed: int = 0, phase: float = 0.0) -> np.ndarray:
    """``sin(2 pi t / period + phase)`` plus Gaussian noise, shape ``(n,)``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.sin(2 * np.pi * t / period + phase) + noise * rng.standard_normal(n)


@pytest.fixture(scope="module")
def series_1d() -> np.ndarray:
    """A 1-D noisy sine of 160 timesteps (period 15)."""
    return sine(160, 15, seed=1)


@pytest.fixture(scope="module")
def frame_2f() -> pd.DataFrame:
    """Two features on an hourly DatetimeIndex, 150 rows, with different scales."""
    n = 150
    index = pd.date_range("2024-03-01", periods=n, freq="h", name="time")
    return pd.DataFrame(
        {"temp": 20 + 3 * sine(n, 24, seed=2), "load": 100 + 40 * sine(n, 12, seed=3, phase=1.0)},
        index=index,
    )


@pytest.fixture(scope="module")
def panel() -> np.ndarray:
    """A panel of 48 sequences, 8 timesteps, 2 features (sines with random phase)."""
    rng = np.random.default_rng(4)
    t = np.arange(8)
    phase = rng.uniform(0, 2 * np.pi, size=(48, 1))
    first = np.sin(2 * np.pi * t / 8 + phase)
    second = 0.5 * np.cos(2 * np.pi * t / 8 + phase) + 2.0
    noise = 0.05 * rng.standard_normal((48, 8, 2))
    return np.stack([first, second], axis=-1) + noise


@pytest.fixture(scope="module")
def fitted_1d(series_1d):
    """Repeat design, T=6, one feature, on `series_1d`."""
    from lstmae import LSTMAutoencoder

    return LSTMAutoencoder(timesteps=6, **TINY).fit(series_1d)


@pytest.fixture(scope="module")
def fitted_frame(frame_2f):
    """Two LSTM layers (8 -> 4), stride 2, on the DatetimeIndex DataFrame."""
    from lstmae import LSTMAutoencoder

    params = {**TINY, "units": [8, 4]}
    return LSTMAutoencoder(timesteps=7, stride=2, **params).fit(frame_2f)


@pytest.fixture(scope="module")
def fitted_panel(panel):
    """timesteps="auto" on a 3-D panel: T is the sample length (8)."""
    from lstmae import LSTMAutoencoder

    return LSTMAutoencoder(timesteps="auto", **TINY).fit(panel)


@pytest.fixture(scope="module")
def fitted_sequence(series_1d):
    """The "sequence" design (return_sequences throughout), two layers."""
    from lstmae import LSTMAutoencoder

    params = {**TINY, "units": [5, 3]}
    return LSTMAutoencoder(timesteps=5, architecture="sequence", **params).fit(series_1d)


@pytest.fixture(scope="session")
def make_sine():
    """The `sine` helper, as a fixture (test modules do not import conftest)."""
    return sine


@pytest.fixture(scope="session")
def tiny() -> dict:
    """A copy of `TINY`, the parameters of the small models."""
    return dict(TINY)


def _bench_script(name: str):
    """bench/<name>.py loaded as a module (bench/ is not a package)."""
    path = BENCH / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def bench_script():
    """Loads a bench/ script: ``bench_script("perf")``."""
    return _bench_script


@pytest.fixture(scope="session")
def dev_data() -> Path:
    """The development benchmark data (`lstmae.data.benchmarks.dev_data_folder`).

    Skips a test where the folder is absent, except under ``CI=true``: CI lays
    ``shared/`` beside its clone, so there a missing folder fails, saying where
    it was looked for.
    """
    from lstmae.data.benchmarks import DATA_ENV, dev_data_folder

    folder = dev_data_folder()
    if folder.is_dir():
        return folder
    how = f"from ${DATA_ENV}" if os.environ.get(DATA_ENV) else f"../shared/data beside the project's root; ${DATA_ENV} names another"
    message = f"the development data is not at {folder} ({how})"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI lays a copy of shared/ beside its clone", pytrace=False)
    pytest.skip(message)
