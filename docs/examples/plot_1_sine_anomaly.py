"""
A sine with an injected anomaly
===============================

Train the bottleneck ("repeat") design on a clean stretch of a noisy sine,
score every timestep of the whole series and find the anomalous interval.

The window is one period (40 timesteps) and the last ``units`` value, 8, is
the latent size: each window of 40 numbers is squeezed into 8 and rebuilt,
so the model learns what a normal cycle looks like.
"""

import matplotlib.pyplot as plt
import numpy as np

from lstmae import LSTMAutoencoder

rng = np.random.default_rng(0)
t = np.arange(2000)
series = np.sin(2 * np.pi * t / 40) + 0.05 * rng.standard_normal(len(t))
series[1500:1530] = 0.3 * np.sin(2 * np.pi * t[1500:1530] / 10)  # one odd stretch: faster, smaller

# %%
# Fit on the first 1,200 timesteps, believed normal. A small training budget
# keeps the example fast: at most 15 epochs of 512 windows, with a larger
# learning rate than the default.
model = LSTMAutoencoder(
    timesteps=40, units=(32, 8), epochs=15, windows_per_epoch=512, learning_rate=1e-2, random_state=0, verbose=0,
).fit(series[:1200])
print(f"threshold: {model.threshold_:.2f}; the model's diagnostics: {model.diagnostics_['warnings'] or 'none'}")

# %%
# One score per timestep, first and last included, and the intervals above
# the threshold (``detect`` merges runs closer than one window).
scores = model.anomaly_score(series)
intervals = model.detect(series)
print(intervals[["start", "end", "length", "peak_score", "severity"]])

# %%
fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
top.plot(t, series, lw=0.8, label="series")
top.plot(t, model.reconstruct(series), lw=0.8, label="reconstruction")
top.axvspan(0, 1200, color="0.9", zorder=-1, label="training part")
bottom.plot(t, scores, lw=0.9, color="C3", label="anomaly score")
bottom.axhline(model.threshold_, color="k", ls="--", lw=0.8, label="threshold_")
for row in intervals.itertuples():
    for axis in (top, bottom):
        axis.axvspan(row.start, row.end, color="C3", alpha=0.2)
top.legend(loc="upper left", ncols=3, fontsize=8)
bottom.legend(loc="upper left", fontsize=8)
bottom.set_xlabel("timestep")
fig.tight_layout()
