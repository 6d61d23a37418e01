"""Detection quality of the default lstmae detector on the dev benchmark, beside the peers' numbers.

Runs exactly what ``lstmae evaluate`` runs (`lstmae.evaluation.series.evaluate_series`:
fit ``LSTMAutoencoder(**params)`` on ``values[:train_end]``, score all points,
TSB-AD's metrics) over the dev series, and writes ``bench/RESULTS-quality.md``:
per group (univariate = UCR + NAB, multivariate = SMAP + MSL, and each set
alone) the mean VUS-PR, AUC-PR, VUS-ROC, AUC-ROC, UCR top-1 and the median /
max seconds per series, beside every peer of ``reference_peers_dev.csv`` on the
same series, with a verdict line per group.

Per-series results are cached in ``bench/cache/quality-<tag>.csv`` after each
series, so a long run can be stopped and resumed; a cached series is not run
again unless ``--fresh``. Variants get their own cache and report via ``--tag``::

    PYTHONPATH=src python bench/quality.py                      # the 46 dev series
    PYTHONPATH=src python bench/quality.py --only ucr --limit 5
    PYTHONPATH=src python bench/quality.py --params '{"epochs": 5}' --tag epochs5
    PYTHONPATH=src python bench/quality.py --all                # every series in the data folder
    PYTHONPATH=src python bench/quality.py --cv --seeds 0 1 2   # selection by cross-validation over source families

``--cv`` (see ``bench/quality_cv.py``) fits each series once per seed, caches
the score parts under ``bench/.cache/cv/``, scores every candidate weighting
of the "combined" scorer from them, selects by leave-one-family-out and
writes the out-of-fold numbers to ``bench/RESULTS-quality.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from lstmae import __version__
from lstmae.data.benchmarks import dev_data_folder, list_benchmark
from lstmae.errors import LstmaeError
from lstmae.evaluation.series import COLUMNS, METRICS, evaluate_series, parse_params, summarise
from lstmae.persistence.atomic import atomic_target, write_table

BENCH = Path(__file__).resolve().parent
DEFAULT_DATA = dev_data_folder()  # $LSTMAE_BENCH_DATA, else ../shared/data beside the checkout
GROUPS = {  # report group -> the series groups it pools
    "univariate (UCR + NAB)": ("ucr", "nab"),
    "multivariate (SMAP + MSL)": ("smap", "msl"),
    "UCR": ("ucr",),
    "NAB": ("nab",),
    "SMAP": ("smap",),
    "MSL": ("msl",),
}
LAYOUT = [("ucr", "ucr"), ("nab", "nab"), ("smap", "smap_msl")]  # (format, folder)
PEER_FILE = "reference_peers_dev.csv"


def available(data: Path) -> dict:
    """Every series under ``data`` as ``name -> load``, without reading any of them."""
    entries = {}
    for fmt, folder in LAYOUT:
        if (data / folder).exists():
            entries.update(dict(list_benchmark(data / folder, fmt)))
    if not entries:
        sys.exit(f"quality.py: no benchmark series under {data} (expected ucr/, nab/, smap_msl/); give --data.")
    return entries


def wanted(args, entries: dict, peers: pd.DataFrame | None) -> list[str]:
    if args.all:
        names = sorted(entries)
    else:
        if peers is None:
            sys.exit(f"quality.py: {args.data / PEER_FILE} is missing; use --all to run every series.")
        names = sorted(peers["series"].unique())
        missing = [n for n in names if n not in entries]
        if missing:
            sys.exit(f"quality.py: {len(missing)} dev series are not in {args.data}, e.g. {missing[0]}.")
    if args.only:
        names = [n for n in names if n.split("/", 1)[0] in args.only]
    if args.series:
        import fnmatch

        names = [n for n in names if fnmatch.fnmatchcase(n, args.series)]
    return names[: args.limit] if args.limit else names


def load_cache(path: Path, params_json: str, fresh: bool) -> pd.DataFrame:
    empty = pd.DataFrame(columns=[*COLUMNS, "params", "lstmae_version", "finished_at"])
    if fresh or not path.is_file():
        return empty
    cache = pd.read_csv(path, dtype={"error": str, "status": str, "params": str})
    cache["error"] = cache["error"].fillna("")
    other = cache.loc[cache["params"] != params_json, "params"]
    if len(other):
        sys.exit(
            f"quality.py: the cache {path} holds results for params {other.iloc[0]}, not {params_json}; "
            "use another --tag for this variant, or --fresh to discard the cache."
        )
    return cache


def run(args) -> pd.DataFrame:
    params = parse_params(args.params)
    params_json = json.dumps(params, sort_keys=True)
    peers = pd.read_csv(args.data / PEER_FILE) if (args.data / PEER_FILE).is_file() else None
    entries = available(args.data)
    names = wanted(args, entries, peers)
    cache_path = args.cache or BENCH / "cache" / f"quality-{args.tag}.csv"
    cache = load_cache(cache_path, params_json, args.fresh)
    done = set(cache["name"])
    todo = [n for n in names if n not in done]
    print(f"{len(names)} series, {len(names) - len(todo)} cached in {cache_path}, {len(todo)} to run; params {params_json}",
          flush=True)
    began = time.perf_counter()
    for number, name in enumerate(todo, start=1):
        try:
            row = evaluate_series(entries[name](), params)
        except LstmaeError as exc:  # the data itself could not be read
            row = {**{c: math.nan for c in COLUMNS}, "name": name, "group": name.split("/")[0], "status": "error",
                   "error": " ".join(str(exc).split())}
        row.update(params=params_json, lstmae_version=__version__,
                   finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        cache = pd.concat([cache, pd.DataFrame([row])], ignore_index=True) if len(cache) else pd.DataFrame([row])
        write_table(cache, cache_path)  # atomic: an interrupted run keeps every finished series
        elapsed = time.perf_counter() - began
        note = f"VUS-PR {row['vus_pr']:.3f}" if row["status"] == "ok" else f"{row['status']} {row['error']}".strip()
        print(f"[{number}/{len(todo)}] {name}: {note}, {row['seconds']:.1f} s "
              f"(elapsed {elapsed / 60:.1f} min, about {elapsed / number * (len(todo) - number) / 60:.1f} min left)",
              flush=True)
    return cache[cache["name"].isin(names)].reset_index(drop=True), peers


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def group_section(title: str, groups: tuple[str, ...], ours: pd.DataFrame, peers: pd.DataFrame | None) -> list[str]:
    mine = ours[ours["group"].isin(groups)]
    if mine.empty:
        return []
    scored = mine[mine["status"] == "ok"]
    lines = [f"### {title}", ""]
    header = "| method | series | VUS-PR | AUC-PR | VUS-ROC | AUC-ROC | UCR top-1 | median s | max s | lstmae VUS-PR on these series |"
    lines += [header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    s = summarise(mine)
    lines.append(f"| **lstmae** | {len(scored)} of {len(mine)} | {fmt(s['vus_pr'])} | {fmt(s['auc_pr'])} | {fmt(s['vus_roc'])} | "
                 f"{fmt(s['auc_roc'])} | {fmt(s['ucr_top1'], 2)} | {fmt(s['median_seconds'], 1)} | {fmt(s['max_seconds'], 1)} | |")
    best = None
    if peers is not None:
        rows = peers[peers["series"].isin(scored["name"]) & (peers["status"] == "ok")]
        for method, theirs in rows.groupby("method", sort=True):
            paired = scored[scored["name"].isin(theirs["series"])]
            ours_there = float(paired["vus_pr"].mean())
            full = len(theirs) == len(scored)
            lines.append(
                f"| {method} | {len(theirs)}{'' if full else ' (partial)'} | {fmt(theirs['vus_pr'].mean())} | "
                f"{fmt(theirs['auc_pr'].mean())} | {fmt(theirs['vus_roc'].mean())} | {fmt(theirs['auc_roc'].mean())} | "
                f"{fmt(theirs['ucr_top1'].mean(), 2)} | {fmt(theirs['seconds'].median(), 1)} | {fmt(theirs['seconds'].max(), 1)} | "
                f"{fmt(ours_there)} |"
            )
            if full and (best is None or theirs["vus_pr"].mean() > best[1]):
                best = (method, float(theirs["vus_pr"].mean()))
    lines.append("")
    if scored.empty:
        lines.append("**Verdict:** no scored series in this group.")
    elif best is None:
        lines.append(f"**Verdict:** lstmae mean VUS-PR {fmt(s['vus_pr'])}; no peer has results on all {len(scored)} series.")
    else:
        ours_mean = float(scored["vus_pr"].mean())
        word = "ahead of" if ours_mean > best[1] else ("level with" if ours_mean == best[1] else "behind")
        lines.append(f"**Verdict:** lstmae mean VUS-PR {fmt(ours_mean)} vs the best peer {best[0]} {fmt(best[1])} "
                     f"on the same {len(scored)} series: **{word}** ({ours_mean - best[1]:+.3f}).")
    lines.append("")
    return lines


def report(results: pd.DataFrame, peers: pd.DataFrame | None, args) -> str:
    import torch

    params = parse_params(args.params)
    lines = [
        "# Detection quality of lstmae on the dev benchmark",
        "",
        f"Written by `bench/quality.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, tag `{args.tag}`, "
        f"estimator params `{json.dumps(params, sort_keys=True)}` (empty = the defaults).",
        "",
        "Protocol: fit `LSTMAutoencoder(**params)` on `values[:train_end]`, `anomaly_score` on all points; "
        "VUS-PR, AUC-PR, VUS-ROC, AUC-ROC as TSB-AD 1.5 (`version='opt'`, `thre=250`, window "
        "`find_length_rank(values[:, 0], rank=1)`), computed by `lstmae.evaluation.metrics` (agrees to 1e-6, see tests/test_metrics.py); "
        "UCR top-1: argmax of the test-part score within 100 points of the anomaly. Peers: `reference_peers_dev.csv`, "
        "on the same series (a peer marked partial has results on fewer series; the last column pairs lstmae with it there). "
        "Seconds: fit + score wall time per series.",
        "",
        f"Machine: {os.cpu_count()} CPU cores ({platform.machine()}, {platform.system()}), torch threads {torch.get_num_threads()}, "
        f"CUDA {'available' if torch.cuda.is_available() else 'not available'}. "
        f"Versions: lstmae {__version__}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"numpy {np.__version__}, pandas {pd.__version__}.",
        "",
        f"Series: {len(results)} ({', '.join(f'{g} {c}' for g, c in results['group'].value_counts().sort_index().items())}); "
        f"status: {', '.join(f'{k} {v}' for k, v in results['status'].value_counts().items())}.",
        "",
    ]
    for title, groups in GROUPS.items():
        lines += group_section(title, groups, results, peers)
    failed = results[results["status"] == "error"]
    if len(failed):
        lines += ["### Errors", ""] + [f"- `{r.name}`: {r.error}" for r in failed.itertuples(index=False)] + [""]
    lines += ["### Per series", "", "| series | n | d | window | VUS-PR | AUC-PR | VUS-ROC | AUC-ROC | top-1 | seconds | status |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results.sort_values("name").itertuples(index=False):
        lines.append(f"| {r.name} | {r.n} | {r.d} | {r.window} | {fmt(r.vus_pr)} | {fmt(r.auc_pr)} | {fmt(r.vus_roc)} | "
                     f"{fmt(r.auc_roc)} | {fmt(r.ucr_top1, 0)} | {fmt(r.seconds, 1)} | {r.status} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the dev data folder (default: %(default)s)")
    parser.add_argument("--all", action="store_true", help="every series in --data, not only the dev subset of the peers file")
    parser.add_argument("--only", nargs="+", choices=["ucr", "nab", "smap", "msl"], help="only these groups")
    parser.add_argument("--series", help="only series whose name matches this glob")
    parser.add_argument("--limit", type=int, help="at most N series (after the filters)")
    parser.add_argument("--params", help='estimator keywords as JSON, e.g. \'{"epochs": 5}\'')
    parser.add_argument("--tag", default="default", help="names the cache and the report of a variant (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the peers' seconds are single-thread)")
    parser.add_argument("--fresh", action="store_true", help="discard the cache of this tag and run everything again")
    parser.add_argument("--cache", type=Path,
                        help="cache CSV (default: bench/cache/quality-<tag>.csv); with --cv the parts folder (default: bench/.cache/cv)")
    parser.add_argument("--report", type=Path, help="report path (default: bench/RESULTS-quality.md, or -<tag>.md for a tag)")
    parser.add_argument("--cv", action="store_true",
                        help="select the score by cross-validation over source families (bench/quality_cv.py)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="--cv: random_state of the fits (default: 0 1 2)")
    parser.add_argument("--select-seeds", type=int, nargs="+",
                        help="--cv: choose on these seeds alone (every candidate); the other --seeds score only the folds' "
                             "choices, the defaults and the parts alone (default: all of --seeds)")
    parser.add_argument("--edge", choices=["seen", "plain"], default="seen",
                        help="--cv: training windows scored leave-self-out (seen, the library's) or matching themselves (plain, before issue 23)")
    parser.add_argument("--floor", choices=["on", "off"], default="on",
                        help="--cv: the parts' levels with their floors (on, the library's) or the raw held-out means (off)")
    parser.add_argument("--check", type=int, default=4,
                        help="--cv: series run end to end through evaluate_series to check the composed default (default: 4)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.cv:
        return run_cv(args)
    try:
        results, peers = run(args)
    except LstmaeError as exc:
        sys.exit(f"quality.py: {exc}")
    path = args.report or BENCH / ("RESULTS-quality.md" if args.tag == "default" else f"RESULTS-quality-{args.tag}.md")
    with atomic_target(path, "the report") as temporary:
        temporary.write_text(report(results, peers, args))
    print(f"wrote {path}")


def run_cv(args) -> None:
    """--cv: the cached parts of every series and seed, every candidate's metrics, the selection and its report."""
    import hashlib

    if str(BENCH) not in sys.path:  # loaded from elsewhere (the tests): its sibling module
        sys.path.insert(0, str(BENCH))
    import quality_cv as cv

    params = parse_params(args.params)
    params_json = json.dumps(params, sort_keys=True)
    peers = pd.read_csv(args.data / PEER_FILE) if (args.data / PEER_FILE).is_file() else None
    entries = available(args.data)
    names = wanted(args, entries, peers)
    folder = args.cache or BENCH / ".cache" / "cv"  # the defaults' parts; other params in a folder of their own
    if params:
        folder = folder / hashlib.sha256(params_json.encode()).hexdigest()[:12]
    log = lambda text: print(text, flush=True)  # noqa: E731
    cv.VARIANT.update(edge=args.edge, floor=args.floor == "on")
    variant = "" if (args.edge, args.floor) == ("seen", "on") else f"-{args.edge}-floor-{args.floor}"
    metrics_path = folder / f"metrics{variant}.csv"
    done = pd.read_csv(metrics_path) if metrics_path.is_file() and not args.fresh else None
    # A variant of the edge or the floor is compared on the weights' grid alone (not the multivariate choices).
    candidates = cv.CANDIDATES if not variant else cv.GRID + cv.PARTS_ALONE

    def wanted_candidates(name: str) -> set:  # a series of one feature has no multivariate-only candidates
        kind = cv.kind_of(name.split("/")[0])
        return {c.name for c in candidates if not (c.multivariate_only and kind != "multivariate")}

    seeds = args.select_seeds or args.seeds
    rows = []
    for number, name in enumerate(names, start=1):
        have = pd.DataFrame()
        if done is not None:
            have = done[(done["name"] == name) & done["seed"].isin(seeds) & done["candidate"].isin(wanted_candidates(name))]
            if len(have) == len(seeds) * len(wanted_candidates(name)):
                rows.append(have)
                continue
        parts, nn = cv.cached_parts(name, entries[name], params, seeds, folder, log)
        skip = set(zip(have["seed"], have["candidate"])) if len(have) else set()
        rows.append(pd.concat([have, pd.DataFrame(cv.metric_rows(name, parts, nn, skip, candidates))], ignore_index=True))
        if rows[-1].empty:
            log(f"[{number}/{len(names)}] {name}: no labelled anomaly, no VUS-PR: left out")
            rows.pop()
            continue
        table = pd.concat(rows, ignore_index=True)
        merged = table if done is None else pd.concat([done[~done["name"].isin(table["name"])], table], ignore_index=True)
        write_table(merged, metrics_path)
        log(f"[{number}/{len(names)}] {name}: best VUS-PR {rows[-1]['vus_pr'].max():.3f}")
    table = pd.concat(rows, ignore_index=True)
    extra = [seed for seed in args.seeds if seed not in seeds]
    if extra:  # the other seeds: what the report shows, chosen on `seeds` without them
        _, chosen = cv.cross_validate(table)
        needed = set(chosen.values()) | {c.name for c in cv.ALONE} | {cv.library_candidate(kind).name for kind in cv.KINDS}
        by_name = {c.name: c for c in candidates}
        more = []
        for number, name in enumerate(sorted(table["name"].unique()), start=1):
            wanted_here = needed & wanted_candidates(name)
            have = pd.DataFrame() if done is None else done[
                (done["name"] == name) & done["seed"].isin(extra) & done["candidate"].isin(wanted_here)]
            skip = set(zip(have["seed"], have["candidate"])) if len(have) else set()
            if len(skip) < len(extra) * len(wanted_here):
                parts, nn = cv.cached_parts(name, entries[name], params, extra, folder, log)
                have = pd.concat([have, pd.DataFrame(cv.metric_rows(name, parts, nn, skip, [by_name[c] for c in sorted(wanted_here)]))],
                                 ignore_index=True)
                log(f"[{number}] {name}: seeds {extra} scored")
            more.append(have)
        table = pd.concat([table, *more], ignore_index=True)
        merged = table if done is None else pd.concat([done, table], ignore_index=True).drop_duplicates(
            ["name", "seed", "candidate"], keep="last")  # this run's rows replace the cached ones
        write_table(merged, metrics_path)
    check = []
    by_group: dict[str, list[str]] = {}
    for n in names:
        if n in set(table["name"]):  # a series with a VUS-PR (NAB's artificialNoAnomaly has none)
            by_group.setdefault(n.split("/")[0], []).append(n)
    picks = [n for column in itertools.zip_longest(*by_group.values()) for n in column if n][: args.check]  # round robin
    for name in picks:
        row = evaluate_series(entries[name](), {**params, "random_state": args.seeds[0]})
        library = cv.library_candidate(cv.kind_of(name.split("/")[0]))
        composed = table[(table["name"] == name) & (table["seed"] == args.seeds[0]) & (table["candidate"] == library.name)]
        check.append({"name": name, "library": row["vus_pr"], "composed": float(composed["vus_pr"].iloc[0]) if len(composed) else math.nan,
                      "seconds": row["seconds"]})
        log(f"check {name}: evaluate_series {row['vus_pr']:.6f}, composed {check[-1]['composed']:.6f}")
    machine = (f"Machine: {os.cpu_count()} CPU cores ({platform.machine()}), torch threads {args.threads}, shared with "
               "other jobs while it ran (seconds are wall time under that load). "
               f"Versions: lstmae {__version__}, Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}.")
    path = args.report or BENCH / ("RESULTS-quality.md" if args.tag == "default" and not variant else f"RESULTS-quality-{args.tag}{variant}.md")
    with atomic_target(path, "the report") as temporary:
        temporary.write_text(cv.report(table, peers, args.seeds, params, check, machine))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
