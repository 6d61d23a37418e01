"""bench/quality.py on a tiny fake dev folder: it runs, caches, resumes, refuses mixed params, reports verdicts."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from paths import BENCH

TINY = '{"epochs": 1, "timesteps": 10, "units": 4, "batch_size": 64, "validation_split": 0.0}'


@pytest.fixture(scope="module")
def quality(bench_script):
    return bench_script("quality")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dev")
    (root / "ucr").mkdir()
    names = []
    for i, (start, end) in enumerate([(150, 160), (170, 175), (120, 140)], start=1):
        name = f"00{i}_UCR_Anomaly_Toy{i}_100_{start}_{end}"
        values = np.sin(np.arange(220) / 2.0)
        values[start:end] += 2.0
        with gzip.open(root / "ucr" / f"{name}.txt.gz", "wt") as stream:
            stream.write("\r\n".join(f"{v:.6f}" for v in values))
        names.append(f"ucr/{name}")
    rows = []
    for name in names[:2]:  # the dev subset: two of the three series
        for method, vus in [("PeerA", 0.9), ("PeerB", 0.1)]:
            rows.append({"set": "dev_reference", "group": "ucr", "series": name, "method": method, "vus_pr": vus,
                         "auc_pr": vus, "vus_roc": vus, "auc_roc": vus, "ucr_top1": 1, "seconds": 0.5, "status": "ok"})
    rows.append({**rows[0], "method": "PeerC", "vus_pr": 0.99})  # results on one series only: partial
    pd.DataFrame(rows).to_csv(root / "reference_peers_dev.csv", index=False)
    return root


def test_runs_the_dev_subset_caches_and_reports(quality, data, tmp_path, capsys):
    cache, report = tmp_path / "cache.csv", tmp_path / "report.md"
    common = ["--data", str(data), "--params", TINY, "--cache", str(cache), "--report", str(report)]
    quality.main(common)
    first = capsys.readouterr().out
    assert "2 series, 0 cached" in first and "[2/2]" in first
    results = pd.read_csv(cache)
    assert sorted(results["name"]) == ["ucr/001_UCR_Anomaly_Toy1_100_150_160", "ucr/002_UCR_Anomaly_Toy2_100_170_175"]
    assert (results["status"] == "ok").all() and results["ucr_top1"].isin([0, 1]).all()
    text = report.read_text()
    assert "### UCR" in text and "### univariate (UCR + NAB)" in text and "### SMAP" not in text
    assert "| PeerC | 1 (partial) |" in text
    assert "vs the best peer PeerA 0.900 on the same 2 series" in text  # PeerC, partial, is not the yardstick
    assert "CPU cores" in text and "torch" in text

    quality.main(common)  # resumes: nothing left to run
    assert "2 series, 2 cached" in capsys.readouterr().out
    assert len(pd.read_csv(cache)) == 2

    with pytest.raises(SystemExit, match="another --tag"):
        quality.main(["--data", str(data), "--params", '{"epochs": 2}', "--cache", str(cache), "--report", str(report)])


def test_all_and_limit_select_series(quality, data, tmp_path, capsys):
    quality.main(["--data", str(data), "--params", TINY, "--all", "--series", "*Toy3*", "--cache", str(tmp_path / "c.csv"),
                  "--report", str(tmp_path / "r.md")])
    assert "1 series, 0 cached" in capsys.readouterr().out
    assert "no peer has results" in (tmp_path / "r.md").read_text()


def test_cv_selects_on_the_other_folds_and_checks_the_default_end_to_end(quality, data, tmp_path, capsys):
    report = tmp_path / "cv.md"
    quality.main(["--data", str(data), "--params", TINY, "--cv", "--seeds", "0", "1", "--check", "1",
                  "--cache", str(tmp_path / "parts"), "--report", str(report)])
    out = capsys.readouterr().out
    assert "check ucr/001_UCR_Anomaly_Toy1_100_150_160" in out
    text = report.read_text()
    assert "by cross-validation over source families" in text and "seeds 0, 1" in text
    assert "| ucr:Toy1 | 1 |" in text and "| ucr:Toy2 | 1 |" in text  # one fold per (toy) domain
    assert "| univariate (UCR + NAB) | 2 |" in text and "PeerA 0.900" in text
    # the composed default equals what evaluate_series gives end to end
    check = text.split("### Check")[1].split("###")[0]
    row = next(line for line in check.splitlines() if line.startswith("| ucr/001_UCR_Anomaly_Toy1_100_150_160 |"))
    library, composed = (float(v) for v in row.split("|")[2:4])
    assert library == pytest.approx(composed, abs=1e-9)
    metrics = pd.read_csv(next((tmp_path / "parts").rglob("metrics.csv")))
    # one-feature series: the 24 weights of the grid and the 3 parts alone (no multivariate-only candidate), each
    # with the parts' centred means and with each timestep's most anomalous window ("; peak"), and the 20 peak
    # weights with a nearest-window part also with its weight following the part's coverage ("; covered")
    assert set(metrics["seed"]) == {0, 1} and metrics["candidate"].nunique() == 74 and len(metrics) == 2 * 2 * 74
    assert metrics["candidate"].str.contains("; peak").sum() == 2 * 2 * 47
    assert metrics["candidate"].str.endswith("; covered").sum() == 2 * 2 * 20
    assert "### What each part is worth" in text and "| univariate (UCR + NAB) | 2 |" in text.split("### What each part")[1]


def test_cv_can_choose_on_one_seed_and_score_the_choices_on_the_others(quality, data, tmp_path):
    import sys

    cv = sys.modules["quality_cv"]
    quality.main(["--data", str(data), "--params", TINY, "--cv", "--seeds", "0", "1", "--select-seeds", "0", "--check", "0",
                  "--cache", str(tmp_path / "parts"), "--report", str(tmp_path / "cv.md")])
    metrics = pd.read_csv(next((tmp_path / "parts").rglob("metrics.csv")))
    first, second = metrics[metrics["seed"] == 0], metrics[metrics["seed"] == 1]
    assert first["candidate"].nunique() == 74 and len(first) == 2 * 74  # every candidate on the choosing seed
    # seed 1: only what the report reads - each fold's choice (made on seed 0), the default, the parts alone
    _, chosen = cv.cross_validate(first)
    wanted = set(chosen.values()) | {c.name for c in cv.ALONE} | {cv.library_candidate("univariate").name}
    assert set(second["candidate"]) == wanted and len(second) == 2 * len(wanted)
    assert cv.selection_seeds(metrics) == [0]
    assert "seeds 0, 1" in (tmp_path / "cv.md").read_text()
    # run again: everything comes from the cache, each (series, seed, candidate) once
    quality.main(["--data", str(data), "--params", TINY, "--cv", "--seeds", "0", "1", "--select-seeds", "0", "--check", "0",
                  "--cache", str(tmp_path / "parts"), "--report", str(tmp_path / "cv.md")])
    again = pd.read_csv(next((tmp_path / "parts").rglob("metrics.csv")))
    assert len(again) == len(metrics) and not again.duplicated(["name", "seed", "candidate"]).any()
    pd.testing.assert_frame_equal(again.sort_values(["name", "seed", "candidate"]).reset_index(drop=True),
                                  metrics.sort_values(["name", "seed", "candidate"]).reset_index(drop=True))


def test_cross_validation_never_picks_with_the_held_out_fold(monkeypatch):
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(BENCH))  # as quality.py imports it
    cv = sys.modules.get("quality_cv") or importlib.import_module("quality_cv")
    a, b = cv.CANDIDATES[0].name, cv.CANDIDATES[1].name
    rows = []
    for fold, (va, vb) in {"ucr:x": (0.9, 0.1), "ucr:y": (0.2, 0.6), "ucr:z": (0.3, 0.5)}.items():
        for seed in (0, 1):
            rows += [{"name": f"ucr/{fold}", "group": "ucr", "family": fold, "seed": seed, "candidate": a, "vus_pr": va,
                      "ucr_top1": 1.0, "seconds": 1.0},
                     {"name": f"ucr/{fold}", "group": "ucr", "family": fold, "seed": seed, "candidate": b, "vus_pr": vb,
                      "ucr_top1": 0.0, "seconds": 1.0}]
    table = pd.DataFrame(rows)
    oof, chosen = cv.cross_validate(table)
    # x: on y and z, b is better (0.55 vs 0.25); y: on x and z, a (0.6 vs 0.3); z: on x and y, a (0.55 vs 0.35)
    assert chosen == {"ucr:x": b, "ucr:y": a, "ucr:z": a}
    assert oof.groupby("family")["vus_pr"].mean().to_dict() == {"ucr:x": 0.1, "ucr:y": 0.2, "ucr:z": 0.3}
    assert cv.best_overall(table) == {"univariate": a}  # 0.467 vs 0.4 on all folds
    assert cv.family("ucr/120_UCR_Anomaly_ECG2_15000_16000_16100") == cv.family("ucr/229_UCR_Anomaly_mit14134longtermecg_1_2_3")
    assert cv.family("nab/realTraffic/speed_t4013") == "nab:realTraffic" and cv.family("smap/E-11") == "smap:E"


def test_the_multivariate_candidates_compose_as_documented(monkeypatch):
    """compose: the maximum over features over its held-out mean (floored as the part's level is); the nearest-window
    part over the continuous features at its own level (floored at 1% of its [0, 2] scale); the parts alone; against
    the formulas by hand. The library's multivariate default is the candidate its tables name."""
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(BENCH))
    cv = sys.modules.get("quality_cv") or importlib.import_module("quality_cv")
    rng = np.random.default_rng(0)
    per = rng.uniform(size=(50, 3))
    held = rng.uniform(size=(10, 3))
    parts = {"reconstruction": per.mean(axis=1), "reconstruction_features": per, "held_features": held,
             "latent": rng.uniform(size=50), "levels": np.array([0.5, 0.2]), "raw_levels": np.array([0.5, 0.1]),
             "floors": np.array([1e-4, 0.01])}
    nn = {"labels": np.zeros(50), "neighbours": rng.uniform(size=50), "neighbour_level": 0.3, "neighbour_raw_level": 0.3,
          "neighbours_continuous": rng.uniform(size=50), "neighbour_continuous_raw_level": 0.004}
    both = cv.Candidate(2.0, 4.0, features="max", neighbours_on="continuous")
    expected = per.max(axis=1) / held.max(axis=1).mean() + 2.0 * parts["latent"] / 0.2 + 4.0 * nn["neighbours_continuous"] / 0.01
    np.testing.assert_allclose(cv.compose(both, parts, nn), expected)
    plain = cv.Candidate(0.5, 1.0)
    np.testing.assert_allclose(cv.compose(plain, parts, nn), per.mean(axis=1) / 0.5 + 0.5 * parts["latent"] / 0.2 + nn["neighbours"] / 0.3)
    alone = {c.name: cv.compose(c, parts, nn) for c in cv.PARTS_ALONE}
    np.testing.assert_allclose(alone["latent alone"], parts["latent"] / 0.2)
    np.testing.assert_allclose(alone["neighbours alone"], nn["neighbours"] / 0.3)
    assert both.name == "latent 2, neighbours 4; features max, neighbours on continuous" and both.multivariate_only
    assert not any(c.name in cv.SELECTABLE for c in cv.PARTS_ALONE)
    # a held-out maximum under the reconstruction part's floor: the level is the floor, as ScorePart.fit_level takes it
    tiny = {**parts, "held_features": held * 1e-6}
    np.testing.assert_allclose(cv.compose(cv.Candidate(0.0, 0.0, features="max"), tiny, nn), per.max(axis=1) / 1e-4)

    from lstmae.scoring.combination import SERIES_OPTIONS, SERIES_WEIGHTS

    monkeypatch.setitem(SERIES_WEIGHTS, "multivariate", {"reconstruction": 1.0, "latent": 1.0, "neighbours": 8.0})
    assert cv.library_candidate("multivariate") == cv.Candidate(1.0, 8.0, features="max", neighbours_on="continuous", aggregation="peak")
    monkeypatch.setitem(SERIES_OPTIONS, "multivariate", {})
    assert cv.library_candidate("multivariate") == cv.Candidate(1.0, 8.0, aggregation="peak")
    assert cv.library_candidate("univariate") == cv.Candidate(
        SERIES_WEIGHTS["univariate"]["latent"], SERIES_WEIGHTS["univariate"]["neighbours"], aggregation="peak", covered=True)
    # "covered": the nearest-window weight times the coverage of its level (0.3 -> 1, 0.45 -> 0, linear between)
    for level, kept in ((0.3, 1.0), (0.4, 1 / 3), (0.5, 0.0)):
        at = {**nn, "neighbour_level": level}
        np.testing.assert_allclose(cv.compose(cv.Candidate(0.5, 3.0, covered=True), parts, at),
                                   per.mean(axis=1) / 0.5 + 0.5 * parts["latent"] / 0.2 + 3.0 * kept * nn["neighbours"] / level)
    assert cv.Candidate(0.5, 3.0, aggregation="peak", covered=True).name == "latent 0.5, neighbours 3; peak; covered"
    # "peak": each timestep's most anomalous window (T = parts["timesteps"]) of the same sum, by a loop
    T = 4
    summed = cv.compose(plain, parts, nn)
    peaked = cv.compose(cv.Candidate(0.5, 1.0, aggregation="peak"), {**parts, "timesteps": np.asarray(T)}, nn)
    np.testing.assert_allclose(peaked, [summed[max(0, t - 1) : t + 3].max() for t in range(50)])  # [t - (T-1-T//2), t + T//2]
    assert cv.Candidate(0.5, 1.0, aggregation="peak").name == "latent 0.5, neighbours 1; peak"
