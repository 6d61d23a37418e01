"""bench/scale.py's report: targets judged and the 100,000-series projection worked out from chosen
measurements (checked against arithmetic done by hand; no fleet is run here)."""

from __future__ import annotations

import argparse

import pytest


@pytest.fixture(scope="module")
def scale(bench_script):
    return bench_script("scale")


def fleet_results(one: float, two: float, ray: float) -> dict:
    """120 series; fit seconds per run chosen so that series/min are 120*60/seconds."""
    def run(engine, workers, seconds):
        return {"engine": engine, "workers": workers, "fit_seconds": seconds, "series_per_minute": 120 / seconds * 60,
                "driver_peak_mb": 400.0, "worker_peak_mb": 512.0, "ok": 120, "failed": {}, "model_bytes": 50 * 2**10}
    return {"table": {"series": 120, "rows": 480_000, "length": 4000}, "params": {"epochs": 2},
            "runs": [run("local", 1, one), run("local", 2, two), run("ray", 2, ray)]}


def test_targets_are_judged_from_the_series_per_minute(scale):
    args = argparse.Namespace(quick=False)
    met = scale.report({"fleet": fleet_results(360.0, 200.0, 220.0)}, args)
    assert "**1.80x** (parallel efficiency 90%); target >= 1.7x: met" in met
    assert "**0.91x** the series per minute; target within 15%: met" in met
    missed = scale.report({"fleet": fleet_results(360.0, 240.0, 300.0)}, args)
    assert "**1.50x** (parallel efficiency 75%); target >= 1.7x: NOT met" in missed
    assert "**0.80x** the series per minute; target within 15%: NOT met" in missed


def test_projection_rests_on_the_measured_cost_per_series(scale):
    lines = scale.projection(fleet_results(360.0, 200.0, 200.0), cores=16, nodes=(10,), series=100_000)
    # t = 360 s / 120 series = 3 core-seconds; Ray at 2 workers: 36 series/min vs 2 x 20: e = 0.9
    assert "t = 3.00 core-seconds" in lines[0] and "e = 0.90" in lines[0]
    minutes = 100_000 * 3.0 / (10 * 16 * 0.9) / 60  # 34.7 min: under an hour, given in minutes
    row = lines[-1]
    assert row.startswith("| 10 node(s) x 16 cores | 35 min |")
    assert f"{minutes:.0f} min" == "35 min"
    one = scale.projection(fleet_results(360.0, 200.0, 200.0), cores=16, nodes=(1,), series=100_000)[-1]
    assert one.startswith("| 1 node(s) x 16 cores | 5.8 h |")  # 100,000 x 3 / (16 x 0.9) s
    assert "| 8.0 GB |" in row  # 16 workers x 512 MB
    assert row.endswith("| 4.8 GB |")  # 100,000 x 50 kB
