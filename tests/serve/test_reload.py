"""A model replaced on disk is swapped in between two pushes; a bad replacement keeps the old model serving and says why;
``lstmae serve``'s own errors are one line and exit code 2."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from starlette.testclient import TestClient

from lstmae.cli.app import main
from lstmae.serve.app import build_app
from lstmae.serve.service import Options, Service

from serving import fit, metric, sine, wait_for

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

T0 = 1_700_000_000.0
RTOL = 1e-5


def rows(x, start):
    return [{"time": T0 + start + i, "value": float(v)} for i, v in enumerate(x)]


def replace(source, target):
    """As a deployment should: copy next to the target, then rename over it."""
    shutil.copyfile(source, str(target) + ".new")
    os.replace(str(target) + ".new", target)


def test_a_replaced_model_serves_the_next_points_and_a_bad_one_is_refused(tmp_path):
    old, new = fit(sine(400, seed=0)), fit(sine(400, seed=0), units=8, random_state=1)
    assert old.threshold_ != new.threshold_
    old.save(tmp_path / "old.safetensors")
    new.save(tmp_path / "new.safetensors")
    shutil.copyfile(tmp_path / "old.safetensors", tmp_path / "model.safetensors")
    service = Service(Options(model=tmp_path / "model.safetensors"))
    service.start()
    try:
        client = TestClient(build_app(service))
        x = sine(300, seed=7)
        before = client.post("/v1/series/s/points", json=rows(x[:150], 0)).json()
        np.testing.assert_allclose([r["score"] for r in before["scores"]], np.asarray(old.anomaly_score(x[:150]))[: len(before["scores"])], rtol=RTOL)

        replace(tmp_path / "new.safetensors", tmp_path / "model.safetensors")
        wait_for(lambda: service.models.reloads == 1, 10, "the reload")
        after = client.post("/v1/series/s/points", json=rows(x[150:], 150)).json()
        assert after["threshold"] == pytest.approx(new.threshold_)
        assert after["scores"][0]["time"] == before["scores"][-1]["time"] + 1  # nothing skipped or doubled at the swap
        expected = np.asarray(new.anomaly_score(x))  # the new model scores the points not final at the swap as a whole series would
        times = [int(r["time"] - T0) for r in after["scores"]]
        np.testing.assert_allclose([r["score"] for r in after["scores"]], expected[times], rtol=RTOL)

        (tmp_path / "broken").write_bytes(b"not a model at all")
        replace(tmp_path / "broken", tmp_path / "model.safetensors")
        wait_for(lambda: service.models.last_error is not None, 10, "the refusal")
        ready = client.get("/readyz").json()
        assert "refused, the previous model still serves" in ready["problems"][0] and "not a readable lstmae model" in ready["problems"][0]
        text = client.get("/metrics").text
        assert metric(text, "lstmae_model_reload_ok") == 0 and metric(text, "lstmae_model_reload_failures_total") == 1
        more = client.post("/v1/series/s2/points", json=rows(x[:100], 0)).json()  # still the new (good) model
        np.testing.assert_allclose([r["score"] for r in more["scores"]], np.asarray(new.anomaly_score(x[:100]))[: len(more["scores"])], rtol=RTOL)

        replace(tmp_path / "old.safetensors", tmp_path / "model.safetensors")  # a good file again clears the problem
        wait_for(lambda: service.models.last_error is None and service.models.reloads == 2, 10, "the second reload")
        assert client.get("/readyz").json()["problems"] == []
    finally:
        service.stop()


def test_serve_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    assert main(["serve", "--model", str(tmp_path / "none.safetensors")]) == 2
    assert "no model file at" in capsys.readouterr().err
    fit(sine(200, seed=0)).save(tmp_path / "m.safetensors")
    assert main(["serve", "--model", str(tmp_path / "m.safetensors"), "--step", "soon", "--prometheus-url", "http://x", "--query", "up"]) == 2
    assert "--step 'soon' is not a duration" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path / "m.safetensors"), "--query", "up"]) == 2
    assert "go together" in capsys.readouterr().err
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", "--model", str(tmp_path / "m.safetensors"), "--port", str(taken.getsockname()[1])]) == 2
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err
    import lstmae.serve

    monkeypatch.setattr(lstmae.serve, "missing_modules", lambda: ["uvicorn"])
    assert main(["serve", "--model", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'lstmae[serve]'" in err and len(err.strip().splitlines()) == 1


def test_a_checkpoint_of_another_model_is_continued_by_the_new_one(tmp_path):
    old, new = fit(sine(400, seed=0)), fit(sine(400, seed=0), units=8, random_state=1)
    old.save(tmp_path / "model.safetensors")
    x = sine(300, seed=8)
    first = Service(Options(model=tmp_path / "model.safetensors", state_dir=tmp_path / "state"))
    answer = first.registry.push(first.registry.stream("s", "s", "push"), T0 + np.arange(150), x[:150, None])
    first.checkpoint()
    new.save(tmp_path / "model.safetensors")  # replaced while the service was down
    second = Service(Options(model=tmp_path / "model.safetensors", state_dir=tmp_path / "state"))
    second.restore()
    stream = second.registry.get("s")
    assert stream.last_time == T0 + 149 and stream.threshold == pytest.approx(new.threshold_)
    more = second.registry.push(stream, T0 + np.arange(150, 300), x[150:, None])
    assert more["accepted"] == 150 and more["scores"][0]["time"] == answer["scores"][-1]["time"] + 1
    times = [int(r["time"] - T0) for r in more["scores"]]
    np.testing.assert_allclose([r["score"] for r in more["scores"]], np.asarray(new.anomaly_score(x))[times], rtol=RTOL)


def test_a_model_with_a_shorter_delay_gives_its_extra_final_scores_in_the_next_answer(tmp_path):
    old, new = fit(sine(400, seed=0)), fit(sine(400, seed=0), timesteps=6)
    assert new.stream().delay < old.stream().delay
    old.save(tmp_path / "model.safetensors")
    service = Service(Options(model=tmp_path / "model.safetensors"))
    stream = service.registry.stream("s", "s", "push")
    x = sine(200, seed=4)
    before = service.registry.push(stream, T0 + np.arange(100), x[:100, None])
    new.save(tmp_path / "model.safetensors")
    assert service.reload()
    after = service.registry.push(stream, T0 + np.arange(100, 200), x[100:, None])
    times = [int(r["time"] - T0) for r in before["scores"] + after["scores"]]
    assert times == list(range(len(times))) and times[-1] == 199 - new.stream().delay  # none skipped, none twice
    np.testing.assert_allclose([r["score"] for r in after["scores"]], np.asarray(new.anomaly_score(x))[times[len(before["scores"]):]], rtol=RTOL)
