"""What turns per-window scores into per-timestep ones best: the variants tried beside aggregation="peak" (issue 25).

Reads the parts that ``bench/quality.py --cv`` cached (``--cache``, one fit per
series and seed) and scores one candidate (latent 0.25, nearest windows 4,
the mean over features, every feature: the same sum for every group) after
each of these, per timestep, T the model's window length:

- ``window``: the parts' centred means as they are (the aggregation before issue 25);
- ``peak``: each timestep's most anomalous window (`lstmae.scoring.aggregation.containing_max` over T, the library's);
- ``max 2T``: the same maximum over a stretch of 2T;
- ``trailing max T`` / ``2T``: the maximum over the T (2T) timesteps up to t (causal: no extra stream delay);
- ``mean T`` / ``mean 2T``: a second centred mean;
- ``over trailing median``: the score over the median of the scores of the ``train_end`` timesteps before it;
- ``trailing robust z``: (score - that median) / the median absolute deviation there.

VUS-PR per series (TSB-AD's, `lstmae.evaluation.metrics`), mean per group. Labels are used only
in the metric; this is an in-sample look on the dev series, not a selection (the selection is
``bench/quality.py --cv``, which scored "window" and "peak" out of fold).

    PYTHONPATH=src .venv/bin/python bench/explore_aggregation.py --cache bench/.cache/cv --seed 0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def trailing(values: np.ndarray, width: int, statistic) -> np.ndarray:
    """``statistic`` of values[t - width : t] at each t (the first value at t = 0), computed every width // 16 steps."""
    out = np.empty_like(values)
    step = max(1, width // 16)
    for start in range(0, len(values), step):
        before = values[max(0, start - width) : start] if start else values[:1]
        out[start : start + step] = statistic(before)
    return out


def variants(score: np.ndarray, T: int, train_end: int) -> dict[str, np.ndarray]:
    """{variant name: per-timestep score (n,)} of one candidate's score (n,) (see the module docstring)."""
    from scipy.ndimage import maximum_filter1d

    from lstmae.scoring.aggregation import centred_mean, containing_max

    median = trailing(score, train_end, np.median)
    spread = trailing(score, train_end, lambda x: np.median(np.abs(x - np.median(x))))
    return {
        "window": score,
        "peak": containing_max(score, T),
        "max 2T": containing_max(score, 2 * T),
        "trailing max T": maximum_filter1d(score, T, origin=(T - 1) // 2, mode="nearest"),
        "trailing max 2T": maximum_filter1d(score, 2 * T, origin=(2 * T - 1) // 2, mode="nearest"),
        "mean T": centred_mean(score, T),
        "mean 2T": centred_mean(score, 2 * T),
        "over trailing median": score / np.maximum(median, 1e-12),
        "trailing robust z": (score - median) / np.maximum(spread, 1e-12),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=HERE / ".cache" / "cv", help="bench/quality.py --cv's parts folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--groups", nargs="+", default=["ucr", "nab", "smap", "msl"])
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import quality_cv as cv

    from lstmae.evaluation import metrics

    candidate = cv.Candidate(0.25, 4.0)
    sums: dict[str, dict[str, list[float]]] = {}
    for path in sorted(args.cache.glob(f"*-s{args.seed}.npz")):
        name = path.name[: -len(f"-s{args.seed}.npz")]
        group = name.split("__")[0]
        nn_path = args.cache / f"{name}-neighbours.npz"
        if group not in args.groups or not nn_path.is_file():
            continue
        parts, nn = dict(np.load(path)), dict(np.load(nn_path))
        labels, window = nn["labels"], int(nn["window"])
        if not labels.any() or labels.all():
            continue
        score = cv.compose(candidate, parts, nn)
        for variant, values in variants(score, int(parts["timesteps"]), int(nn["train_end"])).items():
            sums.setdefault(group, {}).setdefault(variant, []).append(metrics.vus_pr(labels, values, window))
    names = list(next(iter(sums.values())))
    print(f"VUS-PR, mean over series; seed {args.seed}; candidate: {candidate.name}")
    print("| group | series | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for group, found in sums.items():
        print(f"| {group} | {len(found['window'])} | " + " | ".join(f"{np.mean(found[v]):.3f}" for v in names) + " |")


if __name__ == "__main__":
    main()
