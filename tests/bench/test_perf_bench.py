"""bench/perf.py's paired Keras comparison: what it runs, in which order, and how it pools the epochs.

The Keras and lstmae runs are replaced by fakes that return chosen epoch times, so the
arithmetic is checked against values worked out by hand (no TensorFlow, no training).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def perf(bench_script):
    return bench_script("perf")


def test_paired_rounds_alternate_and_pool_the_steady_epochs(perf, monkeypatch):
    calls = []
    # per (side, batch): one list of epoch seconds per round; the first epoch is start-up
    keras = {32: [[9.0, 2.0, 2.0, 2.0], [9.0, 4.0, 4.0, 4.0], [9.0, 2.0, 2.0, 2.0]], 256: [[9.0, 1.0, 1.0, 1.0]] * 3}
    ours = {32: [[5.0, 0.5, 0.5, 0.5], [5.0, 1.0, 1.0, 1.0], [5.0, 0.5, 0.5, 0.5]], 256: [[5.0, 0.4, 0.4, 0.4]] * 3}

    def fake_keras(python, epochs, lengths, log, batches=()):
        (batch,) = batches
        calls.append(("keras", batch))
        return {"train": {str(batch): {"epoch_seconds": keras[batch][sum(c == ("keras", batch) for c in calls) - 1]}}}

    def fake_child(worker, **options):
        assert worker == "fit" and options["threads"] == 2 and options["epochs"] == 4
        batch = options["batch"]
        calls.append(("lstmae", batch))
        return {"epoch_seconds": ours[batch][sum(c == ("lstmae", batch) for c in calls) - 1]}

    monkeypatch.setattr(perf, "run_keras", fake_keras)
    monkeypatch.setattr(perf, "child", fake_child)
    out = perf.paired_training(Path("python"), rounds=3, epochs=4, threads=2, log=lambda message: None)

    # adjacent runs, their order alternating round by round
    assert calls[:6] == [("keras", 32), ("lstmae", 32), ("lstmae", 32), ("keras", 32), ("keras", 32), ("lstmae", 32)]
    assert calls[6:8] == [("keras", 256), ("lstmae", 256)]
    # batch 32: Keras's 9 steady epochs are six of 2 s and three of 4 s, median 2 s -> 1000 windows/s;
    # lstmae's six of 0.5 s and three of 1 s, median 0.5 s -> 4000 windows/s; per round 4x each
    assert out[32]["keras_windows_per_s"] == pytest.approx(perf.SAMPLES / 2.0)
    assert out[32]["lstmae_windows_per_s"] == pytest.approx(perf.SAMPLES / 0.5)
    assert out[32]["ratios"] == pytest.approx([4.0, 4.0, 4.0])
    assert out[256]["ratios"] == pytest.approx([2.5] * 3)
    assert out[256]["lstmae_windows_per_s"] / out[256]["keras_windows_per_s"] == pytest.approx(2.5)


def test_a_failed_run_drops_its_round_not_the_comparison(perf, monkeypatch):
    monkeypatch.setattr(perf, "run_keras", lambda *a, **k: {"error": "keras run failed"})
    monkeypatch.setattr(perf, "child", lambda worker, **options: {"epoch_seconds": [1.0, 0.5, 0.5]})
    out = perf.paired_training(Path("python"), rounds=2, epochs=3, threads=2, log=lambda message: None)
    assert out[32]["ratios"] == [] and out[32]["keras_windows_per_s"] is None and out[32]["lstmae_windows_per_s"] is None


def test_the_scoring_and_memory_workers_run_on_the_current_estimator(perf):
    """The workers reach into the fitted model (its resolved score stride): a refactor must not break them silently."""
    import argparse

    args = argparse.Namespace(threads=1, lengths=[3_000], strides=["auto", "1"], chunk_values=0, variant="", units=8)
    scored = perf.worker_score(args)
    assert set(scored) == {"3000/auto", "3000/1"}
    assert scored["3000/1"]["windows"] == 3_000 - perf.TIMESTEPS + 1
    assert scored["3000/auto"]["windows"] == perf.lstmae_windows(3_000, perf.TIMESTEPS, perf.TIMESTEPS // 8)
    memory = perf.worker_memory(argparse.Namespace(threads=1, lengths=[5_000], strides=["auto"], units=8))
    assert memory["score_stride"] == 100 // 8 and memory["n"] == 5_000 and memory["peak_rss_mb"] > 0
