"""plot_detection: output files, formats, decimation and atomic writes."""

from __future__ import annotations

import threading
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from lstmae.datasets import NYC_TAXI_EVENTS, KnownEvent
from lstmae.errors import DataError, ParameterError
from lstmae.reports.plots import minmax_decimate_indices, plot_detection

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _series(n: int = 300, d: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = np.sin(t[:, None] / 10.0 + np.arange(d)) + 0.1 * rng.normal(size=(n, d))
    recon = np.sin(t[:, None] / 10.0 + np.arange(d))
    scores = ((values - recon) ** 2).mean(axis=1)
    return values, recon, scores


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG_SIGNATURE


def test_png_from_arrays_with_and_without_intervals(tmp_path: Path) -> None:
    values, recon, scores = _series()
    intervals = pd.DataFrame({"start": [10, 200], "end": [20, 200]})
    out = plot_detection(values, recon, scores, 0.05, intervals, tmp_path / "a.png")
    assert out == tmp_path / "a.png"
    _assert_png(out)
    empty = pd.DataFrame({"start": pd.Series([], dtype=int), "end": pd.Series([], dtype=int)})
    _assert_png(plot_detection(values[:, 0], recon[:, 0], scores, 0.05, empty, tmp_path / "b.png"))
    # Integer-position events on a positional axis.
    events = [KnownEvent("bump", 50, 60)]  # type: ignore[arg-type]
    _assert_png(
        plot_detection(values, recon, scores, 0.05, intervals, tmp_path / "c.png", events=events)
    )


def test_png_from_dataframes_with_datetime_index_and_events(tmp_path: Path) -> None:
    n = 48 * 20
    index = pd.date_range("2014-10-25", periods=n, freq="30min", name="timestamp")
    values, recon, scores = _series(n, 1)
    df = pd.DataFrame(values, index=index, columns=["value"])
    rec = pd.DataFrame(recon, index=index, columns=["value"])
    intervals = pd.DataFrame({"start": [100, 400], "end": [150, 420]})
    out = plot_detection(
        df,
        rec,
        pd.Series(scores, index=index),
        0.05,
        intervals,
        tmp_path / "sub" / "dir" / "t.png",
        title="taxi",
        events=NYC_TAXI_EVENTS,  # only the marathon lies inside this range
    )
    _assert_png(out)
    empty = intervals.iloc[:0]
    _assert_png(plot_detection(df, rec, scores, 0.05, empty, tmp_path / "u.PNG"))


def test_svg_pdf_many_features_and_log_scores(tmp_path: Path) -> None:
    values, recon, _ = _series(500, 6)
    scores = np.logspace(-3, 3, 500)  # spans 6 decades -> log axis
    intervals = pd.DataFrame({"start": [3], "end": [9]})
    svg = plot_detection(values, recon, scores, 1.0, intervals, tmp_path / "f.svg", max_features=2)
    assert b"<svg" in svg.read_bytes()[:2000]
    pdf = plot_detection(values, recon, scores, 1.0, intervals, tmp_path / "f.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_unsupported_extension(tmp_path: Path) -> None:
    values, recon, scores = _series()
    with pytest.raises(ParameterError, match=r"'\.jpg'.*\.png, \.svg, \.pdf"):
        plot_detection(values, recon, scores, 0.1, pd.DataFrame(), tmp_path / "x.jpg")
    with pytest.raises(ParameterError, match="extension ''"):
        plot_detection(values, recon, scores, 0.1, pd.DataFrame(), tmp_path / "noext")
    assert list(tmp_path.iterdir()) == []


def test_the_training_span_is_shaded_grey_and_only_there(tmp_path: Path) -> None:
    """trained=mask: against the same plot without it, the pixels change over the first half (the span) and in
    the legend (its "training data" entry), not over the second half of the data."""
    import matplotlib.image as mi

    values, recon, scores = _series(d=1)
    empty = pd.DataFrame({"start": pd.Series([], dtype=int), "end": pd.Series([], dtype=int)})
    plain = mi.imread(plot_detection(values, recon, scores, 1.0, empty, tmp_path / "plain.png"))
    shaded = mi.imread(plot_detection(values, recon, scores, 1.0, empty, tmp_path / "shaded.png",
                                      trained=np.arange(300) < 150))
    columns = (np.abs(plain - shaded) > 0.02).any(axis=(0, 2))
    width = columns.size
    assert columns[int(0.15 * width) : int(0.4 * width)].all()  # inside the span: every column
    assert not columns[int(0.5 * width) : int(0.8 * width)].any()  # the second half of the data: untouched
    with pytest.raises(DataError, match=r"trained must be a boolean array of shape \(300,\)"):
        plot_detection(values, recon, scores, 1.0, empty, tmp_path / "e.png", trained=np.ones(299, dtype=bool))


def test_input_errors(tmp_path: Path) -> None:
    values, recon, scores = _series()
    ok = pd.DataFrame({"start": [1], "end": [2]})
    with pytest.raises(DataError, match="reconstruction has shape"):
        plot_detection(values, recon[:-1], scores, 0.1, ok, tmp_path / "e.png")
    with pytest.raises(DataError, match="scores must have shape"):
        plot_detection(values, recon, scores[:-1], 0.1, ok, tmp_path / "e.png")
    with pytest.raises(DataError, match="outside 0 <= start <= end < 300"):
        plot_detection(
            values,
            recon,
            scores,
            0.1,
            pd.DataFrame({"start": [5], "end": [300]}),
            tmp_path / "e.png",
        )
    with pytest.raises(DataError, match="lacks column"):
        plot_detection(values, recon, scores, 0.1, pd.DataFrame({"begin": [1]}), tmp_path / "e.png")
    with pytest.raises(ParameterError, match="max_features"):
        plot_detection(values, recon, scores, 0.1, ok, tmp_path / "e.png", max_features=0)
    with pytest.raises(ParameterError, match="threshold"):
        plot_detection(values, recon, scores, float("nan"), ok, tmp_path / "e.png")
    with pytest.raises(ParameterError, match="not a number"):
        plot_detection(values, recon, scores, 0.1, ok, tmp_path / "e.png", events=NYC_TAXI_EVENTS)
    index = pd.date_range("2020-01-01", periods=len(values), freq="h")
    df = pd.DataFrame(values, index=index)
    with pytest.raises(ParameterError, match="not a timestamp"):
        plot_detection(
            df, recon, scores, 0.1, ok, tmp_path / "e.png", events=[KnownEvent("x", 1, 2)]
        )  # type: ignore[arg-type]
    with pytest.raises(DataError, match="different indexes"):
        plot_detection(df, pd.DataFrame(recon), scores, 0.1, ok, tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()


def _reference_bucket_extremes(y: np.ndarray, n_buckets: int) -> list[tuple[float, float]]:
    """Plain-loop reference: (min, max) of each bucket, same bucketing as the helper."""
    size = -(-len(y) // n_buckets)
    out = []
    for start in range(0, len(y), size):
        bucket = [float(v) for v in y[start : start + size]]
        out.append((min(bucket), max(bucket)))
    return out


@pytest.mark.parametrize("n, n_buckets", [(100_003, 1000), (50_000, 5000), (10, 2), (7, 100)])
def test_minmax_decimation_matches_loop_reference(n: int, n_buckets: int) -> None:
    rng = np.random.default_rng(n)
    y = rng.normal(size=n)
    idx = minmax_decimate_indices(y, n_buckets)
    assert idx.dtype == np.int64
    assert (np.diff(idx) > 0).all() and idx[0] == 0 and idx[-1] == n - 1
    assert len(idx) <= 2 * n_buckets + 2
    size = -(-n // n_buckets)
    kept_by_bucket: dict[int, set[float]] = {}
    for i in idx.tolist():
        kept_by_bucket.setdefault(i // size, set()).add(float(y[i]))
    for b, (lo, hi) in enumerate(_reference_bucket_extremes(y, n_buckets)):
        assert lo in kept_by_bucket[b] and hi in kept_by_bucket[b]


def test_decimation_keeps_single_spike() -> None:
    y = np.zeros(1_000_000)
    y[654_321] = 50.0
    y[12_345] = -7.0
    idx = minmax_decimate_indices(y, 5000)
    assert y[idx].max() == 50.0 and y[idx].min() == -7.0
    assert 654_321 in idx and 12_345 in idx


def test_decimation_ignores_nans() -> None:
    y = np.array([np.nan, 1.0, 5.0, np.nan, np.nan, np.nan, -2.0, 0.0])
    idx = minmax_decimate_indices(y, 2)  # buckets of 4: [nan 1 5 nan], [nan nan -2 0]
    assert set(idx.tolist()) >= {1, 2, 6, 7}


def test_long_series_plots(tmp_path: Path) -> None:
    n = 200_000
    rng = np.random.default_rng(1)
    values = rng.normal(size=n)
    values[123_456] = 30.0
    out = plot_detection(
        values,
        values * 0.5,
        np.abs(values),
        3.0,
        pd.DataFrame({"start": [123_450], "end": [123_460]}),
        tmp_path / "long.png",
    )
    _assert_png(out)


def test_atomic_write_keeps_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values, recon, scores = _series()
    target = tmp_path / "plot.png"
    target.write_bytes(b"old content")

    def broken_savefig(self: Figure, *args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_detection(values, recon, scores, 0.1, pd.DataFrame({"start": [1], "end": [2]}), target)
    assert target.read_bytes() == b"old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]  # no temp file left


def test_does_not_touch_global_backend_and_is_thread_safe(tmp_path: Path) -> None:
    backend = matplotlib.get_backend()
    values, recon, scores = _series()
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            plot_detection(
                values,
                recon,
                scores,
                0.1,
                pd.DataFrame({"start": [i], "end": [i + 5]}),
                tmp_path / f"t{i}.png",
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i in range(4):
        _assert_png(tmp_path / f"t{i}.png")
    assert matplotlib.get_backend() == backend
