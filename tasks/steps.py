"""The run's steps over a recipe: ingest (+ dedup), signals, combine.

Each step builds its units (``tasks.unit.Unit``), runs them on Ray
(``tasks.executor``: plain tasks, or an actor pool for model-backed signals),
gathers the small summaries, removes outputs the recipe no longer produces
(``tasks.unit.sweep``) and writes the folder manifests. The Prefect flows in
``flows.curate`` wrap these as tasks.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from magicvl.model.costs import CostModel
from magicvl.scoring.combine import CombineConfig
from magicvl.scoring.score import PopulationStats, cutoffs, decide
from magicvl.storage.fingerprint import sha256_file, stable_hash
from magicvl.storage.outfs import as_path
from magicvl.storage.ingest import Chunk, DatasetConfig, plan_file, source_files
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import read_folder_manifest, write_folder_manifest
from magicvl.storage.readers import list_shards, num_rows
from magicvl.tasks import combine as combine_tasks
from magicvl.tasks.crossmodal import crossmodal_jobs, crossmodal_resources
from magicvl.tasks.dedup import DEDUP_PREFIX, DedupUnit
from magicvl.tasks.executor import run_on_actors, run_tasks, run_units
from magicvl.tasks.ingest import IngestUnit, fused_signals
from magicvl.tasks.resources import StepResources
from magicvl.tasks.retune import transitions
from magicvl.tasks.signal_rows import dropped_mask, skip_key, skipping_jobs
from magicvl.tasks.signals import SignalJob, SignalUnit
from magicvl.tasks.unit import forget_datasets, sweep

if TYPE_CHECKING:  # the recipe is handed down by the flows; nothing here imports flows at run time
    from magicvl.flows.recipe import Recipe


def signal_jobs(recipe: Recipe) -> list[SignalJob]:
    """The recipe's signals, then one ``vlm_loss@<model>`` job per cross-modal model (model order)."""
    return [SignalJob.named(n, recipe.signal_params(n)) for n in recipe.signals] + crossmodal_jobs(recipe)


# -- ingest --------------------------------------------------------------------------------------
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


def ingest(recipe: Recipe, force: bool = False) -> dict[str, Any]:
    """Ingest every chunk, then deduplicate ids per dataset; writes the samples manifests."""
    t0 = time.perf_counter()
    layout = OutputLayout(recipe.output_root)
    res = recipe.resources.ingest
    fused = fused_signals([(j.name, j.params) for j in signal_jobs(recipe)])
    chunks = plan_chunks(recipe)
    units = [
        IngestUnit(
            ch, cfg, recipe.ingest, recipe.storage, str(layout.root), str(recipe.base_dir), fused, res.batch_size
        )
        for cfg, ch in chunks
    ]
    summaries = run_units(units, "ingest", res, recipe.ray.max_in_flight, recipe.ray.task_retries, force)
    by_ds: dict[str, list[dict]] = {cfg.name: [] for cfg in recipe.datasets}
    for s in summaries:
        by_ds[s["dataset"]].append(s)
    names = {d.name for d in recipe.all_datasets}  # translated datasets (written after ingest) included
    forgotten = forget_datasets(layout, names)  # datasets removed from the recipe: their outputs go
    for ds, ss in by_ds.items():
        sweep(layout.samples_dir(ds), {sh["path"] for s in ss for sh in s["shards"]})
        sweep(layout.quarantine_dir(ds), {q["path"] for s in ss for q in s["quarantine_shards"]}, "ingest-")
    dedup = dedup_step(recipe, by_ds, force)
    for ds, ss in by_ds.items():
        totals = {
            "records_in": sum(s["records_in"] for s in ss),
            "samples": sum(s["kept"] for s in ss),
            "quarantined": _add([s["quarantined"] for s in ss]),
            "duplicates": dedup[ds]["duplicates"],
        }
        shards = [sh for s in ss for sh in s["shards"]]
        write_folder_manifest(layout.samples_dir(ds), shards, recipe.digest(), {"dataset": ds, "ingest": totals})
    return {"datasets": by_ds, "dedup": list(dedup.values()), "chunks": len(chunks), "forgotten": forgotten,
            "seconds": round(time.perf_counter() - t0, 3)}  # fmt: skip


def dedup_step(recipe: Recipe, by_ds: dict[str, list[dict]], force: bool = False) -> dict[str, dict]:
    """One ``DedupUnit`` per dataset over its ingested shards."""
    layout = OutputLayout(recipe.output_root)
    units = [
        DedupUnit(ds, [sh for s in ss for sh in s["shards"]], str(layout.root), recipe.storage)
        for ds, ss in by_ds.items()
    ]
    res = run_units(units, "dedup", recipe.resources.dedup, recipe.ray.max_in_flight, recipe.ray.task_retries, force)
    return {r["dataset"]: r for r in res}


