"""The Prometheus reader in-process, on a test clock against a fake Prometheus: the cursor reads every grid time
once, series appear, disappear and come back (their gaps filled and interpolated), and the scores are the batch
scorer's on the same (filled) points."""

from __future__ import annotations

import numpy as np
import pytest

from lstmae.serve.prometheus import MAX_POINTS, Reader, ReadFailed, series_name
from lstmae.serve.service import Options, Service

from serving import FakePrometheus, fit, sine

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

T0 = 1_700_000_000.0
RTOL = 1e-5


def test_every_grid_time_is_read_once_and_gaps_are_filled(tmp_path):
    model = fit(sine(400, seed=0))
    model.save(tmp_path / "model.safetensors")
    values = sine(400, seed=9)

    def a(t):
        return values[int(t - T0)]

    def b(t):  # appears at +50, gone from +100 to +119, back at +120
        k = int(t - T0)
        return None if k < 50 or 100 <= k < 120 else values[k] * 2

    fake = FakePrometheus({(("__name__", "m"), ("job", "x"), ("host", "a")): a, (("__name__", "m"), ("job", "x"), ("host", "b")): b}, now=1e12)
    clock = [T0 + 30]
    service = Service(Options(model=tmp_path / "model.safetensors"))
    reader = Reader(fake.url, "m", 1.0, service.registry, service.metrics, lag=0, lookback=30, clock=lambda: clock[0])
    try:
        for now in (30, 30, 31, 75, 110, 115, 250, 399):
            clock[0] = T0 + now
            reader.poll()
        spans = [(float(q["start"]), float(q["end"])) for q in fake.requests]
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert start == end + 1.0  # contiguous: nothing read twice, nothing skipped
        assert spans[0][0] == T0 and spans[-1][1] == T0 + 399
        name_a = series_name({"__name__": "m", "job": "x", "host": "a"})
        stream_a = service.registry.get(name_a)
        assert name_a == 'm{host="a",job="x"}' and stream_a.accepted == 400
        kept = stream_a.recent_scores()
        np.testing.assert_allclose([r["score"] for r in kept], np.asarray(model.anomaly_score(values))[: len(kept)], rtol=RTOL)
        stream_b = service.registry.get(series_name({"__name__": "m", "job": "x", "host": "b"}))
        assert stream_b.accepted == 350  # from +50 on, the 20 missing times included (filled)
        gapped = values[50:] * 2
        gapped[50:70] = np.nan
        filled = _interpolate(gapped)  # linear in time: the stream's times are one second apart
        kept = stream_b.recent_scores()
        assert kept[0]["time"] == T0 + 50
        np.testing.assert_allclose([r["score"] for r in kept], np.asarray(model.anomaly_score(filled))[: len(kept)], rtol=RTOL)
    finally:
        fake.down()


def _interpolate(x: np.ndarray) -> np.ndarray:
    known = ~np.isnan(x)
    positions = np.arange(len(x))
    return np.interp(positions, positions[known], x[known])


def test_a_long_absence_reads_in_chunks_and_a_failed_read_moves_nothing(tmp_path):
    fit(sine(200, seed=0)).save(tmp_path / "model.safetensors")
    fake = FakePrometheus({(("__name__", "m"),): lambda t: 0.5}, now=1e12)
    service = Service(Options(model=tmp_path / "model.safetensors"))
    clock = [T0]
    reader = Reader(fake.url, "m", 1.0, service.registry, service.metrics, lag=0, clock=lambda: clock[0])
    try:
        reader.poll()
        clock[0] = T0 + 2.5 * MAX_POINTS
        reader.poll()
        assert [int(float(q["end"]) - float(q["start"])) + 1 for q in fake.requests[1:]] == [MAX_POINTS, MAX_POINTS, MAX_POINTS // 2]
        assert service.registry.get('m{}').accepted == 1 + 25_000
        fake.down()  # Prometheus gone: a failure the run loop counts and retries (test_restart.py runs that loop)
        clock[0] += 5
        cursor = reader.cursor_ms
        with pytest.raises(ReadFailed, match="ConnectError"):
            reader.poll()
        assert reader.cursor_ms == cursor  # nothing skipped: the next read starts where this one would have
        fake.up()
        reader.poll()
        assert service.registry.get('m{}').accepted == 1 + 25_005
    finally:
        fake.down()
