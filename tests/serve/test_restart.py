"""``lstmae serve`` as a process: SIGTERM and ``kill -9`` with checkpoints (pushed and Prometheus-fed streams),
Prometheus stopped and restarted mid-run. Scores are compared with the batch scorer's on the same points."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from serving import FakePrometheus, Served, saved_model, sine, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

T0 = 1_700_000_000.0
RTOL = 1e-5


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """(a model fitted on a 400-point noisy sine, its saved path), once per module."""
    return saved_model(tmp_path_factory.mktemp("model"))


def rows(x, start):
    return [{"time": T0 + start + i, "value": float(v)} for i, v in enumerate(x)]


def test_pushed_points_after_the_last_checkpoint_are_reported_not_accepted_and_resent_without_doubles(model_file, tmp_path):
    model, path = model_file
    x = sine(300, seed=5)
    x[150:160] += 2.5
    args = ["--model", str(path), "--state-dir", str(tmp_path / "state"), "--checkpoint-every", "1h"]
    seen: dict[float, float] = {}  # time -> final score, as the client received them

    def take(answer):
        for row in answer["scores"]:
            assert row["time"] not in seen, f"point {row['time']} scored twice"
            seen[row["time"]] = row["score"]

    first = Served(args, tmp_path / "log1")  # 1: push 0..119, SIGTERM: a checkpoint
    try:
        first.wait_ready()
        take(first.client.post("/v1/series/s/points", json=rows(x[:120], 0)).json())
        assert first.term() == 143
    finally:
        first.stop()
    second = Served(args, tmp_path / "log2")  # 2: restored; push 120..199, then kill -9 before any checkpoint
    try:
        second.wait_ready()
        answer = second.client.post("/v1/series/s/points", json=rows(x[100:200], 100)).json()
        assert (answer["accepted"], answer["ignored"]) == (80, 20)
        take(answer)
        second.process.send_signal(signal.SIGHUP)  # reload the model file (the same one): streams go on unchanged
        wait_for(lambda: "lstmae_model_reloads_total 1.0" in second.client.get("/metrics").text, 10, "the reload on SIGHUP")
        second.kill()
    finally:
        second.stop()
    for t in [t for t in seen if t > T0 + 119 - model.stream().delay]:  # the client forgets what the lost run said...
        del seen[t]
    third = Served(args, tmp_path / "log3")  # 3: the checkpoint's last accepted time; the client resends from there
    try:
        third.wait_ready()
        last = third.client.get("/v1/series").json()["series"][0]["last_accepted_time"]
        assert last == T0 + 119
        answer = third.client.post("/v1/series/s/points", json=rows(x[120:], 120)).json()
        assert (answer["accepted"], answer["ignored"]) == (180, 0)
        take(answer)
    finally:
        third.stop()
    expected = np.asarray(model.anomaly_score(x))
    times = sorted(seen)
    assert times == [T0 + i for i in range(len(times))] and len(times) == 300 - model.stream().delay
    np.testing.assert_allclose([seen[t] for t in times], expected[: len(times)], rtol=RTOL)


def _check_prometheus_scores(client, model, function, name):
    answer = client.get(f"/v1/series/{name}/scores").json()
    times = np.array([r["time"] for r in answer["scores"]])
    assert len(times) > 50 and np.all(np.diff(times) == 1.0), "a grid time was skipped or read twice"
    values = np.array([function(t) for t in np.arange(times[0], answer["last_accepted_time"] + 1)])  # what it read, from its first point
    expected = np.asarray(model.anomaly_score(values))
    np.testing.assert_allclose([r["score"] for r in answer["scores"]], expected[: len(times)], rtol=RTOL)


def test_a_prometheus_fed_stream_survives_kill_9_and_prometheus_going_down(model_file, tmp_path):
    model, path = model_file

    def function(t):
        return float(np.sin(2 * np.pi * t / 20) + (2.5 if (int(t) % 200) in range(150, 158) else 0.0))

    fake = FakePrometheus({(("__name__", "m"), ("instance", "a")): function}, now=1e12)
    args = ["--model", str(path), "--state-dir", str(tmp_path / "state"), "--checkpoint-every", "0.3s",
            "--prometheus-url", fake.url, "--query", "m", "--step", "1s", "--lag", "0s", "--lookback", "120s", "--series-label", "instance"]
    try:
        first = Served(args, tmp_path / "log1")
        try:
            first.wait_ready()
            wait_for(lambda: first.client.get("/v1/series").json()["series"], 20, "the series to appear")
            wait_for(lambda: first.client.get("/v1/series").json()["series"][0]["accepted"] > 122, 20, "the history and a live point")
            time.sleep(0.8)  # a checkpoint or two
            first.kill()
        finally:
            first.stop()
        time.sleep(2)  # points the dead service did not read
        second = Served(args, tmp_path / "log2")
        try:
            second.wait_ready()
            stream = second.client.get("/v1/series").json()["series"][0]
            assert stream["accepted"] >= 120  # restored, not started afresh
            fake.down()  # Prometheus stops...
            wait_for(lambda: "Prometheus cannot be read" in str(second.client.get("/readyz").json()["problems"]), 20, "readyz to say so")
            text = second.client.get("/metrics").text
            assert "lstmae_prometheus_up 0.0" in text and "lstmae_prometheus_read_failures_total 0.0" not in text
            time.sleep(2)
            fake.up()  # ... and comes back: the reader reads what it missed
            wait_for(lambda: "lstmae_prometheus_up 1.0" in second.client.get("/metrics").text, 30, "the reader to recover")
            target = time.time() - 1
            wait_for(lambda: second.client.get("/v1/series").json()["series"][0]["last_accepted_time"] >= target, 20, "the stream to catch up")
            _check_prometheus_scores(second.client, model, function, "a")
        finally:
            second.stop()
    finally:
        fake.down()
