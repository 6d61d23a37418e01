"""Metric rows (VUS-PR, UCR top-1 per series, seed, candidate) of every variant x weight grid: bench/.cache/ucr-variants/metrics-<variant>.csv."""
import sys
import time

import pandas as pd

from common import VARIANT_CACHE, cv, dev_series, load_parts
from variants import FINE, LATENTS, NEIGHBOURS, VARIANTS, VCandidate, load_variant


def grid(variant: str) -> list[VCandidate]:
    if variant == "Tfine":
        return [VCandidate("T", lw, nw) for lw in LATENTS for nw in FINE]
    return [VCandidate(variant, lw, nw) for lw in LATENTS for nw in NEIGHBOURS]


if __name__ == "__main__":
    names, _ = dev_series()
    for variant in sys.argv[1:] or ["Tfine", *[v for v in VARIANTS if v != "T"]]:
        path = VARIANT_CACHE / f"metrics-{variant}.csv"
        if path.is_file():
            continue
        began, rows = time.perf_counter(), []
        for name in names:
            parts, nn = load_parts(name)
            alt = nn if variant == "Tfine" else {**nn, **load_variant(name, variant)}
            rows += cv.metric_rows(name, parts, alt, candidates=grid(variant))
        pd.DataFrame(rows).to_csv(path, index=False)
        print(f"{variant}: {len(rows)} rows, {time.perf_counter() - began:.0f} s", flush=True)


def th_rows(names):
    """The 2-D grid: w_T x T/level + w_H x H/level as the neighbour part, w_T, w_H in {1, 2, 4}, x the latent grid."""
    from variants import load_variant
    rows = []
    for name in names:
        parts, nn = load_parts(name)
        t, h = load_variant(name, "T"), load_variant(name, "H")
        for a in (1.0, 2.0, 4.0):
            for b in (1.0, 2.0, 4.0):
                alt = {**nn, "neighbours": a * t["neighbours"] / t["neighbour_level"] + b * h["neighbours"] / h["neighbour_level"],
                       "neighbour_level": 1.0}
                rows += cv.metric_rows(name, parts, alt, candidates=[VCandidate(f"T{a:g}+H{b:g}", lw, 1.0) for lw in LATENTS])
    return rows
