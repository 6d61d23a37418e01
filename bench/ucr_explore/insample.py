"""In-sample grid per variant (mean over seeds): univariate / UCR / NAB / multivariate / top-1; and per-series at given candidates."""
import sys

import pandas as pd

from common import VARIANT_CACHE, summary

files = ["base-metrics.csv", *sorted(p.name for p in VARIANT_CACHE.glob("metrics-*.csv"))]
table = pd.concat([pd.read_csv(VARIANT_CACHE / f) for f in files], ignore_index=True)
if sys.argv[1:] and sys.argv[1] == "grid":
    for cand, rows in table.groupby("candidate", sort=False):
        s = summary(rows)
        if "neighbours 0" in cand and not cand.startswith("latent"):
            continue
        print(f"{cand:36s} {s['univariate']:.3f} {s['ucr']:.3f} {s['nab']:.3f} {s['multivariate']:.3f} {s['ucr_top1']:.3f}")
else:
    cands = sys.argv[1:]
    per = table[table["candidate"].isin(cands)].groupby(["name", "candidate"])[["vus_pr", "ucr_top1"]].mean().unstack("candidate")
    pd.set_option("display.width", 250, "display.max_rows", 100)
    per.index = [n.split("/")[-1][:28] for n in per.index]
    print(per.round(3).to_string())
