"""Shared harness of the model-signal scaling benchmarks (``bench.ocr``, ``bench.detection``).

"direct, 1 core": the library called in a loop in this process, pinned to one
CPU at a time (``os.sched_setaffinity``) with its thread pools at 1, so the
baseline really is one core; worker k's share of the images is looped on CPU k
(``one_core_loop``), since the CPUs of a shared machine can carry unequal load.
"signal, N workers": the signal's ``compute`` in N
processes, each pinned to its own CPU and loading the backend once (like an
actor with ``num_cpus: 1``, whose backend then uses 1 thread:
``tasks.backends.worker_threads``), each taking 1/N of the encoded images.
Engine loads and a warm-up image are outside the timings on both sides. The
two sides alternate for ``--repeats`` rounds, so a drifting load on a shared
machine hits both alike; per-round ratios and the total are printed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
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


def one_core_loop(items: list[Any], fn: Callable[[Any], float], parts: int) -> tuple[float, float]:
    """``fn`` over ``items`` one at a time, one core at a time: part k (``items[k::parts]``, the share of
    signal worker k) pinned to CPU k. On a shared machine whose CPUs carry unequal load the loop thus
    meets the same CPUs as the workers; it never uses two at once. (seconds, summed ``fn`` results)."""
    t0 = time.perf_counter()
    total = 0.0
    for k in range(parts):
        with one_core(k):
            total += sum(fn(x) for x in items[k::parts])
    return time.perf_counter() - t0, total


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


@contextmanager
def signal_pool(signal: str, params: dict[str, Any], data: list[bytes], workers: int, count_column: str):
    """``workers`` pinned processes with ``signal``'s backend loaded and warm; yields ``run(data) -> (s, count)``."""
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

        def run(batch: list[bytes]) -> tuple[float, float]:
            chunks = [batch[i::workers] for i in range(workers)]
            t0 = time.perf_counter()
            total = sum(pool.map(_score, chunks, [count_column] * workers))
            return time.perf_counter() - t0, total

        yield run


def compare(
    direct: Callable[[], tuple[float, float]], signal_run: Callable[[], tuple[float, float]], repeats: int
) -> list[tuple[float, float, float, float]]:
    """Alternate a direct pass and a signal pass ``repeats`` times (a shared machine's load drifts):
    per round (direct s, direct count, signal s, signal count)."""
    rounds = []
    for _ in range(repeats):
        d_s, d_n = direct()
        s_s, s_n = signal_run()
        rounds.append((d_s, d_n, s_s, s_n))
    return rounds


def print_rounds(title: str, labels: tuple[str, str], rounds: list[tuple[float, float, float, float]], n: int) -> None:
    """Per round and in total: seconds, images/s, boxes, and the signal's speed-up over the direct loop."""
    print(title + "\n")
    print(f"{'round':<7}{'method':<40}{'seconds':>9}{'images/s':>10}{'boxes':>8}{'×':>7}")
    tot = [sum(r[k] for r in rounds) for k in range(4)]
    for name, (d_s, d_n, s_s, s_n) in [*((str(i + 1), r) for i, r in enumerate(rounds)), ("all", tuple(tot))]:
        m = len(rounds) * n if name == "all" else n
        print(f"{name:<7}{labels[0]:<40}{d_s:>9.2f}{m / d_s:>10.2f}{d_n:>8.0f}{1.0:>7.2f}")
        print(f"{'':<7}{labels[1]:<40}{s_s:>9.2f}{m / s_s:>10.2f}{s_n:>8.0f}{d_s / s_s:>7.2f}")
    ratios = sorted(r[0] / r[2] for r in rounds)
    print(f"\nspeed-up per round: {', '.join(f'{x:.2f}' for x in ratios)} (median {ratios[len(ratios) // 2]:.2f})")