def _add(counts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for c in counts:
        for k, n in c.items():
            total[k] = total.get(k, 0) + n
    return total


def samples_shards(recipe: Recipe, names: list[str] | None = None) -> dict[str, list[dict]]:
    """Samples shards per dataset (``recipe.all_datasets``, or those in ``names``), from the manifests
    ingestion (or translation) wrote."""
    layout = OutputLayout(recipe.output_root)
    out = {}
    for cfg in recipe.all_datasets:
        if names is not None and cfg.name not in names:
            continue
        m = read_folder_manifest(layout.samples_dir(cfg.name))
        if m is None:
            raise FileNotFoundError(
                f"dataset {cfg.name!r} is not ingested yet (no manifest for {layout.samples_dir(cfg.name)}): "
                "run `magicvl curate` first"
            )
        out[cfg.name] = [{**s, "path": str(layout.samples_dir(cfg.name) / s["path"])} for s in m["shards"]]
    return out


# -- signals -------------------------------------------------------------------------------------
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
        results = _run_signal(recipe, job, shards, force)
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
            "seconds": round(sum(r.get("seconds", 0.0) for r in results if not r["cached"]), 3),
            "executor": "actors" if job.model_backed else "tasks",
            "results": results,
        }
    if not only and not datasets:  # signals no longer in the recipe: their values are stale
        names = {j.name for j in jobs}
        for folder in sorted(p for p in layout.signals.glob("*") if p.is_dir() and p.name not in names):
            sweep(folder, set())
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _run_signal(recipe: Recipe, job: SignalJob, shards: dict[str, list[dict]], force: bool) -> list[dict]:
    """Model-backed signals on an actor pool (one load per actor), the others as plain tasks."""
    res = crossmodal_resources(recipe).get(job.name) or recipe.resources.signal(job.name)
    root, ing = str(recipe.output_root), recipe.ingest
    verdicts = _skip_verdicts(recipe, job)
    units = [
        SignalUnit(job, ds, sh, root, recipe.storage, ing.max_pixels, ing.max_image_bytes, res.batch_size,
                   verdicts.get((ds, Path(sh["path"]).name.removesuffix(".parquet"))))  # fmt: skip
        for ds, shs in shards.items()
        for sh in shs
    ]
    name, retries = f"signal:{job.name}", recipe.ray.task_retries
    if job.model_backed:  # units whose rows are all skipped or reused run as plain tasks: no model load
        light = [] if force else [i for i, u in enumerate(units) if u.finished() is None and not u.needs_model()]
        done = run_units([units[i] for i in light], f"{name}:reuse", StepResources(), recipe.ray.max_in_flight,
                         retries)  # fmt: skip
        results = run_on_actors(units, name, job.signal, job.params, res, retries, force)
        for i, r in zip(light, done):
            results[i] = r
        return results
    return run_units(units, name, res, recipe.ray.max_in_flight, retries, force)


def _skip_verdicts(recipe: Recipe, job: SignalJob) -> dict[tuple[str, str], str]:
    """(dataset, shard stem) → verdicts file whose dropped rows ``job`` skips ({} for signals fused into
    ingestion, or before the quality step ran: then every row is computed). See ``tasks.signal_rows``."""
    from magicvl.tasks.quality_step import verdict_paths

    if job.name not in skipping_jobs([(j.name, j.params) for j in signal_jobs(recipe)]):
        return {}
    return {k: p for k, (p, _) in verdict_paths(recipe).items()}


# -- combine -------------------------------------------------------------------------------------
def combine_inputs(recipe: Recipe) -> list[combine_tasks.ShardInputs]:
    """Every samples shard with the signal file of each configured signal and the dataset's duplicates."""
    from magicvl.tasks.quality_step import verdict_paths

    layout = OutputLayout(recipe.output_root)
    jobs = signal_jobs(recipe)
    verdicts = verdict_paths(recipe)
    skipping = skipping_jobs([(j.name, j.params) for j in jobs])
    inputs = []
    for ds, shs in samples_shards(recipe).items():
        dups = tuple(str(p) for p in list_shards(layout.quarantine_dir(ds)) if p.name.startswith(DEDUP_PREFIX))
        for sh in shs:
            stem = Path(sh["path"]).name.removesuffix(".parquet")
            paths, keys = {}, {}
            mask = dropped_mask(verdicts.get((ds, stem), (None, None))[0])  # rows the skipping signals left out
            for job in jobs:
                key = skip_key(job.unit_key(sh["sha256"]), mask if job.name in skipping else None).digest()
                p = layout.signal_path(job.name, ds, stem, key)
                if not p.is_file():
                    raise FileNotFoundError(f"signal {job.name!r} missing for {ds}/{stem}: run the signals step")
                paths[job.name], keys[job.name] = str(p), key
            if (ds, stem) not in verdicts:
                raise FileNotFoundError(f"quality verdicts missing for {ds}/{stem}: run the quality step")
            vpath, vsha = verdicts[(ds, stem)]
            inputs.append(
                combine_tasks.ShardInputs(ds, sh["path"], sh["sha256"], paths, keys, dups, verdict_path=vpath,
                                          verdict_sha=vsha)  # fmt: skip
            )
    return inputs


