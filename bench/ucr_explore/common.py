"""Shared helpers of the UCR top-1 exploration (bench/ucr_explore/): the dev series, cached parts, OOF summaries."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

torch.set_num_threads(1)
BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))
import quality  # noqa: E402
import quality_cv as cv  # noqa: E402

SEEDS = [0, 1, 2]
CV_CACHE = BENCH / ".cache" / "cv"
VARIANT_CACHE = BENCH / ".cache" / "ucr-variants"


def dev_series() -> tuple[list[str], dict]:
    """(the 46 dev names as `quality.py --cv` lists them, name -> load)."""
    args = argparse.Namespace(all=False, only=None, series=None, limit=None, data=quality.DEFAULT_DATA)
    peers = pd.read_csv(args.data / quality.PEER_FILE)
    entries = quality.available(args.data)
    return quality.wanted(args, entries, peers), entries


def load_parts(name: str) -> tuple[dict, dict]:
    parts = {s: dict(np.load(CV_CACHE / f"{cv.safe(name)}-s{s}.npz")) for s in SEEDS}
    nn = dict(np.load(CV_CACHE / f"{cv.safe(name)}-neighbours.npz"))
    return parts, nn


def summary(oof: pd.DataFrame) -> dict:
    """OOF means over seeds: univariate, multivariate, UCR, NAB, UCR top-1."""
    def mean(groups, col="vus_pr"):
        rows = oof[oof["group"].isin(groups)]
        return float(rows.groupby("seed")[col].mean().mean())
    return {"univariate": mean(cv.UNIVARIATE), "multivariate": mean(cv.MULTIVARIATE), "ucr": mean(("ucr",)),
            "nab": mean(("nab",)), "ucr_top1": mean(("ucr",), "ucr_top1")}


def top1_by_series(rows: pd.DataFrame) -> pd.Series:
    return rows[rows["group"] == "ucr"].groupby("name")["ucr_top1"].mean()
