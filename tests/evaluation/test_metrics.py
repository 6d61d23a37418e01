"""lstmae.evaluation.metrics against TSB-AD 1.5 (a committed oracle fixture, and live when available) and slow loops."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
from lstmae.evaluation import metrics
from lstmae.errors import DataError, ParameterError
from paths import BENCH, FILES

DATA = FILES
ORACLE_SCRIPT = BENCH / "make_metric_oracle.py"
TOLERANCE = 1e-6
FIXTURE = json.loads((DATA / "tsbad_oracle.json").read_text())
ARRAYS = np.load(DATA / "tsbad_oracle.npz")


def hash_score(labels: np.ndarray) -> np.ndarray:
    """Same formula as bench/make_metric_oracle.py's hash_score (exact in float64)."""
    t = np.arange(labels.size, dtype=np.uint64)
    noise = ((t * np.uint64(2654435761)) % np.uint64(2**32)).astype(np.float64) / 2.0**32
    near = np.convolve(labels.astype(np.float64), np.ones(9), mode="same") > 0
    return noise + 0.5 * near


def labels_from(ranges: list[list[int]], n: int) -> np.ndarray:
    labels = np.zeros(n, dtype=np.int8)
    for start, end in ranges:
        labels[start : end + 1] = 1
    return labels


def ours(labels: np.ndarray, score: np.ndarray, window: int) -> dict[str, float]:
    return {
        "auc_roc": metrics.auc_roc(labels, score),
        "auc_pr": metrics.auc_pr(labels, score),
        "vus_roc": metrics.vus_roc(labels, score, window),
        "vus_pr": metrics.vus_pr(labels, score, window),
        "r_based_f1": metrics.best_range_f1(labels, score),
    }


def assert_agrees(got: dict, expected: dict, where: str) -> None:
    for key, value in expected.items():
        assert abs(got[key] - value) <= TOLERANCE, f"{where}: {key} = {got[key]!r}, TSB-AD says {value!r}"


# ----------------------------------------------------------------- the committed oracle
@pytest.mark.parametrize("case", FIXTURE["real"], ids=lambda case: case["name"])
def test_real_series_agree_with_tsbad(case):
    labels = labels_from(case["ranges"], case["n"])
    scores = {"absdiff_u8": ARRAYS[f"score/{case['name']}"].astype(np.float64), "hash": hash_score(labels)}
    for score_name, score in scores.items():
        assert_agrees(ours(labels, score, case["window"]), case["oracle"][score_name], f"{case['name']} {score_name}")


@pytest.mark.parametrize("case", FIXTURE["synthetic"], ids=lambda case: case["name"])
def test_synthetic_cases_agree_with_tsbad(case):
    labels = labels_from(case["ranges"], case["n"])
    score = ARRAYS[f"synthetic/{case['name']}"]
    assert_agrees(ours(labels, score, case["window"]), case["oracle"], case["name"])


@pytest.mark.parametrize("name", sorted(FIXTURE["windows"]))
def test_sliding_window_agrees_with_find_length_rank(name):
    values = ARRAYS[f"window/{name}"].astype(np.float64)
    assert metrics.sliding_window(values) == FIXTURE["windows"][name]
    assert metrics.sliding_window(values.reshape(-1, 1)) == FIXTURE["windows"][name]


def test_fixture_covers_the_promised_mix():
    groups = {case["group"] for case in FIXTURE["real"]}
    assert groups == {"ucr", "nab", "smap", "msl"}
    assert max(case["n"] for case in FIXTURE["real"]) > 100_000


def test_evaluate_bundles_the_metrics():
    case = FIXTURE["real"][0]
    labels = labels_from(case["ranges"], case["n"])
    score = hash_score(labels)
    result = metrics.evaluate(labels, score, window=case["window"], train_end=case["train_end"])
    assert_agrees(result, {k: v for k, v in case["oracle"]["hash"].items() if k != "r_based_f1"}, "evaluate")
    assert result["window"] == case["window"]
    assert result["ucr_top1"] == naive.ucr_top1_loop(labels, score, case["train_end"])
    assert metrics.evaluate(labels, score)["window"] == metrics.DEFAULT_WINDOW
    assert "ucr_top1" not in metrics.evaluate(labels, score)