def combine(recipe: Recipe, cfg: CombineConfig | None = None, force: bool = False) -> dict[str, Any]:
    """Normalise over the population (map-reduce of statistics), score, stage, write curated/."""
    t0 = time.perf_counter()
    cfg = cfg or recipe.combine
    layout = OutputLayout(recipe.output_root)
    inputs = combine_inputs(recipe)
    decision = population_decision(recipe, inputs, cfg)
    res = recipe.resources.combine
    costs = cost_model(recipe)
    units = [
        combine_tasks.CombineUnit(i, cfg, decision, recipe.storage, str(layout.root), res.batch_size, costs)
        for i in inputs
    ]
    results = run_units(units, "combine:write", res, recipe.ray.max_in_flight, recipe.ray.task_retries, force)
    finish_combine(recipe, layout, results)
    return {"decision": decision, "results": results, "transitions": transitions(results),
            "seconds": round(time.perf_counter() - t0, 3)}  # fmt: skip


def cost_model(recipe: Recipe) -> CostModel:
    """How curated rows' packing costs are counted: with the training model (``train.model``: its tokenizer
    and resolution settings) when the recipe has a ``train:`` section, else visual tokens only (default rule)."""
    if recipe.train is None:
        return CostModel()
    try:
        return CostModel.of(recipe.path(recipe.train.model))
    except FileNotFoundError as e:  # training is a later node: curate anyway, the planner will recount
        warnings.warn(f"train.model: {e}; curated rows get visual tokens only", stacklevel=2)
        return CostModel()


def population_decision(recipe: Recipe, inputs: list[combine_tasks.ShardInputs], cfg: CombineConfig) -> dict:
    """Pass 1 (statistics) and, at sample granularity, pass 2 (histograms → cutoffs), merged as they arrive."""
    res, window, retries = recipe.resources.combine, recipe.ray.max_in_flight, recipe.ray.task_retries
    metric_axes = {j.name: j.signal.axis for j in signal_jobs(recipe)}  # vlm_loss@<model>: task, model order
    arrived: list[dict] = []  # merged in a fixed order below: float sums in arrival order differ between
    # runs in their last digits, which would change the decision's hash and recompute every combine unit

    calls = [(i, cfg) for i in inputs]
    run_tasks(combine_tasks.shard_stats, calls, "combine:stats", res, window, retries, arrived.append)
    stats = PopulationStats()
    for s in sorted(arrived, key=stable_hash):
        stats = stats.merge(PopulationStats.from_dict(s))
    decision = decide(stats, metric_axes, cfg)
    if cfg.granularity == "sample":
        hists: dict[str, np.ndarray] = {}

        def add_hists(h: dict[str, np.ndarray]) -> None:
            for k, v in h.items():
                hists[k] = hists[k] + v if k in hists else v

        calls = [(i, cfg, decision.to_dict()) for i in inputs]
        run_tasks(combine_tasks.shard_histograms, calls, "combine:histograms", res, window, retries, add_hists)
        decision.cutoffs = cutoffs(hists, cfg)
    return decision.to_dict()


def finish_combine(recipe: Recipe, layout: OutputLayout, results: list[dict]) -> None:
    """Remove what this combine no longer produces; write the manifests of its folders."""
    produced = [o for r in results for o in r["outputs"]]
    keep = {o["path"] for o in produced}
    for folder in (layout.curated, layout.scores, layout.dropped):
        sweep(folder, keep)
    for cfg in recipe.all_datasets:  # quarantine holds ingest + dedup + translate + combine outputs
        qdir = layout.quarantine_dir(cfg.name)
        sweep(qdir, keep, "combine-")
        write_folder_manifest(qdir, _infos(list_shards(qdir), produced), recipe.digest(), {"dataset": cfg.name})
    for k in (1, 2, 3, 4):
        d = layout.stage_dir(k)
        write_folder_manifest(d, [o for o in produced if as_path(o["path"]).parent == d], recipe.digest(), {"stage": k})
    write_folder_manifest(
        layout.curated,
        [o for o in produced if layout.curated in as_path(o["path"]).parents],
        recipe.digest(),
        {"what": "curriculum, stage-1..4"},
    )
    for folder in (layout.scores, layout.dropped):
        write_folder_manifest(folder, [o for o in produced if folder in as_path(o["path"]).parents], recipe.digest())


def _infos(paths: list[Path], known: list[dict]) -> list[dict]:
    """Shard infos for ``paths``: reuse what units reported, compute the rest (ingest/dedup quarantine)."""
    by_path = {o["path"]: o for o in known}
    out = []
    for p in paths:
        info = by_path.get(str(p))
        if info is None:
            info = {"path": str(p), "rows": num_rows(p), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
        out.append(info)
    return out
