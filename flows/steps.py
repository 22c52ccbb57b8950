"""The run's steps as plain functions over a recipe: ingest, signals, combine.

Each lists its units, fans them out on Ray (``flows.fanout``), gathers the
small summaries, writes folder manifests and removes outputs no longer
produced by the recipe. Prefect wraps them as tasks in ``flows.curate``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from magicvl.flows.fanout import fan_out
from magicvl.flows.recipe import Recipe
from magicvl.scoring.combine import CombineConfig
from magicvl.scoring.score import PopulationStats, cutoffs, decide
from magicvl.scoring.signals import get_signal
from magicvl.storage.ingest import plan_file, source_files
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import read_folder_manifest, write_folder_manifest
from magicvl.storage.readers import list_shards
from magicvl.tasks import combine as combine_tasks
from magicvl.tasks.dedup import dedup_dataset
from magicvl.tasks.ingest import fused_signals, ingest_chunk
from magicvl.tasks.signals import SignalJob, score_shard


def _fan(recipe: Recipe, fn, calls, name, reduce=None):
    return fan_out(fn, calls, name, recipe.ray.max_in_flight, recipe.ray.task_retries, reduce)


def gc(folder: Path, keep: set[str]) -> int:
    """Delete shards under ``folder`` that this run did not produce (stale recipe or chunking)."""
    n = 0
    for p in list_shards(folder):
        if str(p) not in keep:
            p.unlink()
            n += 1
    return n


def signal_jobs(recipe: Recipe) -> list[SignalJob]:
    return [SignalJob.of(get_signal(n), recipe.signal_params(n)) for n in recipe.signals]


# -- ingest --------------------------------------------------------------------------------------
def ingest(recipe: Recipe, force: bool = False) -> dict[str, Any]:
    """Plan every source file, ingest every chunk, deduplicate ids; returns per-dataset results."""
    t0 = time.perf_counter()
    layout = OutputLayout(recipe.output_root)
    files = [(cfg, path) for cfg in recipe.datasets for path in source_files(cfg, recipe.base_dir)]
    plans = _fan(recipe, plan_file, [(cfg, path, recipe.ingest, 0) for cfg, path in files], "plan")
    chunks, counters = [], {}
    for (cfg, _), plan in zip(files, plans):
        for ch in plan:
            chunks.append((cfg, replace(ch, index=counters.get(cfg.name, 0))))
            counters[cfg.name] = counters.get(cfg.name, 0) + 1
    fused = fused_signals([(j.name, j.params) for j in signal_jobs(recipe)])
    calls = [
        (ch, cfg, recipe.ingest, recipe.storage, str(layout.root), str(recipe.base_dir), fused, force)
        for cfg, ch in chunks
    ]
    summaries = _fan(recipe, ingest_chunk, calls, "ingest")
    by_ds: dict[str, list[dict]] = {cfg.name: [] for cfg in recipe.datasets}
    for s in summaries:
        by_ds[s["dataset"]].append(s)
    dedup = _fan(
        recipe,
        dedup_dataset,
        [
            (ds, [sh["path"] for s in ss for sh in s["shards"]], str(layout.root), recipe.storage.compression)
            for ds, ss in by_ds.items()
        ],
        "dedup",
    )
    if any(d["duplicates"] for d in dedup):  # markers now describe deduplicated shards: re-read them
        cached = [s["cached"] for s in summaries]
        summaries = [{**s, "cached": c} for s, c in zip(_fan(recipe, ingest_chunk, calls, "ingest"), cached)]
        by_ds = {cfg.name: [] for cfg in recipe.datasets}
        for s in summaries:
            by_ds[s["dataset"]].append(s)
    for ds, ss in by_ds.items():
        shards = [sh for s in ss for sh in s["shards"]]
        gc(layout.samples_dir(ds), {sh["path"] for sh in shards})
        qdir = layout.quarantine_dir(ds)
        later = {str(p) for p in list_shards(qdir) if p.name.startswith("combine-")}  # owned by combine
        gc(qdir, later | {q["path"] for s in ss for q in s["quarantine_shards"]})
        write_folder_manifest(layout.samples_dir(ds), shards, recipe.digest(), {"dataset": ds})
    return {"datasets": by_ds, "dedup": dedup, "chunks": len(chunks), "seconds": round(time.perf_counter() - t0, 3)}


def samples_shards(recipe: Recipe) -> dict[str, list[dict]]:
    """Samples shards per dataset, from the manifests ingestion wrote."""
    layout = OutputLayout(recipe.output_root)
    out = {}
    for cfg in recipe.datasets:
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
    """Compute each configured signal over every samples shard (cache hits skipped)."""
    t0 = time.perf_counter()
    layout = OutputLayout(recipe.output_root)
    shards = samples_shards(recipe)
    out: dict[str, Any] = {}
    for job in signal_jobs(recipe):
        if only and job.name not in only:
            continue
        calls = [
            (job, ds, sh, str(layout.root), recipe.ingest.max_pixels, recipe.ingest.max_image_bytes, force)
            for ds, shs in shards.items()
            if not datasets or ds in datasets
            for sh in shs
        ]
        results = _fan(recipe, score_shard, calls, f"signal:{job.name}")
        for ds in shards:
            if datasets and ds not in datasets:
                continue
            mine = [r for r in results if r["dataset"] == ds]
            gc(layout.signal_dir(job.name, ds), {r["path"] for r in mine})
            write_folder_manifest(
                layout.signal_dir(job.name, ds), mine, recipe.digest(), {"signal": job.identity(), "dataset": ds}
            )
        out[job.name] = {
            "shards": len(results),
            "cached": sum(r["cached"] for r in results),
            "rows": sum(r["rows"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "seconds": round(sum(r["seconds"] for r in results), 3),
            "results": results,
        }
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


# -- combine -------------------------------------------------------------------------------------
def combine_inputs(recipe: Recipe) -> list[combine_tasks.ShardInputs]:
    """Every samples shard with the signal file of each configured signal."""
    layout = OutputLayout(recipe.output_root)
    jobs = signal_jobs(recipe)
    inputs = []
    for ds, shs in samples_shards(recipe).items():
        for sh in shs:
            stem = Path(sh["path"]).name.removesuffix(".parquet")
            paths, keys = {}, {}
            for job in jobs:
                key = job.key(sh["sha256"])
                p = layout.signal_path(job.name, ds, stem, key)
                if not p.is_file():
                    raise FileNotFoundError(f"signal {job.name!r} missing for {ds}/{stem}: run the signals step")
                paths[job.name], keys[job.name] = str(p), key
            inputs.append(combine_tasks.ShardInputs(ds, sh["path"], sh["sha256"], paths, keys))
    return inputs


def combine(recipe: Recipe, cfg: CombineConfig | None = None, force: bool = False) -> dict[str, Any]:
    """Normalise over the population, score, stage, and write curated/ (no model runs)."""
    t0 = time.perf_counter()
    cfg = cfg or recipe.combine
    layout = OutputLayout(recipe.output_root)
    inputs = combine_inputs(recipe)
    metric_axes = {name: get_signal(name).axis for name in recipe.signals}
    acc = {"stats": PopulationStats()}

    def merge_stats(s: dict) -> None:
        acc["stats"] = acc["stats"].merge(PopulationStats.from_dict(s))

    _fan(recipe, combine_tasks.shard_stats, [(i, cfg) for i in inputs], "combine:stats", merge_stats)
    decision = decide(acc["stats"], metric_axes, cfg)
    if cfg.granularity == "sample":
        hists: dict[str, np.ndarray] = {}

        def add_hists(h: dict[str, np.ndarray]) -> None:
            for k, v in h.items():
                hists[k] = hists[k] + v if k in hists else v

        calls = [(i, cfg, decision.to_dict()) for i in inputs]
        _fan(recipe, combine_tasks.shard_histograms, calls, "combine:histograms", add_hists)
        decision.cutoffs = cutoffs(hists, cfg)
    d = decision.to_dict()
    results = _fan(
        recipe,
        combine_tasks.write_shard,
        [(i, cfg, d, recipe.storage, str(layout.root), force) for i in inputs],
        "combine:write",
    )
    _finish_combine(recipe, layout, results)
    return {"decision": d, "results": results, "seconds": round(time.perf_counter() - t0, 3)}


def _finish_combine(recipe: Recipe, layout: OutputLayout, results: list[dict]) -> None:
    produced = [o for r in results for o in r["outputs"]]
    keep = {o["path"] for o in produced}
    for folder in (layout.curated, layout.scores, layout.dropped):
        gc(folder, keep)
    for cfg in recipe.datasets:  # quarantine holds ingest + dedup + combine outputs
        qdir = layout.quarantine_dir(cfg.name)
        ingest_q = {p for p in map(str, list_shards(qdir)) if not Path(p).name.startswith("combine-")}
        gc(qdir, keep | ingest_q)
        write_folder_manifest(qdir, _infos(list_shards(qdir), produced), recipe.digest(), {"dataset": cfg.name})
    for k in (1, 2, 3, 4):
        d = layout.stage_dir(k)
        write_folder_manifest(d, [o for o in produced if Path(o["path"]).parent == d], recipe.digest(), {"stage": k})
    write_folder_manifest(
        layout.curated,
        [o for o in produced if layout.curated in Path(o["path"]).parents],
        recipe.digest(),
        {"what": "curriculum, stage-1..4"},
    )
    for folder in (layout.scores, layout.dropped):
        write_folder_manifest(folder, [o for o in produced if folder in Path(o["path"]).parents], recipe.digest())


def _infos(paths: list[Path], known: list[dict]) -> list[dict]:
    """Shard infos for ``paths``: reuse what tasks reported, compute the rest (ingest quarantine)."""
    import pyarrow.parquet as pq

    from magicvl.storage.fingerprint import sha256_file

    by_path = {o["path"]: o for o in known}
    out = []
    for p in paths:
        info = by_path.get(str(p))
        if info is None:
            info = {
                "path": str(p),
                "rows": pq.ParquetFile(p).metadata.num_rows,
                "bytes": p.stat().st_size,
                "sha256": sha256_file(p),
            }
        out.append(info)
    return out
