"""Fan plain task functions out over Ray, a bounded number in flight, with progress."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from magicvl.storage.diskfull import DiskFullError

log = logging.getLogger("magicvl")


class StepFailed(RuntimeError):
    """Some units of a step raised (not bad records: those are quarantined). Rerun resumes."""


def _run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run logger inside a flow or task run (logs reach the API), else a plain logger."""
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:
        return log


def _progress_reporter(name: str, total: int) -> Callable[[int], None]:
    """Prefect progress artifact + log lines; plain logging outside a Prefect run."""
    artifact_id = None
    try:
        from prefect.artifacts import create_progress_artifact, update_progress_artifact
        from prefect.context import get_run_context

        get_run_context()
        artifact_id = create_progress_artifact(progress=0.0, description=f"{name}: 0/{total}")
    except Exception:
        update_progress_artifact = None
    state = {"last_log": 0.0}
    logger = _run_logger()

    def report(done: int) -> None:
        pct = 100.0 * done / max(total, 1)
        now = time.monotonic()
        if done == total or now - state["last_log"] > 5:
            state["last_log"] = now
            logger.info("%s: %d/%d (%.0f%%)", name, done, total, pct)
            if artifact_id is not None:
                try:
                    update_progress_artifact(artifact_id, progress=pct, description=f"{name}: {done}/{total}")
                except Exception:
                    pass

    return report


def fan_out(
    fn: Callable[..., Any],
    calls: Sequence[tuple],
    name: str,
    max_in_flight: int | None = None,
    retries: int = 2,
    reduce: Callable[[Any], None] | None = None,
) -> list[Any]:
    """Run ``fn(*args)`` for every tuple in ``calls`` as Ray tasks; results in call order.

    Only arguments and small summaries travel; tasks read and write shards
    themselves. At most ``max_in_flight`` tasks are pending at once so the
    driver holds a bounded number of references whatever the dataset size.
    With ``reduce``, each result is handed to it as it arrives and not kept
    (statistics merged on the fly: driver memory stays flat); [] is returned.
    """
    import ray

    if not calls:
        return []
    cpus = int(ray.cluster_resources().get("CPU", 1))
    window = max_in_flight or max(2 * cpus, 2)
    remote = ray.remote(fn).options(num_cpus=1, max_retries=retries, name=name)
    report = _progress_reporter(name, len(calls))
    results: list[Any] = [None] * len(calls)
    failures: list[str] = []
    pending: dict[Any, int] = {}
    next_call = 0
    done = 0
    disk_full: OSError | None = None  # out of space: submit nothing more, let running tasks clean up
    while (next_call < len(calls) and disk_full is None) or pending:
        while next_call < len(calls) and len(pending) < window and disk_full is None:
            pending[remote.remote(*calls[next_call])] = next_call
            next_call += 1
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            i = pending.pop(ref)
            try:
                if reduce is None:
                    results[i] = ray.get(ref)
                else:
                    reduce(ray.get(ref))
            except Exception as e:  # a unit failed as a whole: finish the rest, then say which
                if isinstance(cause := getattr(e, "cause", e), DiskFullError):
                    disk_full = disk_full or cause
                failures.append(f"{name}[{i}]: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
            done += 1
            report(done)
    if disk_full is not None:
        raise disk_full  # one line naming the device and the path
    if failures:
        raise StepFailed(f"{len(failures)} of {len(calls)} {name} tasks failed:\n" + "\n".join(failures[:20]))
    return results if reduce is None else []
