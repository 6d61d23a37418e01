"""bench/panel_large.py's parts: the period estimate, cycle cutting against a loop, the UCR selection rule."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def large(bench_script):
    return bench_script("panel_large")


@pytest.mark.parametrize("period", [7, 24, 99])
def test_period_of_a_noisy_periodic_series_is_found(large, period):
    rng = np.random.default_rng(period)
    t = np.arange(50 * period)
    x = np.sin(2 * np.pi * t / period) + 0.5 * np.sin(4 * np.pi * t / period) + 0.2 * rng.normal(size=t.size)
    found, strength = large.estimate_period(x, 10 * period)
    assert found == period and strength > 0.5


def test_noise_has_no_clear_period_above_its_first_lags(large):
    found, strength = large.estimate_period(np.random.default_rng(0).normal(size=5000), 500)
    assert found is None or strength < 0.1


def test_cycles_match_a_loop_and_exactly_the_cycles_touching_the_label_are_anomalous(large):
    n, period, train_end = 1003, 10, 404
    values = np.arange(n, dtype=float)
    labels = np.zeros(n, dtype=np.int8)
    labels[613:621] = 1  # touches the test cycles starting at 604 and 614
    train, test, truth = large.cycle_panel(values, labels, train_end, period)

    expected_train = [values[s:s + period] for s in range(0, train_end - period + 1, period)]
    expected_test, expected_truth = [], []
    start = train_end
    while start + period <= n:
        expected_test.append(values[start:start + period])
        expected_truth.append(int(labels[start:start + period].any()))
        start += period
    assert train.shape == (40, period, 1) and test.shape == (59, period, 1)
    np.testing.assert_array_equal(train[..., 0], expected_train)
    np.testing.assert_array_equal(test[..., 0], expected_test)
    np.testing.assert_array_equal(truth, expected_truth)
    assert np.flatnonzero(truth).tolist() == [20, 21]


@pytest.mark.parametrize("name, expected", [
    ("DISTORTED2sddb40_35000_56600_56900", "sddb"),
    ("1sddb40_35000_52000_52620", "sddb"),
    ("ECG4_5000_16800_17100", "ECG"),
    ("mit14046longtermecg_81214_143000_143300", "mit14046longtermecg"),
    ("tilt12744mtable_100000_203355_203400", "tilt12744mtable"),
])
def test_recording_groups_the_variants_of_one_series(large, name, expected):
    assert large.recording(name) == expected


def test_selection_takes_the_rule_first_then_the_most_cycles_one_per_recording(large):
    def row(name, cycles):
        return {"name": name, "period": 10, "cycles": cycles}

    rows = [row("DISTORTEDECG2_1_2_3", 900), row("ECG2_1_2_3", 900), row("ECG3_1_2_3", 950), row("gait1_1_2_3", 500),
            row("tiltAPB1_1_2_3", 400), row("park3m_1_2_3", 300)]
    chosen, met = large.select_cycle_series(rows)
    assert not met and [r["name"] for r in chosen] == ["ECG3_1_2_3", "gait1_1_2_3", "tiltAPB1_1_2_3"]
    chosen, met = large.select_cycle_series([*rows, row("park3m_9_9_9", 1200)])
    assert met and [r["name"] for r in chosen] == ["park3m_9_9_9"]
    ties = large.select_cycle_series([row("DISTORTEDgait1_1_2_3", 500), row("gait1_1_2_3", 500)])[0]
    assert [r["name"] for r in ties] == ["gait1_1_2_3"]


def test_plaid_tasks_hold_out_normals_and_test_on_every_sample_of_the_class(large, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "PLAID"
    folder.mkdir()
    for split, count in (("TRAIN", 30), ("TEST", 30)):
        lines = ["@problemName PLAID", "@univariate true", "@equalLength false", "@classLabel true a b c", "@data"]
        for i in range(count):
            lines.append(",".join(f"{v:.3f}" for v in rng.normal(size=5 + i % 4)) + f":{'abc'[i % 3]}")
        (folder / f"PLAID_{split}.ts").write_text("\n".join(lines) + "\n")
    tasks = large.plaid_tasks(tmp_path, length=8, held_out=6)
    assert [t.label for t in tasks] == ["a", "b", "c"]
    for task in tasks:
        assert task.normal.shape == (40 - 6, 8, 1) and task.test.shape == (6 + 20, 8, 1)
        assert task.truth.tolist() == [0] * 6 + [1] * 20
        # no training sample is among the test samples
        assert not (task.normal[:, None, :, 0] == task.test[None, :, :, 0]).all(axis=2).any()
