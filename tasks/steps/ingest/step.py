"""The ingest step over a recipe: plan every source file's chunks, ingest them (``IngestUnit``), then
deduplicate ids per dataset (``DedupUnit``); writes the samples manifests.

``tasks.shards.samples_shards`` reads those manifests back for the later steps.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from magicvl.storage.ingest import Chunk, DatasetConfig, plan_file, source_files
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import write_folder_manifest
from magicvl.tasks.executor import run_tasks
from magicvl.tasks.resources import StepResources
from magicvl.tasks.shards import samples_shards  # noqa: F401  (re-exported: its old home)
from magicvl.tasks.step import Step, StepStats
from magicvl.tasks.steps.ingest.dedup import DedupUnit
from magicvl.tasks.steps.ingest.sample import keep_chunks, sample_every, sample_info
from magicvl.tasks.steps.ingest.units import IngestUnit, fused_signals
from magicvl.tasks.steps.signals.crossmodal import signal_jobs
from magicvl.tasks.unit import forget_datasets, sweep

if TYPE_CHECKING:
    from magicvl.tasks.recipe import Recipe


def plan_chunks(recipe: Recipe) -> list[tuple[DatasetConfig, Chunk]]:
    """Every chunk of every source file, numbered per dataset in source order."""
    store = recipe.storage.s3
    files = [(cfg, path) for cfg in recipe.datasets for path in source_files(cfg, recipe.base_dir, store)]
    calls = [(cfg, path, recipe.ingest, 0, store) for cfg, path in files]
    plans = run_tasks(
        plan_file, calls, "plan", recipe.resources.ingest, recipe.ray.max_in_flight, recipe.ray.task_retries
    )
    chunks, counters = [], {}
    for (cfg, _), plan in zip(files, plans):
        for ch in plan:
            chunks.append((cfg, replace(ch, index=counters.get(cfg.name, 0))))
            counters[cfg.name] = counters.get(cfg.name, 0) + 1
    return chunks


class IngestStep(Step):
    """One ``IngestUnit`` per planned chunk (plain tasks); finishing runs the id dedup (``DedupStep``),
    sweeps what the recipe no longer produces and writes the samples manifests."""

    name = "ingest"

    def __init__(self, recipe: Recipe, force: bool = False, sample: float | None = None) -> None:
        super().__init__(recipe, force)
        self.sample = sample  # ``curate --sample-chunks``: every k-th chunk of each dataset (ingest.sample)
        self.every = sample_every(sample) if sample is not None else 1

    def resources(self) -> StepResources:
        return self.recipe.resources.ingest

    def units(self) -> list[IngestUnit]:
        recipe, batch = self.recipe, self.resources().batch_size
        fused = fused_signals([(j.name, j.params) for j in signal_jobs(recipe)])
        root, base = str(recipe.output_root), str(recipe.base_dir)
        self.planned = plan_chunks(recipe)
        self.chunks = keep_chunks(self.planned, self.every) if self.sample is not None else self.planned
        return [IngestUnit(ch, cfg, recipe.ingest, recipe.storage, root, base, fused, batch) for cfg, ch in self.chunks]

    def finish(self, results: list[dict[str, Any]], stats: StepStats) -> dict[str, Any]:
        recipe, layout = self.recipe, OutputLayout(self.recipe.output_root)
        by_ds: dict[str, list[dict]] = {cfg.name: [] for cfg in recipe.datasets}
        for s in results:
            by_ds[s["dataset"]].append(s)
        names = {d.name for d in recipe.all_datasets}  # translated datasets (written after ingest) included
        forgotten = forget_datasets(layout, names)  # datasets removed from the recipe: their outputs go
        for ds, ss in by_ds.items():
            sweep(layout.samples_dir(ds), {sh["path"] for s in ss for sh in s["shards"]})
            sweep(layout.quarantine_dir(ds), {q["path"] for s in ss for q in s["quarantine_shards"]}, "ingest-")
        dedup = dedup_step(recipe, by_ds, self.force)
        for ds, ss in by_ds.items():
            totals = {
                "records_in": sum(s["records_in"] for s in ss),
                "samples": sum(s["kept"] for s in ss),
                "quarantined": _add([s["quarantined"] for s in ss]),
                "duplicates": dedup[ds]["duplicates"],
            }
            shards = [sh for s in ss for sh in s["shards"]]
            write_folder_manifest(layout.samples_dir(ds), shards, recipe.digest(), {"dataset": ds, "ingest": totals})
        out = {"datasets": by_ds, "dedup": list(dedup.values()), "chunks": len(self.chunks), "forgotten": forgotten,
               "seconds": round(time.perf_counter() - self.t0, 3)}  # fmt: skip
        if self.sample is not None:
            out["sample"] = sample_info(self.sample, self.every, self.planned, results)
        return out

    def run(self) -> dict[str, Any]:
        self.t0 = time.perf_counter()  # the step's seconds include planning and the id dedup
        return super().run()


class DedupStep(Step):
    """One ``DedupUnit`` per dataset over its ingested shards: later copies of an id are quarantined."""

    name = "dedup"

    def __init__(self, recipe: Recipe, by_ds: dict[str, list[dict]], force: bool = False) -> None:
        super().__init__(recipe, force)
        self.by_ds = by_ds

    def resources(self) -> StepResources:
        return self.recipe.resources.dedup

    def units(self) -> list[DedupUnit]:
        root, storage = str(self.recipe.output_root), self.recipe.storage
        return [DedupUnit(ds, [sh for s in ss for sh in s["shards"]], root, storage) for ds, ss in self.by_ds.items()]

    def finish(self, results: list[dict[str, Any]], stats: StepStats) -> dict[str, dict]:
        return {r["dataset"]: r for r in results}


def ingest(recipe: Recipe, force: bool = False, sample: float | None = None) -> dict[str, Any]:
    """Ingest every chunk (``sample``: every k-th of each dataset, ``tasks.steps.ingest.sample``), then
    deduplicate ids per dataset; writes the samples manifests."""
    return IngestStep(recipe, force, sample).run()


def dedup_step(recipe: Recipe, by_ds: dict[str, list[dict]], force: bool = False) -> dict[str, dict]:
    """One ``DedupUnit`` per dataset over its ingested shards."""
    return DedupStep(recipe, by_ds, force).run()


def _add(counts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for c in counts:
        for k, n in c.items():
            total[k] = total.get(k, 0) + n
    return total
