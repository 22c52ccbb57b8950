"""A run's costs per step, for the run manifest (``costs``) and ``magicvl plan`` (``tasks.plan``).

From the steps' own results: wall seconds, worker-seconds (the seconds the
step's units spent, summed; cached units spent none), units, bytes written and
whether an actor pool ran it. Each signal is a step of its own
(``signal:<name>``; one that ingestion computes, fused, costs nothing here: its work is
ingest's); ``signals:other`` is the signal step's time outside them.

What ``tasks.plan_fit`` fits on: ``unit_costs``, one ``[seconds, size, dataset]`` per unit
that ran (not cached): ingest chunks by ``records_in``, quality, combine and per-shard signal
units by their shard's rows, an image-only signal's image units by the images they computed
(``unit_of: images``). A sampled run (``curate --sample-chunks``) adds its ``sample`` block
(``tasks.steps.ingest.sample``) and, per step, ``units_full``: the units the whole data would
have (each unit counts chunks planned / chunks kept of its dataset).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicvl.tasks.resources import StepResources
from magicvl.tasks.steps.ingest.units import fused_signals
from magicvl.tasks.steps.signals.crossmodal import crossmodal_resources, signal_jobs

if TYPE_CHECKING:  # the recipe (tasks.recipe) is handed down by the flows
    from magicvl.tasks.recipe import Recipe


def step_resources(recipe: Recipe) -> dict[str, StepResources]:
    """Step name (as in ``costs``) → the resources the recipe gives it."""
    res = recipe.resources
    out = {"ingest": res.ingest, "quality": res.quality, "combine": res.combine}
    cross = crossmodal_resources(recipe)
    for name in [*recipe.signals, *cross]:
        out[f"signal:{name}"] = cross.get(name) or res.signal(name)
    return out


def _fresh_s(results: list[dict]) -> float:
    return sum(r.get("seconds", 0.0) for r in results if not r.get("cached"))


def _bytes(results: list[dict], key: str = "outputs") -> int:
    return sum(int(o.get("bytes", 0)) for r in results if not r.get("cached") for o in r.get(key) or [])


def _cost(step: str, wall: float, worker: float, units: int, cached: int, nbytes: int, actors: bool) -> dict[str, Any]:
    return {"step": step, "wall_s": round(wall, 3), "worker_s": round(worker, 3), "units": units, "cached": cached,
            "bytes": nbytes, "actors": actors}  # fmt: skip


def unit_costs(results: list[dict], size: str, sample: dict[str, Any] | None, of: str = "records") -> dict[str, Any]:
    """A step's per-unit fields: ``unit_costs`` of the units that ran, ``unit_of``, and for a sample ``units_full``."""
    out: dict[str, Any] = {"unit_costs": [[round(r.get("seconds", 0.0), 3), int(r[size]), r["dataset"]]
                                          for r in results if not r.get("cached")]}  # fmt: skip
    if of != "records":
        out["unit_of"] = of
    if sample:
        ds = sample["datasets"]
        w = {d: v["chunks_planned"] / v["chunks_kept"] if v["chunks_kept"] else 1.0 for d, v in ds.items()}
        out["units_full"] = round(sum(w.get(r["dataset"], 1.0) for r in results), 3)
    return out


def _quality(q: dict[str, Any]) -> float:
    """Worker-seconds of the quality step: the per-shard pass, verdicts, judges and a VLM classifier."""
    worker = q["dedup"].get("map_worker_s", 0.0) + q["verdicts"].get("worker_s", 0.0)
    worker += sum(j.get("worker_s", 0.0) for j in q.get("judge", {}).values())
    if q["categorize"].get("executor") == "actors":
        worker += q["categorize"].get("worker_s", 0.0)
    return worker


def step_costs(
    recipe: Recipe, ing: dict[str, Any], qual: dict[str, Any], sig: dict[str, Any], comb: dict[str, Any],
    cluster: dict[str, float],
) -> dict[str, Any]:  # fmt: skip
    """The ``costs`` block of a run manifest (raw step results in, before ``slim``)."""
    chunks = [s for ss in ing["datasets"].values() for s in ss]
    ing_worker = _fresh_s(chunks) + _fresh_s(ing["dedup"])
    records = sum(s["records_in"] for s in chunks)
    sample = ing.get("sample")
    steps = [_cost("ingest", ing["seconds"], ing_worker, len(chunks), sum(bool(s.get("cached")) for s in chunks),
                   sum(int(sh.get("bytes", 0)) for s in chunks if not s.get("cached") for sh in s["shards"]),
                   False) | unit_costs(chunks, "records_in", sample)]  # fmt: skip
    v = qual["verdicts"]
    steps.append(_cost("quality", qual["seconds"], _quality(qual), v["units"], v["cached"], 0, False)
                 | unit_costs(qual.get("results", []), "rows", sample))  # fmt: skip
    inner = 0.0
    fused = {f.name for f in fused_signals([(j.name, j.params) for j in signal_jobs(recipe)])}
    for name, s in sig.items():
        if not isinstance(s, dict) or "results" not in s:
            continue
        inner += s.get("wall_s", 0.0)
        cached = 0 if name in fused else s["cached"]  # a fused signal's tables are ingestion's work, not reuse
        per_image = "image_results" in s  # its work: the images its image units computed
        units = unit_costs(s["image_results"], "images", sample, "images") if per_image else \
            unit_costs(s["results"], "rows", sample)  # fmt: skip
        if per_image and sample:
            units["units_full"] = unit_costs(s["results"], "rows", sample)["units_full"]
        steps.append(_cost(f"signal:{name}", s.get("wall_s", 0.0), s["seconds"], s["shards"], cached,
                           _bytes(s["results"]), s["executor"] == "actors") | units)  # fmt: skip
    steps.append(_cost("signals:other", max(0.0, sig["seconds"] - inner), 0.0, 1, 0, 0, False))
    res = comb["results"]
    comb_worker = _fresh_s(res) + comb.get("passes_worker_s", 0.0)  # + the statistics/histogram/eval passes
    steps.append(_cost("combine", comb["seconds"], comb_worker, len(res), sum(bool(r.get("cached")) for r in res),
                       _bytes(res), False) | unit_costs(res, "rows", sample))  # fmt: skip
    resources = step_resources(recipe)
    for s in steps:
        if s["step"] in resources:
            s["resources"] = resources[s["step"]].model_dump(exclude_none=True)
    out = {"records": records, "cluster": cluster, "steps": steps, "cached_units": sum(s["cached"] for s in steps)}
    return out | ({"sample": sample} if sample else {})


def ray_cluster() -> dict[str, float]:
    """The running Ray cluster as ``tasks.plan.Cluster`` fields (nodes alike: per-node CPUs and GPUs)."""
    import ray

    total = ray.cluster_resources()
    nodes = max(1, sum(1 for n in ray.nodes() if n.get("Alive")))
    return {"nodes": nodes, "cpus": float(total.get("CPU", 1)) / nodes, "gpus": float(total.get("GPU", 0)) / nodes}
