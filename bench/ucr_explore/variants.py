"""Neighbour-part variants built from the raw per-window distances (compute_variants.py), and their metric rows.

A variant is (L tag, reduce over covering windows, aggregation width): the per-window
distances are spread over their L timesteps, reduced per timestep (mean, as the
library, or max), then `centred_mean` over the given width (T as the library, or L).
The level is the same construction's mean over the held-out rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common import VARIANT_CACHE, cv
from lstmae.data.windows import TimestepAccumulator
from lstmae.scoring.aggregation import centred_mean
from lstmae.scoring.state import LEVEL_FLOOR


def spread(starts, dist, n, L, reduce):
    if reduce == "mean":
        acc = TimestepAccumulator(n, 1)
        acc.add(starts, np.broadcast_to(dist[:, None, None], (len(dist), L, 1)).copy())
        return acc.mean()[:, 0]
    out = np.full(n, -np.inf)
    for s, d in zip(starts, dist):
        np.maximum(out[s : s + L], d, out=out[s : s + L])
    return out


def part(raw: dict, reduce: str, width: str, held: bool) -> np.ndarray:
    L, T = int(raw["L"]), int(raw["T"])
    key = "held_" if held else ""
    n = int(raw["held_n"] if held else raw["n"])
    per = spread(raw[f"{key}starts"], raw[f"{key}dist"], n, L, reduce)
    return centred_mean(per, {"T": T, "L": L, "1": 1}[width])


#: variant name -> (L tag, reduce, width) or a mean of variants
VARIANTS = {
    "T": ("LT", "mean", "T"),        # the library's part (checked against the cache)
    "H": ("LH", "mean", "T"),        # T/2 sub-windows, aggregated over T as now
    "HL": ("LH", "mean", "L"),       # T/2 sub-windows, aggregated over T/2
    "Tmax": ("LT", "max", "T"),      # per-timestep max over covering windows instead of mean
    "Hmax": ("LH", "max", "T"),
    "mix": ("T", "H"),               # mean of T and H parts, each over its own level
    "mix2": ("T", "H", 2.0 / 3.0),   # (2 T + H) / 3, each over its own level
    "maxTH": ("T", "H", "max"),      # max of the T and H parts, each over its own level
}


def load_variant(name: str, variant: str, cache: dict | None = None) -> dict:
    """{'neighbours': (n,), 'neighbour_level': float} of a variant for a series."""
    spec = VARIANTS[variant]
    if spec[0] in VARIANTS:  # a combination of two variants over their own levels
        a, b = (load_variant(name, v, cache) for v in spec[:2])
        x, y = a["neighbours"] / a["neighbour_level"], b["neighbours"] / b["neighbour_level"]
        how = spec[2] if len(spec) > 2 else 0.5
        return {"neighbours": np.maximum(x, y) if how == "max" else how * x + (1 - how) * y, "neighbour_level": 1.0}
    tag, reduce, width = spec
    raw = dict(np.load(VARIANT_CACHE / f"{cv.safe(name)}-{tag}.npz"))
    level = max(float(part(raw, reduce, width, True).mean()), LEVEL_FLOOR)
    return {"neighbours": part(raw, reduce, width, False), "neighbour_level": level}


@dataclass(frozen=True)
class VCandidate:
    variant: str
    latent_weight: float
    neighbour_weight: float

    @property
    def name(self) -> str:
        base = f"latent {self.latent_weight:g}, neighbours {self.neighbour_weight:g}"
        return base if self.variant == "T" else f"{self.variant}: {base}"


LATENTS = (0.25, 0.5, 1.0, 2.0)
NEIGHBOURS = (1.0, 2.0, 4.0, 8.0, 16.0)
FINE = (3.0, 6.0, 12.0)
