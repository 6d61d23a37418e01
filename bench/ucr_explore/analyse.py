"""Cross-validation (the bench's protocol) over the base grid extended by each variant's grid; in-sample defaults; top-1 flips."""
from types import SimpleNamespace

import pandas as pd

from common import VARIANT_CACHE, cv, summary, top1_by_series

base = pd.read_csv(VARIANT_CACHE / "base-metrics.csv")
tables = {v: pd.read_csv(VARIANT_CACHE / f"metrics-{v}.csv") for v in ["Tfine", "H", "HL", "Tmax", "Hmax", "mix", "mix2", "maxTH", "TH"]}


def run(table):
    names = list(dict.fromkeys([*(c.name for c in cv.CANDIDATES), *table["candidate"]]))
    saved = cv.CANDIDATES
    cv.CANDIDATES = tuple(SimpleNamespace(name=n) for n in names)  # _best's tie order: base grid first
    try:
        return cv.cross_validate(table)
    finally:
        cv.CANDIDATES = saved


def short(name):
    return name.split("/")[1][:3]


def insample(table, candidate):
    rows = table[table["candidate"] == candidate]
    return summary(rows)


if __name__ == "__main__":
    oof0, chosen0 = run(base)
    t0 = top1_by_series(oof0)
    fmt = lambda s: " / ".join(f"{s[k]:.3f}" for k in ("univariate", "ucr", "nab", "multivariate")) + f" / top-1 {s['ucr_top1']:.3f}"
    print("columns: univariate / UCR / NAB / multivariate / UCR top-1")
    print(f"{'base (reproduced)':40s} OOF {fmt(summary(oof0))}   in-sample default {fmt(insample(base, 'latent 0.25, neighbours 4'))}")
    configs = {}
    for v, t in tables.items():
        configs[f"base + {v}"] = pd.concat([base, t], ignore_index=True)
        if v != "Tfine":
            configs[f"{v} only (replaces T)"] = pd.concat([base[base["candidate"].str.endswith("neighbours 0")], t], ignore_index=True)
    configs["base + Tfine + all variants"] = pd.concat([base, *tables.values()], ignore_index=True)
    for label, table in configs.items():
        oof, chosen = run(table)
        t1 = top1_by_series(oof)
        flips = {short(n): f"{t0[n]:.2f}->{t1[n]:.2f}" for n in t1.index if abs(t1[n] - t0[n]) > 1e-9}
        changed = {f: c for f, c in chosen.items() if chosen0.get(f) != c}
        v = label.split()[0] if "only" in label else label.split("+ ")[1].split()[0]
        default = "latent 0.25, neighbours 4" if v in ("Tfine", "base") else f"{v}: latent 0.25, neighbours 4"
        ins = fmt(insample(table, default)) if v != "Tfine" else ""
        print(f"\n{label:40s} OOF {fmt(summary(oof))}\n    in-sample ({default}): {ins}\n    folds changed: {changed}\n    top-1 flips: {flips}")
