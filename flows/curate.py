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

from magicvl.flows.recipe import Recipe, load_recipe
from magicvl.flows.report import accounting
from magicvl.flows.report.run_summary import finish_report, reuse_line
from magicvl.flows.report.runs import flow_run_name
from magicvl.flows.runtime import ray_session
from magicvl.flows.sample_run import check_sample_root
from magicvl.scoring.stages import achieved_shares, share_warnings
from magicvl.storage.layout import OutputLayout
from magicvl.storage.lock import lock_output, lock_part
from magicvl.storage.manifest import read_json
from magicvl.tasks.costs import ray_cluster, step_costs
from magicvl.tasks.steps.combine import retune
from magicvl.tasks.steps.combine import step as combine_step
from magicvl.tasks.steps.ingest import step as ingest_step
from magicvl.tasks.steps.quality.step import quality, summary_line
from magicvl.tasks.steps.signals import step as signals_step
from magicvl.tasks.steps.translate import translate

log = logging.getLogger("magicvl")
STEPS = ("ingest", "translate", "quality", "signals", "combine")


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
def ingest_task(recipe: Recipe, force: bool = False, sample: float | None = None) -> dict[str, Any]:
    """Read, check and store every source record (or quarantine it); then deduplicate ids."""
    return ingest_step.ingest(recipe, force=force, sample=sample)


@task(name="translate", cache_policy=NO_CACHE)
def translate_task(recipe: Recipe, force: bool = False) -> dict[str, Any]:
    """Translate the recipe's chosen English samples into new datasets (nothing unless configured)."""
    return translate(recipe, force=force)


@task(name="quality", cache_policy=NO_CACHE)
def quality_task(recipe: Recipe, force: bool = False) -> dict[str, Any]:
    """Filters, categories, judges and cross-dataset dedup → one verdict per sample (cached units)."""
    return quality(recipe, force=force)


@task(name="signals", cache_policy=NO_CACHE)
def signals_task(
    recipe: Recipe, only: list[str] | None = None, datasets: list[str] | None = None, force: bool = False
) -> dict[str, Any]:
    """Compute the configured signals per samples shard (cache hits skipped)."""
    return signals_step.signals(recipe, only=only, datasets=datasets, force=force)


@task(name="combine", cache_policy=NO_CACHE)
def combine_task(recipe: Recipe, force: bool = False) -> dict[str, Any]:
    """Normalise, score, stage and write the curriculum."""
    return combine_step.combine(recipe, force=force)


def kept_counts(acc: dict[str, Any]) -> dict[tuple[str, int], int]:
    """The accounting's kept samples as (category, stage) → n (its keys are "stage|category"; eval rows left out)."""
    items = [(k.split("|", 1), n) for k, n in acc["kept_by_stage_category"].items() if not k.startswith("eval|")]
    return {(cat, int(stage)): n for (stage, cat), n in items}


def finish(
    recipe: Recipe,
    recipe_path: str,
    started: dt.datetime,
    step_info: dict[str, Any],
    combine_res: dict[str, Any],
    step: str = "curate",
    costs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check accounting, write the run manifest, report and artifacts, print the summary."""
    layout = OutputLayout(recipe.output_root)
    acc = accounting.accounting(layout, [d.name for d in recipe.all_datasets], combine_res["results"])
    acc["stage_shares"] = achieved_shares(kept_counts(acc), recipe.combine.stages)  # target vs achieved, per split
    manifest = accounting.write_run_manifest(
        layout, recipe_path, recipe.digest(), started, step_info, acc, _run_id(), costs
    )
    accounting.publish_artifact(acc, layout, step)
    plots = finish_report(step, read_json(manifest), layout)
    notes = [reuse_line(step_info)] if reuse_line(step_info) else []
    notes += [summary_line(step_info["quality"])] if step_info.get("quality") else []
    notes += accounting.run_notes(recipe, combine_res["decision"])
    notes += share_warnings(acc["stage_shares"], recipe.combine.granularity)
    notes += [f"report: {plots[0]}"] if plots else []
    summary = accounting.format_summary(acc, layout, notes, step)
    print(summary)
    accounting.check(acc)
    return {"accounting": acc, "output": str(layout.root), "summary": summary}


@flow(name="curate", log_prints=True, flow_run_name=flow_run_name)
def curate(
    recipe_path: str, output: str | None = None, force: list[str] | None = None, sample_chunks: float | None = None
) -> dict[str, Any]:
    """The main job: ingest → signals → combine → curriculum shards by stage, with accounting.

    ``force`` names steps to recompute even where outputs exist (ingest, signals, combine).
    ``sample_chunks``: a calibration run for ``magicvl plan`` on every k-th chunk of each dataset
    (k = round(1 / sample_chunks)), into an output root apart from the full run's (``flows.sample_run``).
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
        check_sample_root(recipe_path, recipe, sample_chunks)
        ing = ingest_task(recipe, force="ingest" in force, sample=sample_chunks)
        trans = translate_task(recipe, force="translate" in force)
        qual = quality_task(recipe, force="quality" in force)
        sig = signals_task(recipe, force="signals" in force)
        comb = combine_task(recipe, force="combine" in force)
        costs = step_costs(recipe, ing, qual, sig, comb, ray_cluster())  # calibration for `magicvl plan`
    info = {"ingest": accounting.ingest_stats(ing), "quality": accounting.slim(qual), "signals": accounting.slim(sig),
            "combine": accounting.slim(comb)}  # fmt: skip
    if trans:
        info["translate"] = trans
    return finish(recipe, recipe_path, started, info, comb, costs=costs)


@flow(name="score", log_prints=True, flow_run_name=flow_run_name)
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
        with lock_part(recipe.output_root, "combine"):  # verdicts first: signals skip the dropped rows
            qual = quality_task(recipe)
        sig = signals_task(recipe, only=signals, datasets=datasets, force=force)
        with lock_part(recipe.output_root, "combine"):  # one combine at a time; waits for another score's
            comb = combine_task(recipe) if then_combine else None
    if comb is None:
        return {"signals": accounting.slim(sig)}
    info = {"signals": accounting.slim(sig), "quality": accounting.slim(qual), "combine": accounting.slim(comb)}
    return finish(recipe, recipe_path, started, info, comb, "score")


@flow(name="combine", log_prints=True, flow_run_name=flow_run_name)
def combine(recipe_path: str, output: str | None = None, force: bool = False) -> dict[str, Any]:
    """Re-tune: recompute scores and stages from stored signals (seconds, no model run)."""
    started = dt.datetime.now(dt.UTC)
    recipe = load_recipe(recipe_path, {"output": output} if output else None)
    changed = retune.changed_parameters(recipe, retune.previous_sections(OutputLayout(recipe.output_root)))
    with (
        lock_output(recipe.output_root, "combine", ["combine"]),
        ray_session(recipe.ray.address, recipe.ray.num_cpus),
    ):
        qual = quality_task(recipe)  # cached units: a threshold edit re-runs only the verdicts
        comb = combine_task(recipe, force=force)
    print("changed since the previous run: " + ("; ".join(changed) if changed else "nothing (or no run recorded)"))
    print(retune.format_transitions(comb["transitions"]))
    retune.publish(comb["transitions"], changed)
    info = {"quality": accounting.slim(qual), "combine": accounting.slim(comb)}
    res = finish(recipe, recipe_path, started, info, comb, "combine")
    return {**res, "changed": changed, "transitions": comb["transitions"]}
