"""Tests for lstmae.backends.parallel: inference chunks on several threads, results in order and equal to one thread's."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

import lstmae.scoring.inference as inference
from lstmae import LSTMAutoencoder
from lstmae.backends.parallel import AHEAD_PER_WORKER, cpu_workers, ordered_map


@pytest.fixture
def threads():
    """Set torch's thread count for one test; restored after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_results_come_back_in_input_order_whatever_finishes_first():
    def slow_first(k: int) -> int:
        time.sleep(0.02 if k % 3 == 0 else 0.0)  # early items finish last
        return k * k

    assert list(ordered_map(slow_first, [(k,) for k in range(20)], workers=3)) == [k * k for k in range(20)]


def test_one_worker_runs_in_the_calling_thread():
    seen = list(ordered_map(lambda: threading.get_ident(), [()] * 3, workers=1))
    assert seen == [threading.get_ident()] * 3


def test_items_are_read_lazily_so_memory_stays_bounded():
    read, consumed = [], 0

    def items():
        for k in range(40):
            read.append(k)
            yield (k,)

    workers = 2
    for consumed, _ in enumerate(ordered_map(lambda k: k, items(), workers), start=1):
        # Never more than the bound ahead of what the consumer has taken.
        assert len(read) - consumed <= AHEAD_PER_WORKER * workers
    assert consumed == 40


def test_workers_run_single_threaded_in_the_callers_inference_mode_and_the_thread_count_is_restored(threads):
    threads(2)

    def probe() -> tuple[int, bool, bool]:
        return torch.get_num_threads(), torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    with torch.inference_mode():
        inside = list(ordered_map(probe, [()] * 4, workers=2))
    assert inside == [(1, True, False)] * 4
    outside = list(ordered_map(probe, [()] * 4, workers=2))
    assert outside == [(1, False, False)] * 4  # never records gradients
    assert torch.get_num_threads() == 2


def test_an_error_in_a_worker_reaches_the_caller_and_the_thread_count_is_restored(threads):
    threads(2)

    def fail(k: int) -> int:
        if k == 5:
            raise ValueError("chunk 5 is bad")
        return k

    with pytest.raises(ValueError, match="chunk 5 is bad"):
        list(ordered_map(fail, [(k,) for k in range(10)], workers=2))
    assert torch.get_num_threads() == 2


def test_cpu_workers_follows_torch_threads_on_the_cpu_only(threads):
    threads(3)
    assert cpu_workers(torch.device("cpu")) == 3
    assert cpu_workers(torch.device("meta")) == 1


def test_scores_embeddings_and_reconstructions_agree_across_thread_counts(threads, monkeypatch, make_sine):
    """The default scoring (windows, latent part, normalisation) on 1 and 3 threads.

    Each thread count repeats its own results bit for bit; across counts they agree
    to float32 rounding (the products are rounded differently in the worker
    threads: measured differences are about 1e-7 of the values).
    """
    series = make_sine(900, 30)
    model = LSTMAutoencoder(timesteps=30, units=6, epochs=1, random_state=0, verbose=0).fit(series[:500])
    # Small chunks, so that the series is many chunks and the workers all get some.
    monkeypatch.setattr(inference, "CHUNK_VALUES", 30 * 4 * 6 * 7)
    results = {}
    for count in (1, 3, 1, 3):
        threads(count)
        run = (
            model.anomaly_score(series),
            model.anomaly_score(series, per_feature=True),
            model.encode(series),
            model.reconstruct(series),
        )
        assert torch.get_num_threads() == count
        if count in results:
            assert all(np.array_equal(a, b) for a, b in zip(run, results[count]))
        results[count] = run
    for one, three in zip(results[1], results[3]):
        np.testing.assert_allclose(three, one, rtol=1e-5, atol=1e-6)
    assert len(np.unique(results[1][0])) > 100  # real, varying scores were compared
