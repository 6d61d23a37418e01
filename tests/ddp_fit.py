"""Helper of tests/test_ddp.py (not a test): one fit of the DDP equivalence check, run as a script.

    python tests/ddp_fit.py OUT_DIR PROCESSES

Trains `LSTMAutoencoder` for one optimisation step on WINDOWS windows: with
PROCESSES=1 in one process (batch_size=WINDOWS), with PROCESSES=2 through
Lightning's DDP strategy on the CPU (gloo; Lightning's launcher starts the
second process by running this script again), each process taking a batch of
WINDOWS / 2, the global batch split in two. Every process saves the model to
OUT_DIR/model-RANK.safetensors through `save`, which writes only on rank 0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

#: Windows in the global batch; one optimisation step takes all of them.
WINDOWS = 32
TIMESTEPS = 12


def data() -> np.ndarray:
    """A 2-feature series with exactly WINDOWS stride-1 windows of TIMESTEPS."""
    rng = np.random.default_rng(7)
    n = WINDOWS + TIMESTEPS - 1
    t = np.arange(n)
    return np.column_stack([np.sin(t / 3.0), np.cos(t / 5.0)]) + 0.1 * rng.standard_normal((n, 2))


def fit(out: Path, processes: int) -> None:
    from lstmae import LSTMAutoencoder

    torch.set_num_threads(1)
    options = {"accelerator": "cpu"}
    if processes > 1:
        options.update(strategy="ddp", devices=processes)
    model = LSTMAutoencoder(
        timesteps=TIMESTEPS, units=8, epochs=1, batch_size=WINDOWS // processes, validation_split=0.0,
        shuffle=False, windows_per_epoch=None, scorer="reconstruction", random_state=3, verbose=0,
        trainer_kwargs=options,
    ).fit(data())
    rank = os.environ.get("LOCAL_RANK", "0")
    model.save(out / f"model-{rank}.safetensors")


if __name__ == "__main__":
    fit(Path(sys.argv[1]), int(sys.argv[2]))
