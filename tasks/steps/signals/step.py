"""The signals step over a recipe: each configured signal over every samples shard (``SignalUnit``).

One ``SignalStep`` per configured signal: an image-only signal that ingestion
does not compute itself runs once per distinct image (``tasks.steps.signals.per_image``);
other model-backed signals run on an actor pool (one model load per actor), the
rest as plain tasks; outputs the recipe no longer produces are swept and the
folder manifests written.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import write_folder_manifest
from magicvl.tasks.resources import StepResources
from magicvl.tasks.shards import samples_shards
from magicvl.tasks.step import Step, StepStats
from magicvl.tasks.steps.quality.step import verdict_paths
from magicvl.tasks.steps.signals.crossmodal import crossmodal_resources, signal_jobs
from magicvl.tasks.steps.signals.images import ImageReuseUnit
from magicvl.tasks.steps.signals.per_image import run_per_image
from magicvl.tasks.steps.signals.units import SignalJob, SignalUnit, skipping_jobs
from magicvl.tasks.unit import Unit, sweep

if TYPE_CHECKING:
    from magicvl.tasks.recipe import Recipe


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
        out[job.name] = SignalStep(recipe, job, shards, force).run()
    if not only and not datasets:  # signals no longer in the recipe: their values are stale
        names = {j.name for j in jobs}
        for folder in sorted(p for p in layout.signals.glob("*") if p.is_dir() and p.name not in names):
            sweep(folder, set())
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


class SignalStep(Step):
    """One configured signal over every samples shard: model-backed signals on an actor pool (one load
    per actor; units whose rows are all skipped or reused run as plain tasks), the others as plain tasks."""

    def __init__(self, recipe: Recipe, job: SignalJob, shards: dict[str, list[dict]], force: bool = False) -> None:
        super().__init__(recipe, force)
        self.job, self.shards = job, shards
        self.name, self.pool = f"signal:{job.name}", "actors" if job.model_backed else "tasks"
        self.per_image = _per_image(recipe, job)
        self.images: dict[str, Any] = {}  # image accounting of a per-image run

    def execute(self, units: Sequence[Unit]) -> list[dict[str, Any]]:
        """Per distinct image (phase A computes missing images, phase B writes per-sample tables), else the base's."""
        if not self.per_image:
            return super().execute(units)
        ray = self.recipe.ray
        results, self.images = run_per_image(list(units), self.resources(), ray.max_in_flight, ray.task_retries,
                                             self.force)  # fmt: skip
        return results

    def resources(self) -> StepResources:
        return crossmodal_resources(self.recipe).get(self.job.name) or self.recipe.resources.signal(self.job.name)

    def units(self) -> list[SignalUnit]:
        recipe, job = self.recipe, self.job
        root, ing, batch = str(recipe.output_root), recipe.ingest, self.resources().batch_size
        verdicts = _skip_verdicts(recipe, job)
        cls = ImageReuseUnit if self.per_image else SignalUnit
        return [
            cls(job, ds, sh, root, recipe.storage, ing.max_pixels, ing.max_image_bytes, batch,
                       verdicts.get((ds, Path(sh["path"]).name.removesuffix(".parquet"))))  # fmt: skip
            for ds, shs in self.shards.items()
            for sh in shs
        ]

    def finish(self, results: list[dict[str, Any]], stats: StepStats) -> dict[str, Any]:
        layout, job = OutputLayout(self.recipe.output_root), self.job
        for ds in self.shards:
            files = [o for r in results if r["dataset"] == ds for o in r["outputs"]]
            sweep(layout.signal_dir(job.name, ds), {f["path"] for f in files})
            write_folder_manifest(
                layout.signal_dir(job.name, ds), files, self.recipe.digest(), {"signal": job.identity(), "dataset": ds}
            )
        return {
            "shards": stats.units,
            "cached": stats.cached,
            "rows": sum(r["rows"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "skipped": sum(r.get("skipped", 0) for r in results if not r["cached"]),  # dropped by quality
            "seconds": round(sum(r.get("seconds", 0.0) for r in results if not r["cached"])
                             + self.images.get("images_seconds", 0.0), 3),  # fmt: skip
            "wall_s": stats.seconds,
            "executor": self.pool,
            **self.images,  # image-only signals: distinct images, computed, reused from the per-image store
            "results": results,
        }


def _skip_verdicts(recipe: Recipe, job: SignalJob) -> dict[tuple[str, str], str]:
    """(dataset, shard stem) → verdicts file whose dropped rows ``job`` skips ({} for signals fused into
    ingestion, or before the quality step ran: then every row is computed). See ``tasks.steps.signals.rows``."""
    if job.name not in skipping_jobs([(j.name, j.params) for j in signal_jobs(recipe)]):
        return {}
    return {k: p for k, (p, _) in verdict_paths(recipe).items()}


def _per_image(recipe: Recipe, job: SignalJob) -> bool:
    """Once per distinct image (``tasks.steps.signals.per_image``): an image-only signal that ingestion
    does not compute itself (a fused one, e.g. image_entropy, costs nothing beside ingestion's decode
    and keeps its per-sample tables, also when forced here)."""
    return job.signal.image_only and job.name in skipping_jobs([(j.name, j.params) for j in signal_jobs(recipe)])
