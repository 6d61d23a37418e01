"""bench/panel.py's parts: peers against loops, the leave-one-dataset-out choice, lstmae's terms, the report."""

from __future__ import annotations


import numpy as np
import pytest
from paths import FILES

DATA = FILES / "panel"


@pytest.fixture(scope="module")
def panel_bench(bench_script):
    return bench_script("panel")


def test_knn_peer_is_the_nearest_distance_between_z_normalised_samples(panel_bench):
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(5, 7, 2)), rng.normal(size=(3, 7, 2))

    def z(sample):  # (T, F): each feature to mean 0, std 1 over time
        return ((sample - sample.mean(axis=0)) / (sample.std(axis=0) + 1e-8)).ravel()

    expected = [min(np.sqrt(((z(q) - z(r)) ** 2).sum()) for r in train) for q in test]
    np.testing.assert_allclose(panel_bench.peer_scores("knn", train, test, 0), expected)


@pytest.mark.parametrize("peer", ["iforest", "pca", "ocsvm"])
def test_other_peers_rank_a_far_sample_above_the_training_cloud(panel_bench, peer):
    rng = np.random.default_rng(1)
    train = rng.normal(size=(40, 6, 1))
    test = np.concatenate([rng.normal(size=(5, 6, 1)), np.full((1, 6, 1), 8.0)])
    scores = panel_bench.peer_scores(peer, train, test, 0)
    assert scores.shape == (6,) and scores[-1] > scores[:-1].max()


def test_leave_one_dataset_out_picks_on_the_others_only(panel_bench):
    grid = {
        "A": {"w1": 0.9, "w2": 0.5},
        "B": {"w1": 0.6, "w2": 0.8},
        "C": {"w1": 0.6, "w2": 0.9},
    }
    folds = {f["held_out"]: f for f in panel_bench.leave_one_dataset_out(grid)}
    # Held out A: B and C prefer w2 (0.85 vs 0.6); held out B: A and C give 0.75 vs 0.70 -> w1; held out C: 0.75 vs 0.65 -> w1.
    assert (folds["A"]["weights"], folds["A"]["auc_roc"]) == ("w2", 0.5)
    assert (folds["B"]["weights"], folds["B"]["auc_roc"]) == ("w1", 0.6)
    assert (folds["C"]["weights"], folds["C"]["auc_roc"]) == ("w1", 0.6)
    assert folds["A"]["train_auc_roc"] == pytest.approx(0.85)


def test_lstmae_terms_add_up_to_the_default_score(panel_bench):
    from lstmae.data.ts import read_ts
    from lstmae.scoring.combination import PANEL_WEIGHTS

    train, test = read_ts(DATA / "Tiny_TRAIN.ts"), read_ts(DATA / "Tiny_TEST.ts", length=6)
    terms, default, seconds = panel_bench.lstmae_terms(train.values, test.values, 0, {"epochs": 1, "units": 4})
    np.testing.assert_allclose(panel_bench.weighted(terms, tuple(PANEL_WEIGHTS.values())), default, rtol=1e-6)
    assert seconds > 0


def test_novelty_and_markdown_on_the_hand_written_panel(panel_bench, monkeypatch):
    monkeypatch.setattr(panel_bench, "WEIGHT_GRID", ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0)))
    result = panel_bench.novelty("Tiny", DATA, [0, 1], {"epochs": 1, "units": 4}, log=lambda *a, **k: None)
    assert set(result["methods"]) >= {"lstmae", "knn", "iforest", "pca", "ocsvm", "lstmae:input"}
    assert result["classes"] == 2 and set(result["grid"]) == {"0.0,0.0,1.0", "1.0,0.0,0.0"}
    seeds = result["seed_auc_roc"]
    assert np.mean(list(seeds.values())) == pytest.approx(result["methods"]["lstmae"][0])  # the mean of the seeds
    text = panel_bench.markdown({"Tiny": result}, None, {}, "test")
    assert "| Tiny |" in text and "**mean**" in text
    assert f"| Tiny | {seeds['0']:.3f} | {seeds['1']:.3f} | {np.std(list(seeds.values())):.3f} |" in text
