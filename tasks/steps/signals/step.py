"""The signals step over a recipe: each configured signal over every samples shard (``SignalUnit``).

Model-backed signals run on an actor pool (one model load per actor), the others
as plain tasks; outputs the recipe no longer produces are swept and the folder
manifests written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import write_folder_manifest
from magicvl.tasks.executor import run_on_actors, run_units
from magicvl.tasks.resources import StepResources
from magicvl.tasks.steps.ingest.step import samples_shards
from magicvl.tasks.steps.quality.step import verdict_paths
from magicvl.tasks.steps.signals.crossmodal import crossmodal_resources, signal_jobs
from magicvl.tasks.steps.signals.images import ImageReuseUnit
from magicvl.tasks.steps.signals.per_image import run_per_image
from magicvl.tasks.steps.signals.rows import skipping_jobs
from magicvl.tasks.steps.signals.units import SignalJob, SignalUnit
from magicvl.tasks.unit import sweep

if TYPE_CHECKING:  # the recipe is handed down by the flows; nothing here imports flows at run time
    from magicvl.flows.recipe import Recipe


def signals(
    recipe: Recipe, only: list[str] | None = None, datasets: list[str] | None = None, force: bool = False
) -> dict[str, Any]:
    """Compute each configured signal over every samples shard (finished units skipped)."""
    t0 = time.perf_counter()
    layout = OutputLayout(recipe.output_root)
    shards = {ds: shs for ds, shs in samples_shards(recipe).items() if not datasets or ds in datasets}
    out: dict[str, Any] = {}
    jobs = signal_jobs(recipe)
    for job in jobs:
        if only and job.name not in only:
            continue
        t1 = time.perf_counter()
        results, images = _run_signal(recipe, job, shards, force)
        wall = time.perf_counter() - t1
        for ds in shards:
            mine = [r for r in results if r["dataset"] == ds]
            files = [o for r in mine for o in r["outputs"]]
            sweep(layout.signal_dir(job.name, ds), {f["path"] for f in files})
            write_folder_manifest(
                layout.signal_dir(job.name, ds), files, recipe.digest(), {"signal": job.identity(), "dataset": ds}
            )
        out[job.name] = {
            "shards": len(results),
            "cached": sum(r["cached"] for r in results),
            "rows": sum(r["rows"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "skipped": sum(r.get("skipped", 0) for r in results if not r["cached"]),  # dropped by quality
            "seconds": round(sum(r.get("seconds", 0.0) for r in results if not r["cached"])
                             + images.get("images_seconds", 0.0), 3),  # fmt: skip
            "executor": "actors" if job.model_backed else "tasks",
            "wall_s": round(wall, 3),
            **images,  # image-only signals: distinct images, computed, reused from the per-image store
            "results": results,
        }
    if not only and not datasets:  # signals no longer in the recipe: their values are stale
        names = {j.name for j in jobs}
        for folder in sorted(p for p in layout.signals.glob("*") if p.is_dir() and p.name not in names):
            sweep(folder, set())
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _run_signal(
    recipe: Recipe, job: SignalJob, shards: dict[str, list[dict]], force: bool
) -> tuple[list[dict], dict[str, int]]:
    """Image-only signals once per distinct image; other model-backed signals on an actor pool (one
    load per actor), the rest as plain tasks. Returns the per-shard summaries and the image counts."""
    res = crossmodal_resources(recipe).get(job.name) or recipe.resources.signal(job.name)
    root, ing = str(recipe.output_root), recipe.ingest
    verdicts = _skip_verdicts(recipe, job)
    per_image = _per_image(recipe, job)
    cls = ImageReuseUnit if per_image else SignalUnit
    units = [
        cls(job, ds, sh, root, recipe.storage, ing.max_pixels, ing.max_image_bytes, res.batch_size,
            verdicts.get((ds, Path(sh["path"]).name.removesuffix(".parquet"))))  # fmt: skip
        for ds, shs in shards.items()
        for sh in shs
    ]
    name, retries = f"signal:{job.name}", recipe.ray.task_retries
    if per_image:
        return run_per_image(units, res, recipe.ray.max_in_flight, retries, force)
    if job.model_backed:  # units whose rows are all skipped or reused run as plain tasks: no model load
        light = [] if force else [i for i, u in enumerate(units) if u.finished() is None and not u.needs_model()]
        done = run_units([units[i] for i in light], f"{name}:reuse", StepResources(), recipe.ray.max_in_flight,
                         retries)  # fmt: skip
        results = run_on_actors(units, name, job.signal, job.params, res, retries, force)
        for i, r in zip(light, done):
            results[i] = r
        return results, {}
    return run_units(units, name, res, recipe.ray.max_in_flight, retries, force), {}


def _per_image(recipe: Recipe, job: SignalJob) -> bool:
    """Once per distinct image (``tasks.steps.signals.per_image``): an image-only signal that ingestion
    does not compute itself (a fused one, e.g. image_entropy, costs nothing beside ingestion's decode
    and keeps its per-sample tables, also when forced here)."""
    return job.signal.image_only and job.name in skipping_jobs([(j.name, j.params) for j in signal_jobs(recipe)])


def _skip_verdicts(recipe: Recipe, job: SignalJob) -> dict[tuple[str, str], str]:
    """(dataset, shard stem) → verdicts file whose dropped rows ``job`` skips ({} for signals fused into
    ingestion, or before the quality step ran: then every row is computed). See ``tasks.steps.signals.rows``."""
    if job.name not in skipping_jobs([(j.name, j.params) for j in signal_jobs(recipe)]):
        return {}
    return {k: p for k, (p, _) in verdict_paths(recipe).items()}
