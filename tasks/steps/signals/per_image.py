"""Run an image-only signal once per distinct image (see ``tasks.steps.signals.images``).

Plan (driver, reads only the ``image_digest`` column of the shards still to do):
the distinct digests those shards need, minus the digests the store already
holds (all of them under ``force``), each missing one assigned to the first
shard that carries it (datasets in recipe order, shards in order). Phase A
computes the assignments, each owner's split into pieces (``pieces``: about
``PIECES_PER_WORKER`` per worker of the pool, at least ``MIN_PIECE`` images each,
so no worker idles through a long last shard), on an actor pool for a
model-backed signal; phase B writes every unfinished per-sample table from the
store (plain tasks, no model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from magicvl.storage.readers import read_table
from magicvl.tasks.capacity import pool_size
from magicvl.tasks.executor import _run_logger, run_on_actors, run_units
from magicvl.tasks.resources import StepResources
from magicvl.tasks.steps.signals.images import ImageReuseUnit, ImageValuesUnit, store_dir, stored_digests


@dataclass
class ImagePlan:
    """Which per-sample tables still run, which images they need, and who computes the missing ones."""

    todo: list[int]  # indices of the per-sample units to run (phase B)
    needed: int  # distinct images those units need
    owners: dict[int, list[bytes]] = field(default_factory=dict)  # unit index → digests it computes (phase A)

    @property
    def missing(self) -> int:
        return sum(len(d) for d in self.owners.values())


def plan_images(units: list[ImageReuseUnit], force: bool) -> ImagePlan:
    """The plan for ``units`` (one per samples shard, in a stable order)."""
    todo = [i for i, u in enumerate(units) if force or u.finished() is None]
    needed: dict[bytes, int] = {}  # digest → first unit carrying it
    for i in todo:
        u = units[i]
        digests = read_table(u.shard["path"], columns=["image_digest"]).column("image_digest").to_pylist()
        skip = u.skip_mask() if u.skip_mask() is not None else np.zeros(len(digests), dtype=bool)
        for d, k in zip(digests, skip):
            if d is not None and not k and d not in needed:
                needed[d] = i
    known = set() if force or not units else stored_digests(store_dir(units[0].layout, units[0].job))
    owners: dict[int, list[bytes]] = {}
    for d, i in needed.items():
        if d not in known:
            owners.setdefault(i, []).append(d)
    return ImagePlan(todo, len(needed), owners)


PIECES_PER_WORKER = 4  # phase-A units per worker of the pool (the last ones are short: little idle tail)
MIN_PIECE = 8  # images: below this a unit's fixed cost (reading its shard) outweighs the balance


def pieces(owners: dict[int, list[bytes]], workers: int) -> list[tuple[int, list[bytes]]]:
    """Each owner's digests cut into near-equal pieces of at most ⌈missing / (workers · PIECES_PER_WORKER)⌉
    (≥ ``MIN_PIECE``) images, in owner order: (owner unit index, digests)."""
    missing = sum(len(d) for d in owners.values())
    size = max(MIN_PIECE, -(-missing // max(1, workers * PIECES_PER_WORKER)))
    out: list[tuple[int, list[bytes]]] = []
    for i, digests in owners.items():
        ds = sorted(digests)
        k = -(-len(ds) // size)
        out += [(i, ds[j * len(ds) // k : (j + 1) * len(ds) // k]) for j in range(k)]
    return out


def run_per_image(
    units: list[ImageReuseUnit],
    resources: StepResources,
    max_in_flight: int | None,
    retries: int,
    force: bool,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Per-sample summaries in unit order, and the image accounting (distinct, computed, reused)."""
    if not units:
        return [], {"images": 0, "images_computed": 0, "images_reused": 0, "images_seconds": 0.0}
    job, name = units[0].job, f"signal:{units[0].job.name}"
    plan = plan_images(units, force)
    log = _run_logger()
    log.info("%s: %d distinct images in %d shards to write, %d to compute, %d reused from the store",
             name, plan.needed, len(plan.todo), plan.missing, plan.needed - plan.missing)  # fmt: skip
    workers = pool_size(resources, max(1, plan.missing), name) if plan.missing else 1
    phase_a = [
        ImageValuesUnit(job, units[i].dataset, units[i].shard, digests, str(units[i].layout.root), units[i].storage,
                        units[i].max_pixels, units[i].max_image_bytes, units[i].batch_size)  # fmt: skip
        for i, digests in pieces(plan.owners, workers)
    ]
    if job.model_backed:
        done_a = run_on_actors(phase_a, f"{name}:images", resources, retries, force)
    else:
        done_a = run_units(phase_a, f"{name}:images", resources, max_in_flight, retries, force)
    computed = sum(r["images"] for r in done_a if not r["cached"])
    results: list[dict[str, Any] | None] = [None if i in plan.todo else units[i].finished() for i in range(len(units))]
    written = run_units([units[i] for i in plan.todo], name, StepResources(), max_in_flight, retries, force)
    for i, r in zip(plan.todo, written):
        results[i] = r
    stats = {"images": plan.needed, "images_computed": computed, "images_reused": plan.needed - computed,
             "images_seconds": round(sum(r["seconds"] for r in done_a if not r["cached"]), 3),
             "image_results": done_a}  # fmt: skip  (per image unit, for the run's costs; not in the manifest)
    log.info("%s: images computed %d, reused %d (of %d distinct)", name, computed, plan.needed - computed, plan.needed)
    return [r for r in results if r is not None], stats
