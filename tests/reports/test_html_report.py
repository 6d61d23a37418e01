"""The HTML report (lstmae.reports.html): its data, its downsampling, and the page in a real browser.

The browser tests open the report from a file:// URL in headless Chromium
(Debian's ``chromium``, driven by playwright, which never downloads a browser
here) and check what a user sees: no console error, nothing fetched, lines
drawn with the data's point count, one table row per interval, a click that
zooms. Without Chromium they skip locally; in CI (``CI=true``) they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import naive
from browser import chromium
from lstmae.errors import DataError, ParameterError
from lstmae.reports.html import ReportData, display_indices, render_html, report_data, write_report
from lstmae.scoring.intervals import interval_table

#: Where docs/report.png comes from: LSTMAE_SCREENSHOT=docs/report.png pytest -k demo_report
SCREENSHOT_ENV = "LSTMAE_SCREENSHOT"


def embedded(path: Path) -> dict:
    """The report's JSON, read back from the page the way the browser does."""
    text = path.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert match is not None
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def anomalous_frame(frame_2f) -> pd.DataFrame:
    """`frame_2f` with a jump in "load" at rows 60-65: one detected interval."""
    frame = frame_2f.copy()
    frame.iloc[60:66, 1] += 150.0
    return frame


@pytest.fixture(scope="module")
def frame_labels(anomalous_frame) -> np.ndarray:
    labels = np.zeros(len(anomalous_frame))
    labels[58:68] = 1
    labels[100:103] = 1
    return labels


@pytest.fixture(scope="module")
def frame_report(tmp_path_factory, fitted_frame, anomalous_frame, frame_labels) -> Path:
    path = tmp_path_factory.mktemp("report") / "frame.html"
    return write_report(fitted_frame, anomalous_frame, path, labels=frame_labels)


@pytest.fixture(scope="module")
def series_report(tmp_path_factory, fitted_1d, series_1d) -> tuple[Path, np.ndarray]:
    """A univariate numpy series (positional x axis) with a spike at 80-83."""
    values = series_1d.copy()
    values[80:84] += 3.0
    path = tmp_path_factory.mktemp("report") / "series.html"
    return fitted_1d.report(values, path), values


