"""Prefect flows: ``curate`` (the whole job), ``score`` (rerun signals), ``combine`` (re-tune, no models).

Flows are thin: each step is a Prefect task that fans shard-level work out
on Ray (paths travel, not data) and returns small summaries. A rerun skips
every unit whose output exists for the same cache key, so a killed run resumes.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from magicvl.flows import report, steps
from magicvl.flows.recipe import Recipe, load_recipe
from magicvl.flows.runtime import ray_session
from magicvl.storage.lock import lock_output, lock_part
from magicvl.storage.layout import OutputLayout

log = logging.getLogger("magicvl")
STEPS = ("ingest", "signals", "combine")


def _run_id() -> str | None:
    try:
        from prefect.runtime import flow_run

        return flow_run.id
    except Exception:
        return None


def _logger():
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:
        return log


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_task(recipe: Recipe, force: bool = False) -> dict[str, Any]:
    """Read, check and store every source record (or quarantine it)."""
    return steps.ingest(recipe, force=force)


@task(name="signals", cache_policy=NO_CACHE)
def signals_task(
    recipe: Recipe, only: list[str] | None = None, datasets: list[str] | None = None, force: bool = False
) -> dict[str, Any]:
    """Compute the configured signals per samples shard (cache hits skipped)."""
    return steps.signals(recipe, only=only, datasets=datasets, force=force)


@task(name="combine", cache_policy=NO_CACHE)
def combine_task(recipe: Recipe, force: bool = False) -> dict[str, Any]:
    """Normalise, score, stage and write the curriculum."""
    return steps.combine(recipe, force=force)


def _slim(step: dict[str, Any]) -> dict[str, Any]:
    """A step result without its per-unit lists (for the run manifest)."""
    out = {k: v for k, v in step.items() if k not in ("results", "datasets")}
    for k, v in list(out.items()):
        if isinstance(v, dict) and "results" in v:
            out[k] = {kk: vv for kk, vv in v.items() if kk != "results"}
    return out


def _ingest_stats(res: dict[str, Any]) -> dict[str, Any]:
    chunks = [s for ss in res["datasets"].values() for s in ss]
    return {
        "chunks": len(chunks),
        "cached_chunks": sum(s.get("cached", False) for s in chunks),
        "records_in": sum(s["records_in"] for s in chunks),
        "kept": sum(s["kept"] for s in chunks),
        "duplicates": sum(d["duplicates"] for d in res["dedup"]),
        "seconds": res["seconds"],
    }


def finish(
    recipe: Recipe, recipe_path: str, started: dt.datetime, step_info: dict[str, Any], combine_res: dict[str, Any]
) -> dict[str, Any]:
    """Check accounting, write the run manifest and artifact, print the summary."""
    layout = OutputLayout(recipe.output_root)
    acc = report.accounting(layout, [d.name for d in recipe.datasets], combine_res["results"])
    report.write_run_manifest(layout, recipe_path, recipe.digest(), started, step_info, acc, _run_id())
    report.publish_artifact(acc, layout)
    notes = []
    absent = combine_res["decision"]["absent_axes"]
    if absent:
        notes.append(f"axes not computed (left out of S, weights renormalised): {', '.join(absent)}")
    from magicvl.model.tiny import is_tiny

    for name in recipe.signals:
        ref = recipe.signal_params(name)
        for attr in ("tokenizer", "model"):
            if getattr(ref, attr, None) and is_tiny(getattr(ref, attr)):
                path = getattr(ref, attr)
                notes.append(f"{name}: {attr} {path} is a tiny checkpoint built locally (random/toy, not real weights)")
    summary = report.format_summary(acc, layout, notes)
    print(summary)
    report.check(acc)
    return {"accounting": acc, "output": str(layout.root), "summary": summary}


@flow(name="curate", log_prints=True)
def curate(recipe_path: str, output: str | None = None, force: list[str] | None = None) -> dict[str, Any]:
    """The main job: ingest → signals → combine → curriculum shards by stage, with accounting.

    ``force`` names steps to recompute even where outputs exist (ingest, signals, combine).
    """
    started = dt.datetime.now(dt.UTC)
    force = force or []
    bad = [s for s in force if s not in STEPS]
    if bad:
        raise ValueError(f"unknown step(s) to force {bad}; choose from {STEPS}")
    recipe = load_recipe(recipe_path, {"output": output} if output else None)
    _logger().info("curate: %d datasets → %s (recipe %s)", len(recipe.datasets), recipe.output_root, recipe.digest())
    with (
        lock_output(recipe.output_root, "curate", exclusive=True),
        ray_session(recipe.ray.address, recipe.ray.num_cpus),
    ):
        ing = ingest_task(recipe, force="ingest" in force)
        sig = signals_task(recipe, force="signals" in force)
        comb = combine_task(recipe, force="combine" in force)
    info = {"ingest": _ingest_stats(ing), "signals": _slim(sig), "combine": _slim(comb)}
    return finish(recipe, recipe_path, started, info, comb)


@flow(name="score", log_prints=True)
def score(
    recipe_path: str,
    signals: list[str] | None = None,
    datasets: list[str] | None = None,
    output: str | None = None,
    force: bool = False,
    then_combine: bool = True,
) -> dict[str, Any]:
    """Rerun scoring tasks: the named signals (default all) over ingested shards, then combine."""
    started = dt.datetime.now(dt.UTC)
    recipe = load_recipe(recipe_path, {"output": output} if output else None)
    unknown = [s for s in signals or [] if s not in recipe.signals]
    if unknown:
        raise ValueError(f"signals {unknown} are not configured in the recipe (configured: {list(recipe.signals)})")
    parts = [f"signal-{s}" for s in signals or recipe.signals]
    with lock_output(recipe.output_root, "score", parts), ray_session(recipe.ray.address, recipe.ray.num_cpus):
        sig = signals_task(recipe, only=signals, datasets=datasets, force=force)
        with lock_part(recipe.output_root, "combine"):  # one combine at a time; waits for another score's
            comb = combine_task(recipe) if then_combine else None
    if comb is None:
        return {"signals": _slim(sig)}
    return finish(recipe, recipe_path, started, {"signals": _slim(sig), "combine": _slim(comb)}, comb)


@flow(name="combine", log_prints=True)
def combine(recipe_path: str, output: str | None = None, force: bool = False) -> dict[str, Any]:
    """Re-tune: recompute scores and stages from stored signals (seconds, no model run)."""
    started = dt.datetime.now(dt.UTC)
    recipe = load_recipe(recipe_path, {"output": output} if output else None)
    with (
        lock_output(recipe.output_root, "combine", ["combine"]),
        ray_session(recipe.ray.address, recipe.ray.num_cpus),
    ):
        comb = combine_task(recipe, force=force)
    return finish(recipe, recipe_path, started, {"combine": _slim(comb)}, comb)
