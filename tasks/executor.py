"""Run a step's units on Ray: plain tasks (``run_tasks``, ``run_units``) or an actor pool
(``run_on_actors``: ``UnitActor`` loads ``Unit.setup()`` once and reuses it across units).

One skip decision (``pending``: units finished for their current key are answered from
their markers, nothing is shipped for them), one bounded fan-out loop (``_fan_out``: a
bounded number in flight, progress, failures collected), one actor class. A failed
unit is one line naming the step, the unit (dataset/shard) and the innermost cause; the
full tracebacks go to ``_logs/<step>-<time>.log`` under the output root, which the
error names (``tasks/failed.py``). Only units, paths and small summaries travel. What fits on
which node and the pool sizes are ``tasks/capacity.py``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from magicvl.tasks.capacity import check_fits, pool_size
from magicvl.tasks.failed import (
    StepFailed,
    disk_full_error,
    failure,
    raise_failures,
    timed,
    traced,
    unit_of,
)
from magicvl.tasks.resources import StepResources
from magicvl.tasks.unit import Unit

log = logging.getLogger("magicvl")


def _run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run logger inside a flow or task run (logs reach the API), else a plain logger."""
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:
        return log


def _progress_reporter(name: str, total: int, cached_before: int = 0) -> Callable[[int, int], None]:
    """Prefect progress artifact (keyed) + log lines with cached units, rate and ETA; plain logging outside Prefect."""
    artifact_id = None
    try:
        from prefect.artifacts import create_progress_artifact, update_progress_artifact
        from prefect.context import get_run_context

        from magicvl.tasks.artifacts import artifact_key

        get_run_context()
        artifact_id = create_progress_artifact(
            progress=0.0, key=artifact_key("progress", name), description=f"{name}: 0/{total}"
        )
    except Exception:
        update_progress_artifact = None
    state = {"last_log": 0.0, "t0": time.monotonic()}
    logger = _run_logger()

    def report(done: int, cached: int = 0) -> None:
        pct = 100.0 * done / max(total, 1)
        now = time.monotonic()
        if done == total or now - state["last_log"] > 5:
            state["last_log"] = now
            rate = done / max(now - state["t0"], 1e-9)
            eta = f", ETA {(total - done) / rate:.0f} s" if done < total and rate > 0 else ""
            line = f"{name}: {done}/{total} ({pct:.0f}%, {cached + cached_before} cached, {rate:.1f}/s{eta})"
            logger.info("%s", line)
            if artifact_id is not None:
                try:
                    update_progress_artifact(artifact_id, progress=pct, description=line)
                except Exception:
                    pass

    return report


def _fan_out(
    name: str,
    todo: Sequence[int],
    submit: Callable[[int], tuple[Any, Any]],
    has_room: Callable[[], bool],
    release: Callable[[Any], None],
    on_result: Callable[[int, Any], None],
    label: Callable[[int], str],
    report: Callable[[int, int], None],
    side: dict[Any, Callable[[Any], None]] | None = None,
) -> tuple[list[tuple[str, str]], OSError | None]:
    """The one bounded fan-out loop: submit ``todo`` while ``has_room()``, hand each result to ``on_result``
    as it arrives; a failed item becomes (one line, its traceback). Out of disk space: submit nothing more,
    let the running ones finish and clean up, return the error. Returns (failures, disk-full error).
    ``side``: other refs to wait on meanwhile (actors still loading), each handed to its callback when ready."""
    import ray

    failures: list[tuple[str, str]] = []
    pending: dict[Any, tuple[int, Any]] = {}  # ref → (item index, slot)
    next_item = done = cached = 0
    disk_full: OSError | None = None
    side = side if side is not None else {}
    while (next_item < len(todo) and disk_full is None) or pending:
        while next_item < len(todo) and disk_full is None and has_room():
            ref, slot = submit(todo[next_item])
            pending[ref] = (todo[next_item], slot)
            next_item += 1
        ready, _ = ray.wait(list(pending) + list(side), num_returns=1)
        for ref in ready:
            if ref in side:
                side.pop(ref)(ref)
                continue
            i, slot = pending.pop(ref)
            release(slot)
            try:
                res = ray.get(ref)
                cached += bool(isinstance(res, dict) and res.get("cached"))
                on_result(i, res)
            except Exception as e:  # a unit failed as a whole: finish the rest, then say which
                disk_full = disk_full or disk_full_error(e)
                failures.append(failure(name, label(i), e))
            done += 1
            report(done, cached)
    return failures, disk_full