# ----------------------------------------------------------------- the live oracle
@pytest.mark.skipif(not os.environ.get("LSTMAE_TSBAD_PYTHON"), reason="set LSTMAE_TSBAD_PYTHON to a python with tsb-ad==1.5")
def test_live_oracle_on_fresh_random_cases(tmp_path):
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    cases = {"count": np.array(12)}
    for i in range(12):
        n = int(rng.integers(50, 3000))
        labels = np.zeros(n, dtype=np.int8)
        for _ in range(int(rng.integers(1, 6))):
            start = int(rng.integers(0, n))
            labels[start : start + int(rng.integers(1, 80))] = 1
        labels[int(rng.integers(0, n))] = 0 if labels.all() else labels[int(rng.integers(0, n))]
        if labels.all():
            labels[0] = 0
        levels = int(rng.integers(2, 1000))
        score = np.round(rng.random(n) * levels) / levels + rng.random() * labels
        period = float(rng.uniform(3, 350))
        values = np.sin(2 * np.pi * np.arange(n) / period) + rng.random() * rng.standard_normal(n)
        cases.update({f"labels/{i}": labels, f"score/{i}": score, f"window/{i}": np.array(int(rng.integers(0, 200))),
                      f"values/{i}": values})
    case_file = tmp_path / "cases.npz"
    np.savez(case_file, **cases)
    out = tmp_path / "oracle.json"
    subprocess.run([os.environ["LSTMAE_TSBAD_PYTHON"], str(ORACLE_SCRIPT), "--case-file", str(case_file), "--out", str(out)],
                   check=True, timeout=600)
    for i, expected in enumerate(json.loads(out.read_text())):
        labels, score = cases[f"labels/{i}"], cases[f"score/{i}"]
        assert metrics.sliding_window(cases[f"values/{i}"]) == expected.pop("sliding_window"), f"case {i}"
        assert_agrees(ours(labels, score, int(cases[f"window/{i}"])), expected, f"live case {i}")


# ----------------------------------------------------------------- against slow loops
@st.composite
def labelled_scores(draw, max_size: int = 60):
    n = draw(st.integers(2, max_size))
    labels = draw(hnp.arrays(np.int8, n, elements=st.integers(0, 1)))
    flip = draw(st.integers(0, n - 1))
    if labels.sum() == 0:
        labels[flip] = 1
    if labels.sum() == n:
        labels[flip] = 0
    levels = draw(st.integers(1, 8))  # few levels: many ties
    score = draw(hnp.arrays(np.int64, n, elements=st.integers(0, levels))).astype(np.float64)
    return labels, score


