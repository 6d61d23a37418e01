"""Inference chunks on every CPU core: each worker thread runs whole chunks, one core each.

The recurrence's per-step operations on a few hundred windows are too small for
torch's intra-op threads: with two threads, a CPU scores barely faster than with
one. Chunks are independent, so `ordered_map` runs several at once, each in its
own thread with torch single-threaded (torch releases the GIL inside every
operation), and hands the results back in input order. Measured in
bench/RESULTS.md. Results repeat exactly for a given thread count; across thread
counts they agree to float32 rounding (tests/test_parallel.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

Result = TypeVar("Result")

#: Chunks submitted ahead of the one being consumed, per worker: bounds memory.
AHEAD_PER_WORKER = 2


def cpu_workers(device: torch.device) -> int:
    """Worker threads for inference on ``device``: torch's intra-op thread count on a CPU, else 1."""
    return torch.get_num_threads() if device.type == "cpu" else 1


def ordered_map(function: Callable[..., Result], items: Iterable[tuple], workers: int) -> Iterator[Result]:
    """``function(*item)`` for every item, in order, on ``workers`` threads.

    At most ``AHEAD_PER_WORKER * workers`` results wait at any time, so memory
    stays bounded however many items there are. The workers run torch
    single-threaded and in the caller's inference mode, without gradients; the
    caller's thread count is restored when the iteration ends.
    """
    if workers <= 1:
        for item in items:
            yield function(*item)
        return
    inference = torch.is_inference_mode_enabled()

    def call(item: tuple) -> Result:
        # This order: inference_mode(False) would turn gradients back on.
        with torch.inference_mode(inference), torch.no_grad():
            return function(*item)

    threads = torch.get_num_threads()
    # torch's thread count is read by each new thread and MKL's is process-wide:
    # set it before the pool starts so the workers and their products use one thread.
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="lstmae-inference") as pool:
            pending: deque = deque()
            for item in items:
                pending.append(pool.submit(call, item))
                if len(pending) >= AHEAD_PER_WORKER * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        torch.set_num_threads(threads)