def _label(units: Sequence[Unit | None], i: int) -> str:
    u = units[i]
    return u.marker_name if u is not None else f"[{i}]"


def run_tasks(
    fn: Callable[..., Any],
    calls: Sequence[tuple],
    name: str,
    resources: StepResources | None = None,
    max_in_flight: int | None = None,
    retries: int = 2,
    reduce: Callable[[Any], None] | None = None,
    cached_before: int = 0,
    clock: list[float] | None = None,
) -> list[Any]:
    """Run ``fn(*args)`` for every tuple in ``calls`` as Ray tasks; results in call order.

    Only arguments and small summaries travel; tasks read and write shards
    themselves. At most ``max_in_flight`` tasks are pending at once so the
    driver holds a bounded number of references whatever the dataset size.
    With ``reduce``, each result is handed to it as it arrives and not kept
    (statistics merged on the fly: driver memory stays flat); [] is returned.
    ``clock``: each task's seconds on its worker are appended to it (a step's map passes that are
    not units, e.g. combine's statistics, count in the step's worker time: ``tasks.costs``).
    """
    import ray

    if not calls:
        return []
    cpus = int(ray.cluster_resources().get("CPU", 1))
    window = max_in_flight or max(2 * cpus, 2)
    check_fits(resources or StepResources(), name)
    opts = (resources or StepResources()).ray_options()
    remote = ray.remote(traced if clock is None else timed).options(**opts, max_retries=retries, name=name)
    results: list[Any] = [None] * len(calls)
    in_flight = [0]

    def submit(i: int) -> tuple[Any, Any]:
        in_flight[0] += 1
        return remote.remote(fn, *calls[i]), None

    def release(_slot: Any) -> None:
        in_flight[0] -= 1

    def on_result(i: int, res: Any) -> None:
        if clock is not None:
            seconds, res = res
            clock.append(seconds)
        if reduce is None:
            results[i] = res
        else:
            reduce(res)

    units = [unit_of(c) for c in calls]
    failures, disk_full = _fan_out(name, range(len(calls)), submit, lambda: in_flight[0] < window, release,
                                   on_result, lambda i: _label(units, i),
                                   _progress_reporter(name, len(calls), cached_before))  # fmt: skip
    if disk_full is not None:
        raise disk_full  # one line naming the device and the path
    raise_failures(name, len(calls), failures, units)
    return results if reduce is None else []


def pending(units: Sequence[Unit], force: bool) -> tuple[list[dict[str, Any] | None], list[int]]:
    """The one skip decision of a fan-out: (summaries with those of finished units filled in from their
    markers, indices of the units that must run). ``force`` runs every unit."""
    results: list[dict[str, Any] | None] = [None] * len(units)
    if force:
        return results, list(range(len(units)))
    for i, u in enumerate(units):
        results[i] = u.finished()
    return results, [i for i, r in enumerate(results) if r is None]


def _run_unit(unit: Unit, force: bool) -> dict[str, Any]:
    return unit.run(force)


