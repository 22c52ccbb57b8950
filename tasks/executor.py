"""Run a step's units on Ray: plain tasks (``run_tasks``, ``run_units``) or an actor pool
(``run_on_actors``: one backend load per actor, reused across units), a bounded
number in flight, with progress. Only units, paths and small summaries travel."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from magicvl.storage.diskfull import DiskFullError
from magicvl.tasks.resources import StepResources

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


def run_tasks(
    fn: Callable[..., Any],
    calls: Sequence[tuple],
    name: str,
    resources: StepResources | None = None,
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
    check_fits(resources or StepResources(), name)
    opts = (resources or StepResources()).ray_options()
    remote = ray.remote(fn).options(**opts, max_retries=retries, name=name)
    report = _progress_reporter(name, len(calls))
    results: list[Any] = [None] * len(calls)
    failures: list[str] = []
    pending: dict[Any, int] = {}
    next_call = 0
    done = cached = 0
    disk_full: OSError | None = None  # out of space: submit nothing more, let running tasks clean up
    while (next_call < len(calls) and disk_full is None) or pending:
        while next_call < len(calls) and len(pending) < window and disk_full is None:
            pending[remote.remote(*calls[next_call])] = next_call
            next_call += 1
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            i = pending.pop(ref)
            try:
                res = ray.get(ref)
                cached += bool(isinstance(res, dict) and res.get("cached"))
                if reduce is None:
                    results[i] = res
                else:
                    reduce(res)
            except Exception as e:  # a unit failed as a whole: finish the rest, then say which
                disk_full = disk_full or _disk_full(e)
                failures.append(f"{name}[{i}]: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
            done += 1
            report(done, cached)
    if disk_full is not None:
        raise disk_full  # one line naming the device and the path
    if failures:
        raise StepFailed(f"{len(failures)} of {len(calls)} {name} tasks failed:\n" + "\n".join(failures[:20]))
    return results if reduce is None else []


def _disk_full(e: BaseException) -> DiskFullError | None:
    """The DiskFullError behind a failed Ray task (its ``cause``), if that is why it failed."""
    cause = getattr(e, "cause", e)
    return cause if isinstance(cause, DiskFullError) else None


def _run_unit(unit: Any, force: bool) -> dict[str, Any]:
    return unit.run(force)


def run_units(
    units: Sequence[Any],
    name: str,
    resources: StepResources | None = None,
    max_in_flight: int | None = None,
    retries: int = 2,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Run ``tasks.unit.Unit``s as plain Ray tasks (each loads what it needs itself); summaries in order."""
    return run_tasks(_run_unit, [(u, force) for u in units], name, resources, max_in_flight, retries)


class UnitActor:
    """One loaded backend (``tasks.backends.load_backend``, called once here), reused for every unit."""

    def __init__(self, signal: Any, params: Any) -> None:
        from magicvl.tasks.backends import load_backend

        self.backend = load_backend(signal, params)

    def ready(self) -> bool:
        """Answered once the backend is loaded (an actor whose load failed raises here instead)."""
        return True

    def run(self, unit: Any, force: bool) -> dict[str, Any]:
        return unit.run(force=force, backend=self.backend)


def _await_loads(actors: list[Any], name: str, params: Any) -> tuple[list[int], dict[Any, int]]:
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
        model = getattr(params, "model", None) or getattr(params, "tokenizer", None)
        cause = str(getattr(e, "cause", None) or e).strip().splitlines()
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