def synthetic(n: int, seed: int = 0) -> ReportData:
    """A long univariate series with three spikes, scored by hand (no model): only the page is under test."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    clean = np.sin(2 * np.pi * t / 500)
    values = clean + 0.1 * rng.standard_normal(n)
    for position, height in ((1_234, 6.0), (n // 2, -5.0), (n - 7_000, 8.0)):
        values[position : position + 40] += height
    scores = (values - clean) ** 2
    intervals = interval_table(scores, 1.0, 50, feature_scores=scores[:, None], feature_names=["value"])
    return ReportData(
        x=t.astype(np.float64), is_time=False, values=values[:, None], reconstruction=clean[:, None],
        feature_scores=scores[:, None], scores=scores, threshold=1.0, intervals=intervals, labels=None,
        feature_names=["value"], summary={"params": {"units": 32}, "history": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.6]}},
    )


@pytest.fixture(scope="module")
def million_report(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "million.html"
    path.write_text(render_html(synthetic(1_000_000)), encoding="utf-8")
    return path


# ------------------------------------------------------------- downsampling


def loop_bucket_extremes(y: np.ndarray, n_buckets: int) -> list[tuple[int, float, float]]:
    """Plain-loop reference: (first position, min, max) of each of ``n_buckets`` equal contiguous buckets."""
    size = -(-len(y) // n_buckets)
    out = []
    for first in range(0, len(y), size):
        low = high = float(y[first])
        for value in y[first : first + size]:
            low, high = min(low, float(value)), max(high, float(value))
        out.append((first, low, high))
    return out


@pytest.mark.parametrize(
    "n, n_buckets, keep",
    [(100_003, 1_000, [(500, 620), (99_990, 100_100)]), (50_000, 5_000, []), (30_001, 250, [(-5, 3), (17_000, 16_990)]), (9, 100, [])],
)
def test_display_indices_keep_every_bucket_extreme_and_the_kept_ranges(n, n_buckets, keep):
    rng = np.random.default_rng(n)
    y = rng.standard_normal(n).cumsum()
    idx = display_indices(y, n_buckets, keep)
    assert idx.dtype == np.int64 and (np.diff(idx) > 0).all()
    assert idx[0] == 0 and idx[-1] == n - 1
    kept = set(idx.tolist())
    size = -(-n // n_buckets)
    for first, low, high in loop_bucket_extremes(y, n_buckets):
        shown = {float(y[i]) for i in kept if first <= i < first + size}
        assert low in shown and high in shown, f"bucket at {first} lost its min or max"
    for first, last in keep:
        assert set(range(max(first, 0), min(last, n - 1) + 1)) <= kept
    extra = sum(max(0, min(last, n - 1) - max(first, 0) + 1) for first, last in keep)
    assert len(idx) <= (n if n <= 2 * n_buckets else 2 * n_buckets + 2) + extra


def test_a_million_points_make_a_small_downsampled_page(million_report):
    assert million_report.stat().st_size < 10_000_000
    data = embedded(million_report)
    assert data["downsampled"] == {"n": 1_000_000, "buckets": 5_000, "detail": 3}
    truth = synthetic(1_000_000)
    for line, full in ((data["series"][0]["value"], truth.values[:, 0]), (data["score"], truth.scores)):
        assert line["points"] == len(line["x"]) == len(line["y"]) < 2 * 5_000 + 2 + 3 * 200
        assert max(line["y"]) == pytest.approx(full.max(), rel=1e-6)  # the highest spike survives
        assert min(line["y"]) == pytest.approx(full.min(), rel=1e-6, abs=1e-6)
    x = np.asarray(data["score"]["x"])
    for row in data["intervals"]:  # full resolution around each interval
        first, last = row["view"]
        assert np.array_equal(x[(x >= first) & (x <= last)], np.arange(first, last + 1))


# ------------------------------------------------------------- content


def test_report_holds_the_models_results(frame_report, fitted_frame, anomalous_frame, frame_labels):
    data = embedded(frame_report)
    intervals = fitted_frame.detect(anomalous_frame)
    assert len(data["intervals"]) == len(intervals) >= 1
    assert [row["start"] for row in data["intervals"]] == intervals["start"].tolist()
    assert data["threshold"] == fitted_frame.threshold_
    assert data["features"] == ["temp", "load"] and data["downsampled"] is None
    n = len(anomalous_frame)
    scores = np.asarray(fitted_frame.anomaly_score(anomalous_frame), dtype=float)
    assert data["score"]["y"] == pytest.approx(scores, rel=1e-6)
    recon = np.asarray(fitted_frame.reconstruct(anomalous_frame))
    for f, name in enumerate(["temp", "load"]):
        assert data["series"][f]["value"]["y"] == pytest.approx(anomalous_frame[name].to_numpy(), rel=1e-6)
        assert data["series"][f]["recon"]["y"] == pytest.approx(recon[:, f], rel=1e-6)
    ms = (anomalous_frame.index - pd.Timestamp("1970-01-01")) // pd.Timedelta(milliseconds=1)
    assert data["score"]["x"] == list(ms) and data["time"] is True
    assert [[a, b] for a, b in data["labels"]] == [[float(ms[a]), float(ms[b])] for a, b in naive.runs_of_ones(frame_labels)]
    # Shaded grey: the rows the model was trained on, all but those in a window (T = 7) that holds the jump at 60-65.
    assert data["trained"] == [[float(ms[0]), float(ms[59])], [float(ms[66]), float(ms[n - 1])]]
    assert data["trained_points"] == n - 6
    per_feature = fitted_frame.anomaly_score(anomalous_frame, per_feature=True)
    first = data["intervals"][0]
    assert first["features"] == pytest.approx(per_feature[first["start"] : first["end"] + 1].mean(axis=0))
    summary = data["summary"]
    assert dict(summary["params"])["units"] == "[8, 4]"
    assert summary["history"]["loss"] == pytest.approx(fitted_frame.history_["loss"])
    assert summary["explain"] == fitted_frame.explain(anomalous_frame)
    assert summary["warnings"] == list(fitted_frame.diagnostics_["warnings"])
    assert n == data["n"]


def test_report_is_self_contained(frame_report):
    text = frame_report.read_text(encoding="utf-8")
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    assert len(re.findall(r"<script", text)) == 3  # plotly.js, the data, the page's script: all inline
    page = re.sub(r"<script>/\*\*\s*\* plotly\.js.*?</script>", "", text, count=1, flags=re.S)
    assert len(page) < len(text) - 1_000_000  # the bundle was found and cut out
    assert "http" not in page  # nothing of ours points to the network


def test_report_errors_are_clear(fitted_frame, fitted_1d, anomalous_frame, panel, tmp_path):
    with pytest.raises(DataError, match=r"labels has 3 values but the series has 150 timesteps"):
        write_report(fitted_frame, anomalous_frame, tmp_path / "r.html", labels=[0, 1, 0])
    with pytest.raises(DataError, match=r"labels has 1 missing"):
        write_report(fitted_frame, anomalous_frame, tmp_path / "r.html", labels=[0.0] * 149 + [np.nan])
    with pytest.raises(ParameterError, match=r"ending in \.html"):
        write_report(fitted_frame, anomalous_frame, tmp_path / "r.png")
    with pytest.raises(DataError, match=r"one long series; got a panel of shape \(48, 8, 2\)"):
        report_data(fitted_1d, panel)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_cli_report_with_a_label_column(tmp_path, fitted_frame, anomalous_frame, frame_labels, capsys):
    from lstmae.cli.app import main

    assert main(["report", "--help"]) == 0
    assert "--labels" in capsys.readouterr().out
    model = fitted_frame.save(tmp_path / "model.safetensors")
    table = anomalous_frame.reset_index()
    table["label"] = frame_labels.astype(int)
    table.to_csv(tmp_path / "data.csv", index=False)
    out = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "data.csv"), "-m", str(model), "-o", str(out), "--labels", "label"]) == 0
    assert "wrote the report" in capsys.readouterr().err
    data = embedded(out)
    assert len(data["labels"]) == len(naive.runs_of_ones(frame_labels)) == 2
    assert len(data["intervals"]) == len(fitted_frame.detect(anomalous_frame))
    assert main(["report", str(tmp_path / "data.csv"), "-m", str(model), "-o", str(out), "--labels", "load"]) == 2
    assert "--labels 'load' is one of the model's input columns" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "data.csv"), "-m", str(model), "-o", str(out), "--labels", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


# ------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


class Opened:
    """A report open in a fresh page, with what it logged and requested."""

    def __init__(self, browser, path: Path, width: int = 1280, height: int = 1000) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=60_000)

    def line_points(self, selector: str = "#plot") -> list[int]:
        """Vertices of each drawn line (its SVG path's M/L commands)."""
        return self.page.evaluate(
            """(selector) => Array.from(document.querySelectorAll(selector + ' .scatterlayer .trace path.js-line'))
                 .map(p => (p.getAttribute('d').match(/[ML]/g) || []).length)""",
            selector,
        )

    def x_range(self) -> list:
        return self.page.evaluate("() => document.getElementById('plot').layout.xaxis.range.slice()")

    def check_clean(self) -> None:
        assert self.errors == []
        assert self.requests == [self.url]  # the page itself, nothing else

    def close(self) -> None:
        self.page.close()


def test_browser_multivariate_report(browser, frame_report, fitted_frame, anomalous_frame):
    opened = Opened(browser, frame_report)
    page = opened.page
    n = len(anomalous_frame)
    assert opened.line_points() == [n, n, n]  # reconstruction, value, score: every point drawn
    assert page.locator("#downsample-note").is_hidden()
    intervals = fitted_frame.detect(anomalous_frame)
    rows = page.locator("#intervals tbody tr")
    assert rows.count() == len(intervals) >= 1
    assert page.locator("#plot .shapelayer path").count() >= len(intervals) + 2  # intervals, labels, threshold
    before = opened.x_range()
    rows.first.click()
    page.wait_for_function("(old) => JSON.stringify(document.getElementById('plot').layout.xaxis.range) !== old",
                           arg=json.dumps(before))
    after = [pd.Timestamp(value) for value in opened.x_range()]
    start, end = intervals["start_time"].iloc[0], intervals["end_time"].iloc[0]
    assert after[0] <= start and end <= after[1] and after[1] - after[0] < anomalous_frame.index[-1] - anomalous_frame.index[0]
    # Multivariate: the selected interval's per-feature scores, one bar per feature, and its top feature shown.
    assert page.locator("#feature-scores .bars .point").count() == 2
    top = intervals["top_features"].iloc[0].split(" (")[0]
    assert page.locator("#feature option:checked").inner_text() == top
    assert page.locator("#plot .legend text.legendtext").first.text_content() == top
    assert page.locator("#params tr").count() == len(fitted_frame.get_params())
    assert page.locator("#history .scatterlayer .trace").count() == 2  # loss and val_loss
    assert "RepeatVector" in page.locator("#explain").inner_text()
    opened.check_clean()
    opened.close()


def test_browser_univariate_zoom_and_sort(browser, series_report, fitted_1d):
    path, values = series_report
    opened = Opened(browser, path)
    page = opened.page
    assert opened.line_points() == [len(values)] * 3
    intervals = fitted_1d.detect(values)
    assert page.locator("#intervals tbody tr").count() == len(intervals) >= 1
    before = opened.x_range()
    page.locator("#intervals tbody tr").first.click()
    page.wait_for_function("(old) => JSON.stringify(document.getElementById('plot').layout.xaxis.range) !== old",
                           arg=json.dumps(before))
    low, high = opened.x_range()
    assert low <= intervals["start"].iloc[0] <= intervals["end"].iloc[0] <= high
    assert high - low < before[1] - before[0]
    assert page.locator("#feature-scores").is_hidden()  # one feature: nothing to break down
    page.locator("#intervals th[data-key='peak']").click()  # ascending
    page.locator("#intervals th[data-key='peak']").click()  # descending
    shown = [float(text) for text in page.locator("#intervals tbody td:nth-child(5)").all_inner_texts()]
    assert shown == sorted(shown, reverse=True)
    opened.check_clean()
    opened.close()


def test_browser_a_million_points(browser, million_report):
    data = embedded(million_report)
    opened = Opened(browser, million_report)
    page = opened.page
    expected = [data["series"][0]["recon"]["points"], data["series"][0]["value"]["points"], data["score"]["points"]]
    assert opened.line_points() == expected
    assert all(5_000 <= points < 1_000_000 for points in expected)
    note = page.locator("#downsample-note")
    assert note.is_visible() and "Downsampled for display" in note.inner_text() and "5,000 buckets" in note.inner_text()
    assert page.locator("#intervals tbody tr").count() == len(data["intervals"]) == 3
    draw_ms = int(page.evaluate("() => document.body.dataset.drawMs"))
    ready_ms = int(page.evaluate("() => document.body.dataset.readyMs"))
    print(f"a million points: page ready {ready_ms} ms after navigation, of which {draw_ms} ms drawing the report")
    # plotly.js parsing is the same for every report; what a million points add must stay well below 3 s.
    assert draw_ms < 3_000
    opened.check_clean()
    opened.close()


@pytest.mark.slow
def test_demo_report_screenshot(browser, tmp_path):
    """The demo job (NYC taxi) writes report.html; a screenshot shows the series, the score and the intervals."""
    from lstmae.datasets import NYC_TAXI_EVENTS
    from lstmae.cli.demo import run_demo
    from rich.console import Console

    result = run_demo(tmp_path, console=Console(file=open(os.devnull, "w")), verbose=0)
    assert result.report_path == tmp_path / "report.html"
    opened = Opened(browser, result.report_path, width=1280, height=900)
    page = opened.page
    assert opened.line_points() == [10_320] * 3
    assert page.locator("#intervals tbody tr").count() == len(result.intervals) >= 1
    assert len(embedded(result.report_path)["labels"]) == len(NYC_TAXI_EVENTS)
    trained = embedded(result.report_path)["trained"]  # one grey span: the months before the demo's TRAIN_END
    assert len(trained) == 1 and trained[0][0] == float(pd.Timestamp("2014-07-01").value // 10**6)
    assert pd.Timestamp(trained[0][1], unit="ms") == pd.Timestamp("2014-10-14 23:30")
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get(SCREENSHOT_ENV):  # refresh docs/report.png
        shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])
    opened.check_clean()
    opened.close()


def test_the_score_panel_is_the_score_the_threshold_judges():
    """With the default (combined) scorer, the page's score is anomaly_score, not the reconstruction part alone:
    detected intervals are where that score passes the threshold drawn beside it."""
    from conftest import sine

    from lstmae import LSTMAutoencoder

    train = sine(600, 20, seed=7)
    test = sine(400, 20, seed=8)
    test[200:215] += 2.5  # a bump the model has not seen
    model = LSTMAutoencoder(timesteps=20, units=6, epochs=2, random_state=0, verbose=0).fit(train)
    assert model.get_params()["scorer"] == "auto"  # combined: reconstruction + latent
    data = report_data(model, test)
    scores = np.asarray(model.anomaly_score(test))
    reconstruction_only = np.asarray(model.anomaly_score(test, per_feature=True)).mean(axis=1)
    assert not np.allclose(scores, reconstruction_only)  # the two differ, so the check below can fail
    assert np.array_equal(data.scores, scores)
    for row in data.intervals.itertuples():
        assert (data.scores[row.start : row.end + 1] > data.threshold).any()
