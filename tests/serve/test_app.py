"""The HTTP routes in-process (Starlette's TestClient): pushed scores against the batch scorer, resends, CSV,
bad input and limits (4xx JSON, never a 500), the token, /metrics, intervals, a global model."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

from lstmae.errors import DataError

from lstmae.serve.app import build_app
from lstmae.serve.service import Options, Service

from serving import fit, metric, saved_model, sine

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

N = 300
T0 = 1_700_000_000.0  # the series' first time; one point a minute
STEP = 60.0
RTOL = 1e-5


@pytest.fixture(scope="module")
def series() -> np.ndarray:
    x = sine(N, seed=1)
    x[200:210] += 2.5  # an injected anomaly
    return x


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """(a model fitted on a 400-point noisy sine, its saved path), once per module."""
    return saved_model(tmp_path_factory.mktemp("model"))


def make(model_file, tmp_path=None, token=None, **options):
    model, path = model_file
    if token is not None:
        (tmp_path / "token").write_text(token + "\n")
        options["token_file"] = tmp_path / "token"
    service = Service(Options(model=path, **options))
    service.started = True
    return TestClient(build_app(service), raise_server_exceptions=False), service


def rows(x, start=0):
    return [{"time": T0 + STEP * (start + i), "value": float(v)} for i, v in enumerate(x)]


def push_blocks(client, name, x, sizes, start=0):
    finals, i, k = [], 0, 0
    while i < len(x):
        size = sizes[k % len(sizes)]
        answer = client.post(f"/v1/series/{name}/points", json=rows(x[i:i + size], start + i))
        assert answer.status_code == 200, answer.text
        finals += answer.json()["scores"]
        i, k = i + size, k + 1
    return finals


def test_pushed_scores_are_the_batch_scores(model_file, series):
    model, _ = model_file
    client, service = make(model_file)
    finals = push_blocks(client, "s1", series, list(np.random.default_rng(0).integers(1, 40, 30)))
    expected = np.asarray(model.anomaly_score(series))
    assert len(finals) == N - service.registry.get("s1").scorer.delay  # every point final `delay` points after it
    assert [f["time"] for f in finals] == [T0 + STEP * i for i in range(len(finals))]
    np.testing.assert_allclose([f["score"] for f in finals], expected[: len(finals)], rtol=RTOL)
    assert [f["anomaly"] for f in finals] == list((expected[: len(finals)] > model.threshold_).astype(int))
    assert any(f["anomaly"] for f in finals)  # the injected anomaly is found
    text = client.get("/metrics").text
    assert metric(text, "lstmae_anomaly_score", "s1") == pytest.approx(finals[-1]["score"])
    assert metric(text, "lstmae_anomaly", "s1") == finals[-1]["anomaly"]
    assert metric(text, "lstmae_threshold", "s1") == pytest.approx(model.threshold_)
    assert 'lstmae_points_scored_total{source="push"} 300.0' in text
    assert "lstmae_score_seconds_bucket" in text


def test_a_resend_from_the_last_accepted_time_is_neither_lost_nor_doubled(model_file, series):
    model, _ = model_file
    client, _ = make(model_file)
    first = client.post("/v1/series/s/points", json=rows(series[:120])).json()
    assert first["accepted"] == 120 and first["last_accepted_time"] == T0 + STEP * 119
    again = client.post("/v1/series/s/points", json=rows(series[80:200], 80)).json()  # 40 already accepted
    assert (again["accepted"], again["ignored"]) == (80, 40)
    finals = first["scores"] + again["scores"]
    expected = np.asarray(model.anomaly_score(series[:200]))
    np.testing.assert_allclose([f["score"] for f in finals], expected[: len(finals)], rtol=RTOL)
    assert len({f["time"] for f in finals}) == len(finals)
    assert 'lstmae_points_ignored_total{source="push"} 40.0' in client.get("/metrics").text


def test_csv_gives_the_json_answer_and_provisional_scores_are_the_uninterrupted_stream_s(model_file, series):
    model, _ = model_file
    client, _ = make(model_file)
    csv = "time,value\n" + "".join(f"{T0 + STEP * i},{float(v)!r}\n" for i, v in enumerate(series[:100]))
    by_csv = client.post("/v1/series/c/points?provisional=true", content=csv, headers={"content-type": "text/csv"}).json()
    by_json = client.post("/v1/series/j/points", json={"points": rows(series[:100]), "provisional": True}).json()
    assert by_csv["scores"] == by_json["scores"] and by_csv["provisional"] == by_json["provisional"]
    stream = model.stream()
    stream.update(series[:100])
    expected = stream.provisional()
    assert len(by_csv["provisional"]) == len(expected) > 0
    np.testing.assert_allclose([p["score"] for p in by_csv["provisional"]], expected.to_numpy(), rtol=RTOL)
    assert by_csv["provisional"][-1]["time"] == T0 + STEP * 99


def test_intervals_are_those_detect_finds(model_file, series):
    model, _ = model_file
    client, _ = make(model_file)
    push_blocks(client, "s", series, [50])
    found = client.get("/v1/series/s/intervals").json()
    detected = model.detect(series)
    detected = detected[detected["end"] < N - model.stream().delay - model.timesteps_]  # closed by the points pushed
    assert len(detected) >= 1
    assert [(c["start_time"], c["end_time"]) for c in found["closed"]] == [
        (T0 + STEP * s, T0 + STEP * e) for s, e in zip(detected["start"], detected["end"])]
    client.post("/v1/series/o/points", json=rows(series[:225]))  # the anomaly's points final, its interval not closed yet
    opened = client.get("/v1/series/o/intervals").json()["open"]
    assert opened is not None and opened["start_time"] == T0 + STEP * detected["start"].iloc[0]


BAD = [
    (b"{not json", "application/json", 400, "not valid JSON"),
    (b'{"rows": []}', "application/json", 422, 'no "points"'),
    (b"[1, 2]", "application/json", 422, "not an object"),
    (b'[{"value": 1}]', "application/json", 422, 'no "time"'),
    (b'[{"time": "yesterday-ish", "value": 1}]', "application/json", 422, "not a time"),
    (b'[{"time": 1, "value": "abc"}]', "application/json", 422, "'abc' is not a number"),
    (b'[{"time": 1, "value": 1e999}]', "application/json", 422, "infinite"),
    (b'[{"time": 1, "value": true}]', "application/json", 422, "not a number"),
    (b'[{"time": 1, "values": [1, 2]}]', "application/json", 422, "list of 1 number"),
    (b'[{"time": 2, "value": 1}, {"time": 1, "value": 2}]', "application/json", 422, "not after row 1"),
    (b"[]", "application/json", 422, "no points"),
    (b"when,value\n1,2\n", "text/csv", 400, "no 'time' column"),
    (b"time,value\n1,2,3\n", "text/csv", 422, "3 field(s)"),
    (b"time,a,b\n1,2,3\n", "text/csv", 400, "1 feature"),
]


@pytest.mark.parametrize("body, kind, status, words", BAD)
def test_bad_input_is_a_4xx_json_error_that_names_the_problem(model_file, body, kind, status, words):
    client, _ = make(model_file)
    answer = client.post("/v1/series/s/points", content=body, headers={"content-type": kind})
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    assert "Traceback" not in answer.text


def test_limits_and_names_are_4xx_json(model_file):
    client, _ = make(model_file, max_points=10, max_body=2048, rate_limit=0)
    too_many = client.post("/v1/series/s/points", json=rows(np.zeros(11)))
    assert too_many.status_code == 413 and "limit of 10" in too_many.json()["detail"]
    too_big = client.post("/v1/series/s/points", content=b"[" + b" " * 5000 + b"]", headers={"content-type": "application/json"})
    assert too_big.status_code == 413 and too_big.json()["error"] == "too_large"
    bad_name = client.post("/v1/series/a%20b/points", json=rows([1.0]))
    assert bad_name.status_code == 400 and "not allowed" in bad_name.json()["detail"]
    assert client.get("/v1/series/none/intervals").status_code == 404
    assert client.get("/nowhere").json()["error"] == "not_found"
    assert client.get("/v1/series").json()["series"] == []  # refused first pushes leave no series behind
    assert client.get("/v1/series/s/points").status_code == 405
    assert metric(client.get("/metrics").text, 'lstmae_errors_total{kind="too_large"}') == 2


def test_rate_limit_is_429(model_file):
    client, _ = make(model_file, rate_limit=1)  # bursts of 2
    codes = [client.get("/v1/series").status_code for _ in range(4)]
    assert codes[:2] == [200, 200] and codes[-1] == 429


def test_a_token_guards_v1_and_metrics_not_the_probes(model_file, tmp_path):
    token = "s3cret-token-0123456789"
    client, _ = make(model_file, tmp_path, token=token)
    assert client.post("/v1/series/s/points", json=rows([1.0])).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token-0000000"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.post("/v1/series/s/points", json=rows([1.0]), headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


def test_a_global_model_scores_each_series_by_its_own_state(tmp_path):
    a, b = sine(200, seed=2), 5 + 3 * sine(200, seed=3)  # scored; fitted on other draws of the same series, so that no
    model = fit({"a": sine(150, seed=12), "b": 5 + 3 * sine(150, seed=13)})  # window is one the model was trained on
    model.save(tmp_path / "global.safetensors")
    client, _ = make((model, tmp_path / "global.safetensors"))
    expected = model.anomaly_score({"a": a, "b": b})
    for name, x in (("a", a), ("b", b)):
        finals = client.post(f"/v1/series/{name}/points", json=rows(x)).json()["scores"]
        np.testing.assert_allclose([f["score"] for f in finals], np.asarray(expected[name])[: len(finals)], rtol=RTOL)
    unknown = client.post("/v1/series/c/points", json=rows(a))
    assert unknown.status_code == 404 and "no model for series 'c'" in unknown.json()["detail"]
    with pytest.raises(DataError, match="'c' was not in the data this global model was fitted on"):
        model.stream(series="c")  # what the service builds on: the estimator's stream of one series of a global model
    with pytest.raises(DataError, match="fitted on one series"):
        fit(a[:150]).stream(series="a")


def test_a_fleet_scores_each_series_by_its_own_model(tmp_path):
    import pandas as pd

    from lstmae import LSTMAutoencoder
    from lstmae.fleet.runner import Fleet

    from serving import PARAMS

    a, b = sine(200, seed=2), 5 + 3 * sine(200, seed=3)
    train = {"a": sine(150, seed=12), "b": 5 + 3 * sine(150, seed=13)}  # other draws: no scored window is a training one
    table = pd.concat([pd.DataFrame({"sensor": name, "time": np.arange(150), "value": x}) for name, x in train.items()])
    Fleet(LSTMAutoencoder(**PARAMS), engine="local", workers=1, verbose=0).fit(table, series_column="sensor", output=tmp_path / "fleet")
    client, _ = make((None, tmp_path / "fleet"))
    for name, x in (("a", a), ("b", b)):
        model = LSTMAutoencoder.load(tmp_path / "fleet" / "models" / f"{name}.safetensors")
        answer = client.post(f"/v1/series/{name}/points", json=rows(x)).json()
        assert answer["threshold"] == pytest.approx(model.threshold_)
        np.testing.assert_allclose([f["score"] for f in answer["scores"]], np.asarray(model.anomaly_score(x))[: len(answer["scores"])], rtol=RTOL)
    assert client.post("/v1/series/c/points", json=rows(a)).status_code == 404