@settings(max_examples=150, deadline=None)
@given(labelled_scores())
def test_auc_roc_is_the_pairwise_win_rate(case):
    labels, score = case
    assert metrics.auc_roc(labels, score) == pytest.approx(naive.auc_roc_pairs(labels, score), abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(labelled_scores())
def test_auc_pr_is_the_step_sum_over_thresholds(case):
    labels, score = case
    assert metrics.auc_pr(labels, score) == pytest.approx(naive.average_precision_loop(labels, score), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(labelled_scores(max_size=40), st.integers(0, 25), st.integers(2, 30))
def test_vus_matches_the_point_by_point_definition(case, window, thresholds):
    labels, score = case
    fast = metrics._vus(labels, score, window, thresholds)
    slow = naive.vus_loop(list(labels), list(score), window, thresholds)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_vus_public_functions_use_250_thresholds():
    labels = np.zeros(400, dtype=np.int8)
    labels[100:120] = 1
    score = np.random.default_rng(0).random(400) + 0.5 * labels
    roc, pr = naive.vus_loop(list(labels), list(score), 10, 250)
    assert metrics.vus_roc(labels, score, 10) == pytest.approx(roc, abs=1e-12)
    assert metrics.vus_pr(labels, score, 10) == pytest.approx(pr, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(labelled_scores(), st.data())
def test_range_f1_matches_the_per_range_loop(case, data):
    labels, _ = case
    pred = data.draw(hnp.arrays(np.int8, labels.size, elements=st.integers(0, 1)))
    alpha = data.draw(st.floats(0, 1))
    assert metrics.range_f1(labels, pred, alpha=alpha) == pytest.approx(naive.range_f1_loop(labels, pred, alpha), abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(labelled_scores(), st.data())
def test_ucr_top1_matches_the_loop(case, data):
    labels, score = case
    train_end = data.draw(st.integers(0, labels.size - 1))
    margin = data.draw(st.integers(0, 10))
    assert metrics.ucr_top1(labels, score, train_end, margin) == naive.ucr_top1_loop(labels, score, train_end, margin)


def test_ucr_top1_margin_is_end_exclusive():
    labels = np.zeros(1000, dtype=np.int8)
    labels[500:510] = 1  # UCR name ..._500_510: end 510 exclusive
    for peak, expected in [(400, 1), (399, 0), (609, 1), (610, 0), (505, 1)]:
        score = np.zeros(1000)
        score[peak] = 1.0
        assert metrics.ucr_top1(labels, score, train_end=100) == expected, peak
    score = np.zeros(1000)
    score[50] = 9.0  # the peak in the training part does not count
    score[505] = 1.0
    assert metrics.ucr_top1(labels, score, train_end=100) == 1


@pytest.mark.parametrize("seed", range(6))
def test_sliding_window_matches_a_loop_autocorrelation(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(500, 1500))
    period = float(rng.uniform(4, 120))
    x = np.sin(2 * np.pi * np.arange(n) / period) + 0.5 * rng.standard_normal(n)
    acf = naive.autocorrelation_loop(list(x), 400)[3:]
    peaks = [i for i in range(1, len(acf) - 1) if acf[i] > acf[i - 1] and acf[i] > acf[i + 1]]
    best = max(peaks, key=lambda i: acf[i]) if peaks else None
    expected = 125 if best is None or not 3 <= best <= 300 else best + 3
    assert metrics.sliding_window(x) == expected


def test_sliding_window_uses_column_zero_and_the_first_20000_points():
    rng = np.random.default_rng(3)
    head = np.sin(2 * np.pi * np.arange(20000) / 40) + 0.1 * rng.standard_normal(20000)
    tail = np.sin(2 * np.pi * np.arange(20000) / 90)
    values = np.column_stack([np.concatenate([head, tail]), rng.standard_normal(40000)])
    assert metrics.sliding_window(values) == metrics.sliding_window(head) == 40


def test_perfect_and_inverted_scores():
    labels = np.zeros(300, dtype=np.int8)
    labels[100:110] = 1
    assert metrics.auc_roc(labels, labels) == 1.0
    assert metrics.auc_pr(labels, labels) == 1.0
    assert metrics.auc_roc(labels, -labels.astype(float)) == 0.0
    assert metrics.range_f1(labels, labels) == (1.0, 1.0, 1.0)


def test_label_ranges():
    assert metrics.label_ranges([1, 1, 0, 1, 0, 0, 1]).tolist() == [[0, 1], [3, 3], [6, 6]]
    assert metrics.label_ranges([0, 0]).shape == (0, 2)


# ----------------------------------------------------------------- validation
GOOD_Y = np.array([0, 1, 0, 0])
GOOD_S = np.array([0.1, 0.9, 0.2, 0.3])


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: metrics.auc_roc(GOOD_Y, GOOD_S[:3]), DataError, "same length; got 3 scores and 4 labels"),
        (lambda: metrics.auc_pr([0, 2, 0, 1], GOOD_S), DataError, r"binary .* found 2 at index 1"),
        (lambda: metrics.vus_pr(GOOD_Y, [0.1, np.nan, 0.2, 0.3], 4), DataError, "finite; found nan at index 1"),
        (lambda: metrics.vus_roc(np.zeros(4), GOOD_S, 4), DataError, r"at least one anomalous .* \(all labels 0\)"),
        (lambda: metrics.auc_roc(np.ones(4), GOOD_S), DataError, r"no normal point \(all labels 1\)"),
        (lambda: metrics.vus_pr(GOOD_Y, GOOD_S, -1), ParameterError, r"window must be an integer >= 0 .*got -1"),
        (lambda: metrics.vus_pr(GOOD_Y, GOOD_S, 2.5), ParameterError, "got 2.5"),
        (lambda: metrics.auc_roc(GOOD_Y.reshape(2, 2), GOOD_S), DataError, r"1-D array .* shape \(2, 2\)"),
        (lambda: metrics.auc_roc(["a", "b"], [1, 2]), DataError, "dtype"),
        (lambda: metrics.auc_roc([], []), DataError, "empty"),
        (lambda: metrics.ucr_top1(GOOD_Y, GOOD_S, 4), ParameterError, r"train_end must be an integer in \[0, 4\)"),
        (lambda: metrics.ucr_top1(GOOD_Y, GOOD_S, 0, margin=-1), ParameterError, "margin"),
        (lambda: metrics.ucr_top1(np.zeros(4), GOOD_S, 0), DataError, "no|none"),
        (lambda: metrics.range_f1(GOOD_Y, [0, 1]), DataError, "2 predictions and 4 labels"),
        (lambda: metrics.range_f1(GOOD_Y, GOOD_Y, alpha=2), ParameterError, "alpha"),
        (lambda: metrics.sliding_window(np.zeros((2, 2, 2))), DataError, "shape"),
        (lambda: metrics.sliding_window([1.0, np.inf]), DataError, "not finite"),
        (lambda: metrics.evaluate(GOOD_Y, GOOD_S, values=np.zeros((3, 2))), DataError, "3 rows and 4 labels"),
    ],
)
def test_bad_input_raises_a_typed_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_metrics_accept_bool_labels_and_lists():
    assert metrics.auc_roc([False, True, False], [0, 1, 0]) == 1.0
    assert metrics.auc_pr([0, 1, 0], [0.0, 1.0, 0.5]) == 1.0


@pytest.mark.skipif(sys.platform == "win32", reason="timing only")
def test_vus_is_fast_on_a_long_series():
    import time

    n = 250_000
    labels = np.zeros(n, dtype=np.int8)
    labels[120_000:120_400] = 1
    score = np.random.default_rng(0).random(n) + labels
    began = time.perf_counter()
    metrics.vus_pr(labels, score, 300)
    assert time.perf_counter() - began < 20  # seconds, not minutes, even on a loaded CI machine


def test_sliding_window_agrees_with_find_length_rank_on_every_dev_series(dev_data):
    from lstmae.data.benchmarks import load_benchmark

    expected = json.loads((DATA / "tsbad_windows.json").read_text())  # bench/make_metric_oracle.py --windows
    checked = 0
    for fmt, folder in [("ucr", "ucr"), ("nab", "nab"), ("smap", "smap_msl")]:
        for series in load_benchmark(dev_data / folder, fmt):
            assert metrics.sliding_window(series.values) == expected[series.name], series.name
            checked += 1
    assert checked == len(expected)
