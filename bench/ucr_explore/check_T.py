"""The L=T, mean, width-T variant equals the cached library neighbour part and level."""
import numpy as np
from common import dev_series, load_parts
from variants import load_variant

names, _ = dev_series()
worst = 0.0
for name in names:
    _, nn = load_parts(name)
    mine = load_variant(name, "T")
    rel = np.abs(mine["neighbours"] - nn["neighbours"]).max() / nn["neighbours"].max()
    lev = abs(mine["neighbour_level"] / float(nn["neighbour_level"]) - 1)
    worst = max(worst, rel, lev)
    if rel > 1e-6 or lev > 1e-6:
        print(name, rel, lev)
print("worst relative difference", worst)
