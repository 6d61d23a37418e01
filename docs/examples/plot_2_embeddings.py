"""
The encoder output: one embedding per day
=========================================

``encode`` returns what the encoder makes of each window: for the "repeat"
design, the latent vector, of shape ``(n_windows, latent)``. Here the windows
are the days of the bundled NYC taxi series (NAB, half-hourly passenger
counts, July 2014 to January 2015): 48 timesteps each, read one day apart.

Days with the same rhythm land close together: weekdays apart from weekends.
The holidays and the blizzard inside NAB's labelled windows lie apart from
both; the marathon, on a Sunday, looks like any other Sunday to the encoder.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from lstmae import LSTMAutoencoder, window_starts
from lstmae.datasets import load_nyc_taxi

series = load_nyc_taxi()  # a DataFrame: 10,320 half-hours, one "value" column, a DatetimeIndex
print(series.shape, series.index[0], series.index[-1])

model = LSTMAutoencoder(
    timesteps=48, units=(32, 8), stride=2, epochs=20, windows_per_epoch=1024, learning_rate=1e-2,
    random_state=0, verbose=0,
).fit(series)

# %%
# One window per day: a stride of 48 timesteps. ``window_starts`` gives each
# window's first timestep, so each embedding can be put back on the calendar
# (the last window always ends on the last timestep; this series holds whole days).
embeddings = model.encode(series, stride=48)
starts = window_starts(len(series), model.timesteps_, 48)
days = series.index[starts]
print(embeddings.shape)  # (n_days, 8): the latent size is the last units value

# %%
# Two principal components of the 8 numbers per day.
xy = PCA(n_components=2).fit_transform(embeddings)
weekend = np.asarray(days.day_of_week >= 5)
# The day of each event inside NAB's five labelled windows.
events = {"NYC marathon": "2014-11-02", "Thanksgiving": "2014-11-27", "Christmas": "2014-12-25",
          "New Year": "2015-01-01", "blizzard": "2015-01-27"}
fig, ax = plt.subplots(figsize=(7, 5))
ax.scatter(*xy[~weekend].T, s=12, label="weekday")
ax.scatter(*xy[weekend].T, s=12, label="weekend")
for name, date in events.items():
    day = days.get_loc(pd.Timestamp(date))
    ax.scatter(*xy[day], s=60, facecolors="none", edgecolors="C3")
    ax.annotate(name, xy[day], textcoords="offset points", xytext=(5, 5), fontsize=8, color="C3")
ax.set_xlabel("first principal component")
ax.set_ylabel("second principal component")
ax.set_title("Days of NYC taxi traffic, embedded by the encoder")
ax.legend()
fig.tight_layout()
