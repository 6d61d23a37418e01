"""Reproduce the report's OOF numbers from the cached parts (metric_rows recomputed, not read from metrics.csv)."""
import time

import pandas as pd

from common import cv, dev_series, load_parts, summary, top1_by_series, VARIANT_CACHE

names, _ = dev_series()
print(len(names), "dev series")
rows, began = [], time.perf_counter()
for number, name in enumerate(names, 1):
    parts, nn = load_parts(name)
    t = time.perf_counter()
    rows += cv.metric_rows(name, parts, nn)
    print(f"[{number}/{len(names)}] {name} {time.perf_counter() - t:.1f} s", flush=True)
table = pd.DataFrame(rows)
VARIANT_CACHE.mkdir(parents=True, exist_ok=True)
table.to_csv(VARIANT_CACHE / "base-metrics.csv", index=False)
oof, chosen = cv.cross_validate(table)
print({k: round(v, 4) for k, v in summary(oof).items()})
print(chosen)
t1 = top1_by_series(oof)
print("OOF top-1 misses:", [n.split("/")[1][:3] for n, v in t1.items() if v < 1], {n.split("/")[1][:3]: v for n, v in t1.items() if 0 < v < 1})
cached = pd.read_csv(cv.CANDIDATES and (common_path := __import__("common").CV_CACHE / "metrics.csv"))
m = table.merge(cached, on=["name", "seed", "candidate"], suffixes=("", "_cached"))
print("rows", len(table), "matched", len(m), "max |vus diff| vs metrics.csv", float((m["vus_pr"] - m["vus_pr_cached"]).abs().max()),
      f"total {time.perf_counter() - began:.0f} s")
