"""The seed Keras model, timed: run by bench/perf.py inside its own TensorFlow venv (never lstmae's).

LSTM(100) -> RepeatVector(40) -> LSTM(100, return_sequences=True) -> TimeDistributed(Dense(1, tanh)),
Adam, MSE. Prints one JSON object on the last line of stdout.

usage: python keras_seed.py PANEL.npy [SERIES.npy ...] --batches 32 256 --epochs 4

With ``--batches`` and no batch size, nothing is trained: the series are scored with the
untrained model (scoring time does not depend on the weights), so bench/perf.py can time
training in separate runs, each beside lstmae's.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view


def seed_model(timesteps: int, units: int, n_features: int) -> tf.keras.Model:
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(timesteps, n_features)),
            tf.keras.layers.LSTM(units),
            tf.keras.layers.RepeatVector(timesteps),
            tf.keras.layers.LSTM(units, return_sequences=True),
            tf.keras.layers.TimeDistributed(tf.keras.layers.Dense(n_features, activation="tanh")),
        ]
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(), loss="mse")
    return model


class EpochTimes(tf.keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def score_stride1(model: tf.keras.Model, series: np.ndarray, timesteps: int) -> np.ndarray:
    """The recipe: every stride-1 window materialised, predicted, errors averaged per timestep."""
    windows = np.ascontiguousarray(sliding_window_view(series, timesteps))[..., None]  # (n - T + 1, T, 1)
    predicted = model.predict(windows, verbose=0)  # Keras's default batch size (32)
    squared = ((predicted - windows) ** 2)[..., 0]  # (n - T + 1, T)
    sums = np.zeros(len(series))
    counts = np.zeros(len(series))
    for offset in range(timesteps):
        sums[offset : offset + len(windows)] += squared[:, offset]
        counts[offset : offset + len(windows)] += 1
    return sums / counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("panel")
    parser.add_argument("series", nargs="*")
    parser.add_argument("--batches", type=int, nargs="*", default=[32, 256])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--units", type=int, default=100)
    args = parser.parse_args()
    panel = np.load(args.panel).astype(np.float32)  # (samples, T, 1)
    timesteps = panel.shape[1]
    result: dict = {"tensorflow": tf.__version__, "keras": tf.keras.__version__ if hasattr(tf.keras, "__version__") else "",
                    "threads_intra": tf.config.threading.get_intra_op_parallelism_threads(), "train": {}, "score": {}}
    tf.keras.utils.set_random_seed(0)
    model = seed_model(timesteps, args.units, panel.shape[2])  # the scored model when nothing is trained
    for batch in args.batches:
        tf.keras.utils.set_random_seed(0)
        model = seed_model(timesteps, args.units, panel.shape[2])
        timer = EpochTimes()
        model.fit(panel, panel, batch_size=batch, epochs=args.epochs, shuffle=True, verbose=0, callbacks=[timer])
        steady = timer.seconds[1:]  # the first epoch includes tracing / graph building
        result["train"][str(batch)] = {"epoch_seconds": timer.seconds, "windows_per_s": len(panel) / float(np.median(steady))}
    for path in args.series:
        series = np.load(path).astype(np.float32)
        score_stride1(model, series[:1000], timesteps)  # warm-up: predict's first call builds the function
        start = time.perf_counter()
        scores = score_stride1(model, series, timesteps)
        result["score"][str(len(series))] = {"seconds": time.perf_counter() - start, "finite": bool(np.isfinite(scores).all())}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
