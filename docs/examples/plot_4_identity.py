"""
Without a bottleneck, a model rebuilds anomalies too
====================================================

The "sequence" design keeps ``units`` numbers at *every* timestep
(``LSTM(u, return_sequences=True)`` all the way). With ``units >= features``
nothing forces it to learn what normal data looks like: it can pass its input
through (learn the identity) and then rebuilds an anomaly about as well as a
normal cycle, so its reconstruction error misses it.

The "repeat" design squeezes each window into one latent vector
(``RepeatVector``), smaller than the window, and has to learn the shape.
``diagnostics_`` measures the difference after ``fit``: ``noise_explained`` is
the share of random noise, never seen in training, that the model reproduces.
A model of the data reproduces none of it (a negative value); above 0.25 the
model is flagged identity-like, with a ``DegenerateModelWarning``.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

from lstmae import LSTMAutoencoder

rng = np.random.default_rng(0)
t = np.arange(1600)
series = np.sin(2 * np.pi * t / 32) + 0.05 * rng.standard_normal(len(t))
test = series.copy()
test[1200:1264] = 0.5  # a stuck sensor: two periods at 0.5

# Both score by reconstruction error alone, so only the design differs.
common = dict(timesteps=32, epochs=15, windows_per_epoch=512, learning_rate=1e-2,
              scorer="reconstruction", random_state=0, verbose=0)
models = {
    'sequence, units=16': LSTMAutoencoder(architecture="sequence", units=16, **common),
    'repeat, units=(32, 4)': LSTMAutoencoder(architecture="repeat", units=(32, 4), **common),
}
for name, model in models.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(series[:1000])
    d = model.diagnostics_
    print(f"{name}: identity_ratio={d['identity_ratio']:.2f}, "
          f"noise_explained={d['noise_explained']:.2f}, collapse_ratio={d['collapse_ratio']:.2f}")
    for warning in caught:
        print("   warning:", str(warning.message).split(", so")[0])

# %%
# ``explain`` says the same before any training, from the shapes alone.
print(models['sequence, units=16'].explain().split("4. BOTTLENECK CHECK")[1])

# %%
# Scores in units of each model's threshold: above 1 is flagged. The
# "sequence" model copies the flat stretch and scores it like normal data;
# the "repeat" model cannot rebuild it from its 4 latent numbers and flags it.
fig, axes = plt.subplots(3, 1, figsize=(9, 6.5), sharex=True)
window = slice(1100, 1370)
axes[0].plot(t[window], test[window], color="0.3", lw=1, label="input (stuck at 0.5 from 1200 to 1263)")
for i, (name, model) in enumerate(models.items()):
    axes[0].plot(t[window], model.reconstruct(test)[window], lw=1, color=f"C{i}", label=f"{name}: reconstruction")
    severity = model.anomaly_score(test) / model.threshold_
    axes[i + 1].plot(t[window], severity[window], color=f"C{i}", lw=1.2)
    axes[i + 1].axhline(1, color="k", ls="--", lw=0.8)
    axes[i + 1].set_ylabel("score / threshold")
    axes[i + 1].set_title(name, fontsize=9)
axes[0].legend(fontsize=8, loc="lower left")
axes[-1].set_xlabel("timestep")
fig.tight_layout()
