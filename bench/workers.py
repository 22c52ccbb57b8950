"""Shared harness of the model-signal scaling benchmarks (``bench.ocr``, ``bench.detection``).

"direct, 1 core": the library called in a loop in this process, pinned to one
CPU (``os.sched_setaffinity``) with its thread pools at 1, so the baseline
really is one core. "signal, N workers": the signal's ``compute`` in N
processes, each pinned to its own CPU and loading the backend once (like an
actor with ``num_cpus: 1``, whose backend then uses 1 thread:
``tasks.backends.worker_threads``), each taking 1/N of the encoded images.
Engine loads and a warm-up image are outside the timings on both sides.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

_STATE: dict[str, Any] = {}


def one_thread_everywhere() -> None:
    """Thread pools of this process at 1 (torch, OpenCV): what a ``num_cpus: 1`` worker gets."""
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


@contextmanager
def one_core(cpu: int = 0) -> Iterator[None]:
    """Run the body on CPU ``cpu`` only (affinity restored after), thread pools at 1."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {sorted(before)[cpu % len(before)]})
    one_thread_everywhere()
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _init(signal: str, params: dict[str, Any], cpus: list[int], counter: Any) -> None:
    from magicvl.scoring.signals import get_signal
    from magicvl.tasks.backends import load_backend

    with counter.get_lock():
        slot = counter.value
        counter.value += 1
    os.sched_setaffinity(0, {cpus[slot % len(cpus)]})
    one_thread_everywhere()
    s = get_signal(signal)
    p = s.params(**params)
    _STATE.update(signal=s, params=p, backend=load_backend(s, p))


def _score(chunk: list[bytes], count_column: str) -> float:
    from magicvl.scoring.batch import SampleBatch

    s, p, b = _STATE["signal"], _STATE["params"], _STATE["backend"]
    out = s.compute(SampleBatch([str(i) for i in range(len(chunk))], [[]] * len(chunk), chunk), p, b)
    return float(np.nansum(out[count_column]))


def _warm(chunk: list[bytes], count_column: str) -> int:
    """Score one image, then hold the worker briefly so every worker gets a warm-up; its pid."""
    _score(chunk, count_column)
    time.sleep(0.5)
    return os.getpid()


def signal_in_workers(
    signal: str, params: dict[str, Any], data: list[bytes], workers: int, count_column: str
) -> tuple[float, float]:
    """Seconds for ``workers`` pinned processes to run ``signal`` over ``data``; the summed ``count_column``."""
    import multiprocessing as mp

    cpus = sorted(os.sched_getaffinity(0))
    ctx = mp.get_context("spawn")
    counter = ctx.Value("i", 0)
    with ProcessPoolExecutor(workers, ctx, initializer=_init, initargs=(signal, params, cpus, counter)) as pool:
        warm: set[int] = set()
        for _ in range(20):  # until every worker has loaded its backend and scored one image
            warm |= set(pool.map(_warm, [data[:1]] * workers, [count_column] * workers))
            if len(warm) >= workers:
                break
        chunks = [data[i::workers] for i in range(workers)]
        t0 = time.perf_counter()
        total = sum(pool.map(_score, chunks, [count_column] * workers))
        return time.perf_counter() - t0, total


def print_table(title: str, rows: list[tuple[str, float, float]], n: int, unit: str) -> None:
    """rows: (method, seconds, count); the first row is the baseline (×1)."""
    print(title + "\n")
    print(f"{'method':<40}{'seconds':>9}{'images/s':>10}{unit:>8}{'×':>7}")
    base = rows[0][1]
    for name, secs, count in rows:
        print(f"{name:<40}{secs:>9.2f}{n / secs:>10.2f}{count:>8.0f}{base / secs:>7.2f}")