def node_capacity(resources: StepResources, nodes: list[dict]) -> list[int]:
    """Per alive node (``ray.nodes()`` entries), how many tasks/actors of ``resources`` it holds at once."""
    want = {"CPU": resources.num_cpus, "GPU": resources.num_gpus, "memory": resources.memory or 0}
    out = []
    for node in nodes:
        if not node.get("Alive", True):
            continue
        have = node.get("Resources", {})
        out.append(min(int(float(have.get(k, 0)) // v) for k, v in want.items() if v) if any(want.values()) else 1)
    return out


def check_fits(resources: StepResources, name: str) -> int:
    """Actors of ``resources`` the cluster holds at once; StepFailed (one line, nothing started) when none fits."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive", True)]
    fits = node_capacity(resources, nodes)
    if sum(fits) > 0:
        return sum(fits)
    per_node = [{k: n["Resources"].get(k, 0) for k in ("CPU", "GPU")} for n in nodes]
    gpus = [int(p["GPU"]) if float(p["GPU"]).is_integer() else p["GPU"] for p in per_node]
    what = (f"{resources.num_gpus:g} GPUs (resources num_gpus) and {resources.num_cpus:g} CPUs"
            + (f" and {resources.memory} bytes" if resources.memory else ""))  # fmt: skip
    raise StepFailed(f"{name}: each task/actor asks for {what}, but no node of the Ray cluster has that much "
                     f"(GPUs per node: {gpus}); no unit ran")  # fmt: skip


def _pool_size(resources: StepResources, n_units: int, name: str = "step") -> int:
    """As many actors as the cluster's nodes hold (⌊GPUs / num_gpus⌋ per node, likewise CPUs), capped by
    ``concurrency`` and the number of units; StepFailed when not even one fits."""
    fit = check_fits(resources, name)
    if resources.concurrency:
        fit = min(fit, resources.concurrency)
    return max(1, min(fit, n_units))


def run_on_actors(
    units: Sequence[Any],
    name: str,
    signal: Any,
    params: Any,
    resources: StepResources | None = None,
    retries: int = 2,
    force: bool = False,
    per_actor: int = 2,
    actor: type = UnitActor,
) -> list[dict[str, Any]]:
    """Run units on a pool of ``actor``s (default ``UnitActor``) built for ``(signal, params)``; summaries in order.

    The pool has as many actors as the cluster's nodes hold (each reserving
    the step's CPUs/GPUs/memory; one actor's GPUs are always on one node),
    capped by ``resources.concurrency``, spread over the nodes; at most ``per_actor`` units are queued on an actor at
    once, so shards in flight stay bounded whatever the dataset size. A unit
    that fails is reported after the others finish (``StepFailed``).
    """
    import ray

    results: list[Any] = [None] * len(units)
    todo = list(range(len(units)))
    if not force:  # finished units are answered from their markers: no actor (no model load) for them
        for i in range(len(units)):
            results[i] = units[i].finished()
        todo = [i for i in todo if results[i] is None]
    if not todo:
        return results
    resources = resources or StepResources()
    n = _pool_size(resources, len(todo), name)
    cls = ray.remote(actor).options(**resources.ray_options(), max_restarts=retries, max_task_retries=retries,
                                    scheduling_strategy="SPREAD")  # fmt: skip  # over the nodes, not packed on one
    actors = [cls.remote(signal, params) for _ in range(n)]
    usable, loading = _await_loads(actors, name, params)
    n_cached = len(units) - len(todo)
    if n_cached:
        _run_logger().info("%s: %d of %d units cached", name, n_cached, len(units))
    report = _progress_reporter(name, len(todo), n_cached)
    failures: list[str] = []
    load = [0] * n
    pending: dict[Any, tuple[int, int]] = {}  # ref → (unit index, actor index)
    next_unit = done = 0
    try:
        while next_unit < len(todo) or pending:
            while next_unit < len(todo) and min(load[a] for a in usable) < per_actor:
                a = min(usable, key=lambda k: load[k])
                pending[actors[a].run.remote(units[todo[next_unit]], force)] = (todo[next_unit], a)
                load[a] += 1
                next_unit += 1
            ready, _ = ray.wait(list(pending) + list(loading), num_returns=1)
            for ref in ready:
                if ref in loading:  # one more actor loaded; one whose load failed is left out
                    _joined(ref, loading.pop(ref), usable, name)
                    continue
                i, a = pending.pop(ref)
                load[a] -= 1
                try:
                    results[i] = ray.get(ref)
                except Exception as e:
                    if (full := _disk_full(e)) is not None:
                        raise full from None  # one line naming the device and the path
                    failures.append(f"{name}[{i}]: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
                done += 1
                report(done)
    finally:
        for actor in actors:
            ray.kill(actor)
    if failures:
        raise StepFailed(f"{len(failures)} of {len(todo)} {name} units failed:\n" + "\n".join(failures[:20]))
    return results
