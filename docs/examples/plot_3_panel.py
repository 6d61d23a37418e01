"""
A panel: which users behave unlike the others?
==============================================

A panel is many short sequences of the same length: here 300 users x 28 days
of clicks, the 3-D array ``(samples=300, timesteps=28, features=1)`` exactly as
Keras takes it. Each user is one sample; nothing is cut into windows.

Given a DataFrame indexed by (user, day), the model keeps the ids: scores come
back as a Series indexed by user, and ``detect`` lists the anomalous users,
most anomalous first.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lstmae import LSTMAutoencoder

rng = np.random.default_rng(1)
n_users, n_days = 300, 28
day = np.arange(n_days)
level = rng.uniform(5, 15, size=(n_users, 1))
weekly = 1 + 0.5 * (day % 7 < 5)  # more clicks on weekdays
clicks = level * weekly + rng.normal(0, 1, size=(n_users, n_days))
odd = {"u0291": "weekends only", "u0294": "a burst in week 3", "u0297": "stops after day 10"}
clicks[291] = level[291] * (1 + 0.5 * (day % 7 >= 5)) + rng.normal(0, 1, n_days)
clicks[294, 14:19] += 25
clicks[297, 10:] = 0.0

users = [f"u{i:04d}" for i in range(n_users)]
panel = pd.DataFrame(
    {"clicks": clicks.ravel()},
    index=pd.MultiIndex.from_product([users, day], names=["user", "day"]),
)
print(panel.head())

# %%
# Fit on the first 250 users (all normal), then score everyone. Each user is
# scored against the training users: reconstruction error, latent distance and
# distance to the nearest training user, combined (see the user guide). With
# only 250 samples, small batches give the model enough gradient steps.
train = panel.loc[users[:250]]
model = LSTMAutoencoder(units=(16, 4), epochs=40, batch_size=8, random_state=0, verbose=0).fit(train)
print(model.timesteps_reason_)

scores = model.anomaly_score(panel)  # a Series named "score", indexed by user
print(model.detect(panel).head())

# %%
# The 50 users the model never saw, ranked by score.
new = scores.iloc[250:].sort_values(ascending=False)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), width_ratios=(1.2, 1))
colors = ["C3" if user in odd else "C0" for user in new.index]
left.bar(range(len(new)), new.to_numpy(), color=colors)
left.axhline(model.threshold_, color="k", ls="--", lw=0.8, label="threshold_")
left.set_xlabel("new users, most anomalous first")
left.set_ylabel("anomaly score")
left.legend()
for user in users[260:266]:
    right.plot(day, panel.loc[user, "clicks"], color="0.75", lw=0.8)
for user, what in odd.items():
    right.plot(day, panel.loc[user, "clicks"], lw=1.5, label=f"{user}: {what}")
right.set_xlabel("day")
right.set_ylabel("clicks")
right.legend(fontsize=8)
fig.tight_layout()
