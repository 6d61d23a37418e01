"""GPU smoke test: the seed configuration fitted on CUDA (torch's nn.LSTM, cuDNN) against the CPU's C path.

    python bench/gpu_smoke.py                 # on a machine with CUDA: under 3 minutes
    python bench/gpu_smoke.py --device cpu    # the same checks with nn.LSTM on the CPU, 1 epoch: under a minute

Fits the seed configuration (bench/perf.py: 2000 windows x 40 timesteps x 1 feature,
units 100, batch 32) twice with the same random_state: on ``--device`` through
torch's nn.LSTM (the path CUDA takes; on the CPU forced with LSTMAE_KERNELS=0), and
on the CPU through the C kernels. Prints windows/s for both. Then the device-fitted
model is saved, loaded on the CPU and scores the same windows through the C path:
the scores must agree to float32 rounding (one set of weights, two LSTM paths),
else the script exits 1. The two fits' final losses are printed side by side
(same seed, different rounding: close, not equal).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf import SAMPLES, TIMESTEPS, UNITS, seed_panel  # noqa: E402

BATCH = 32


def fit(device: str, epochs: int, kernels: bool, panel: np.ndarray):
    """(fitted model, windows/s over the whole fit, post-training passes included) on ``device``.

    ``kernels`` False forces nn.LSTM on the CPU. scorer="reconstruction": a latent
    distance over a barely trained model's near-zero reference level would magnify
    float32 rounding, and this script compares paths, not detectors.
    """
    import lstmae

    os.environ["LSTMAE_KERNELS"] = "1" if kernels else "0"  # read at every forward pass
    model = lstmae.LSTMAutoencoder(
        timesteps=TIMESTEPS, units=UNITS, architecture="repeat", batch_size=BATCH, epochs=epochs,
        validation_split=0, random_state=0, verbose=0, device=device, scorer="reconstruction",
    )
    start = time.perf_counter()
    model.fit(panel)
    return model, SAMPLES * epochs / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    parser.add_argument("--epochs", type=int, help="default 3 on CUDA, 1 on the CPU (nn.LSTM trains slowly there)")
    parser.add_argument("--rtol", type=float, default=1e-3, help="score agreement, relative to the largest score")
    args = parser.parse_args()

    import torch

    import lstmae
    from lstmae.backends import kernels

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_smoke: error: --device {args.device} but torch sees no CUDA device; use --device cpu", file=sys.stderr)
        return 2
    if args.epochs is None:
        args.epochs = 3 if args.device.startswith("cuda") else 1
    panel = seed_panel()  # (2000, 40, 1)
    on_device, device_rate = fit(args.device, args.epochs, kernels=False, panel=panel)
    device_scores = np.asarray(on_device.anomaly_score(panel))  # still nn.LSTM (LSTMAE_KERNELS=0)
    device_reconstruction = np.asarray(on_device.reconstruct(panel))
    on_cpu, cpu_rate = fit("cpu", args.epochs, kernels=True, panel=panel)
    path = kernels.status()
    label = f"{args.device} (nn.LSTM{', cuDNN' if args.device.startswith('cuda') else ''})"
    print(f"fit, seed configuration, {args.epochs} epochs, batch {BATCH}, torch {torch.__version__}")
    print(f"  {label}: {device_rate:,.0f} windows/s, final loss {on_device.history_['loss'][-1]:.6f}")
    print(f"  cpu (C kernels: {path['state']}, {path['vector_width']}): {cpu_rate:,.0f} windows/s, "
          f"final loss {on_cpu.history_['loss'][-1]:.6f}")
    print(f"  {label} / cpu: {device_rate / cpu_rate:.2f}x")

    with tempfile.TemporaryDirectory() as folder:
        on_device.save(Path(folder) / "model")
        reloaded = lstmae.LSTMAutoencoder.load(Path(folder) / "model", device="cpu")
    agree = True
    for name, here, there in (
        ("scores", device_scores, reloaded.anomaly_score(panel)),  # the same weights through the C path
        ("reconstructions", device_reconstruction, reloaded.reconstruct(panel)),
    ):
        worst = float(np.max(np.abs(here - np.asarray(there))))
        scale = float(np.max(np.abs(here)))
        agree &= worst <= args.rtol * scale
        print(f"{name} of the {args.device}-fitted model, {args.device} vs cpu C path: largest difference {worst:.3g} "
              f"({worst / scale:.2g} of the largest): {'agree' if worst <= args.rtol * scale else 'DISAGREE'}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