def run_units(
    units: Sequence[Unit],
    name: str,
    resources: StepResources | None = None,
    max_in_flight: int | None = None,
    retries: int = 2,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Run ``tasks.unit.Unit``s as plain Ray tasks (each loads what it needs itself); summaries in order.
    Finished units (``pending``) are answered from their markers without a task."""
    results, todo = pending(units, force)
    calls = [(units[i], force) for i in todo]
    done = run_tasks(_run_unit, calls, name, resources, max_in_flight, retries, cached_before=len(units) - len(todo))
    for i, r in zip(todo, done):
        results[i] = r
    return results


class UnitActor:
    """The one actor class: ``Unit.setup()`` of the pool's first unit (its model or backend), loaded once
    here and handed to every unit the actor runs (NeMo Curator's ``setup()`` per worker)."""

    def __init__(self, prototype: Unit) -> None:
        self.backend = prototype.setup()

    def ready(self) -> bool:
        """Answered once the backend is loaded (an actor whose load failed raises here instead)."""
        return True

    def run(self, unit: Unit, force: bool) -> dict[str, Any]:
        return traced(unit.run, force, self.backend)


def _await_loads(actors: list[Any], name: str, prototype: Unit) -> tuple[list[int], dict[Any, int]]:
    """Wait for the first actor's backend: (actors ready, still-loading ref → actor index).

    A first load that fails is one clear error (naming the model) before any unit runs. The other
    actors join as they load: one still waiting for GPUs another step holds delays nothing (and two
    pools that each got part of their GPUs cannot wait on each other)."""
    import ray

    loading = {a.ready.remote(): k for k, a in enumerate(actors)}
    try:
        (ref,), _ = ray.wait(list(loading), num_returns=1)
        ray.get(ref)
        return [loading.pop(ref)], loading
    except Exception as e:
        for actor in actors:
            ray.kill(actor)
        cause = str(getattr(e, "cause", None) or e).strip().splitlines()
        model = prototype.model_ref()
        which = f" (model {model!r})" if isinstance(model, str) else ""
        raise StepFailed(f"{name}: the backend failed to load{which}, no unit ran: "
                         f"{cause[-1][:300] if cause else type(e).__name__}") from None  # fmt: skip


def _joined(ref: Any, actor: int, usable: list[int], name: str) -> None:
    """Add an actor whose load has finished to the usable ones (a failed load is logged and left out)."""
    import ray

    try:
        ray.get(ref)
        usable.append(actor)
    except Exception as e:
        _run_logger().warning("%s: actor %d failed to load, the others go on: %s", name, actor, str(e)[:300])


def run_on_actors(
    units: Sequence[Unit],
    name: str,
    resources: StepResources | None = None,
    retries: int = 2,
    force: bool = False,
    per_actor: int = 2,
) -> list[dict[str, Any]]:
    """Run units on a pool of ``UnitActor``s (each loads ``units[0].setup()`` once); summaries in order.

    The pool has as many actors as the cluster's nodes hold (each reserving
    the step's CPUs/GPUs/memory; one actor's GPUs are always on one node),
    capped by ``resources.concurrency``, spread over the nodes; a unit starts
    on each actor as soon as it has loaded. At most ``per_actor`` units are
    queued on an actor at once, so shards in flight stay bounded whatever the
    dataset size, except at the tail: once no more units wait than there are
    usable actors, a unit goes only to an idle actor (a unit queued behind a
    long one would wait while another actor idles). Finished units
    (``pending``) start no actor and load no model. A unit that fails is
    reported after the others finish (``StepFailed``).
    """
    import ray

    results, todo = pending(units, force)
    if not todo:
        return results
    resources = resources or StepResources()
    n = pool_size(resources, len(todo), name)
    cls = ray.remote(UnitActor).options(**resources.ray_options(), max_restarts=retries, max_task_retries=retries,
                                        scheduling_strategy="SPREAD")  # fmt: skip  # over the nodes, not packed
    first = units[todo[0]]
    actors = [cls.remote(first) for _ in range(n)]
    usable, loading = _await_loads(actors, name, first)
    n_cached = len(units) - len(todo)
    if n_cached:
        _run_logger().info("%s: %d of %d units cached", name, n_cached, len(units))
    load = [0] * n
    waiting = [len(todo)]  # units not yet submitted

    def submit(i: int) -> tuple[Any, Any]:
        a = min(usable, key=lambda k: load[k])
        load[a] += 1
        waiting[0] -= 1
        return actors[a].run.remote(units[i], force), a

    def has_room() -> bool:
        least = min(load[a] for a in usable)
        return least == 0 or (least < per_actor and waiting[0] > len(usable))

    def release(a: Any) -> None:
        load[a] -= 1

    def on_result(i: int, res: Any) -> None:
        results[i] = res

    try:
        report = _progress_reporter(name, len(todo), n_cached)
        side = {ref: (lambda r, k=k: _joined(r, k, usable, name)) for ref, k in loading.items()}
        failures, disk_full = _fan_out(name, todo, submit, has_room, release, on_result,
                                       lambda i: _label(units, i), report, side)  # fmt: skip
    finally:
        for actor in actors:
            ray.kill(actor)
    if disk_full is not None:
        raise disk_full from None  # one line naming the device and the path
    raise_failures(name, len(todo), failures, list(units))
    return results
