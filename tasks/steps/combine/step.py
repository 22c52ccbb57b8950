"""The combine step over a recipe: normalise over the population (map-reduce of statistics), score,
stage, write curated/ (``CombineUnit``); then sweep stale outputs and write the folder manifests.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from magicvl.model.costs import CostModel
from magicvl.scoring.combine import CombineConfig
from magicvl.scoring.eval_split import merge_candidates, thresholds
from magicvl.scoring.score import PopulationStats, cutoffs, decide
from magicvl.storage.fingerprint import sha256_file, stable_hash
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import write_folder_manifest
from magicvl.storage.outfs import as_path
from magicvl.storage.readers import list_shards, num_rows
from magicvl.tasks.executor import run_tasks
from magicvl.tasks.resources import StepResources
from magicvl.tasks.shards import samples_shards
from magicvl.tasks.step import Step, StepStats
from magicvl.tasks.steps.combine import units as combine_tasks
from magicvl.tasks.steps.combine.eval_split import eval_dir
from magicvl.tasks.steps.combine.retune import transitions
from magicvl.tasks.steps.ingest.dedup import DEDUP_PREFIX
from magicvl.tasks.steps.quality.step import verdict_paths
from magicvl.tasks.steps.signals.crossmodal import signal_jobs
from magicvl.tasks.steps.signals.rows import dropped_mask, skip_key
from magicvl.tasks.steps.signals.units import skipping_jobs
from magicvl.tasks.unit import sweep

if TYPE_CHECKING:
    from magicvl.tasks.recipe import Recipe


def combine_inputs(recipe: Recipe) -> list[combine_tasks.ShardInputs]:
    """Every samples shard with the signal file of each configured signal and the dataset's duplicates."""
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


class CombineStep(Step):
    """One ``CombineUnit`` per samples shard, given the population decision (``population_decision``:
    statistics reduced in the driver after their map); finishing sweeps and writes the manifests."""

    name = "combine:write"

    def __init__(self, recipe: Recipe, cfg: CombineConfig, force: bool = False) -> None:
        super().__init__(recipe, force)
        self.cfg, self.t0 = cfg, time.perf_counter()
        self.clock: list[float] = []  # seconds of the statistics/histogram/eval tasks (worker time, not units)

    def resources(self) -> StepResources:
        return self.recipe.resources.combine

    def units(self) -> list[combine_tasks.CombineUnit]:
        recipe, res = self.recipe, self.resources()
        inputs = combine_inputs(recipe)
        self.decision = population_decision(recipe, inputs, self.cfg, self.clock)
        costs, root = cost_model(recipe), str(recipe.output_root)
        return [combine_tasks.CombineUnit(i, self.cfg, self.decision, recipe.storage, root, res.batch_size, costs)
                for i in inputs]  # fmt: skip

    def finish(self, results: list[dict[str, Any]], stats: StepStats) -> dict[str, Any]:
        finish_combine(self.recipe, OutputLayout(self.recipe.output_root), results)
        return {"decision": self.decision, "results": results, "transitions": transitions(results),
                "seconds": round(time.perf_counter() - self.t0, 3),
                "passes_worker_s": round(sum(self.clock), 3)}  # fmt: skip


def combine(recipe: Recipe, cfg: CombineConfig | None = None, force: bool = False) -> dict[str, Any]:
    """Normalise over the population (map-reduce of statistics), score, stage, write curated/."""
    return CombineStep(recipe, cfg or recipe.combine, force).run()


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


def population_decision(
    recipe: Recipe, inputs: list[combine_tasks.ShardInputs], cfg: CombineConfig, clock: list[float] | None = None
) -> dict:
    """Pass 1 (statistics) and, at sample granularity, pass 2 (histograms → cutoffs), merged as they arrive;
    ``clock`` collects each pass task's worker seconds."""
    res, window, retries = recipe.resources.combine, recipe.ray.max_in_flight, recipe.ray.task_retries
    metric_axes = {j.name: j.signal.axis for j in signal_jobs(recipe)}  # vlm_loss@<model>: task, model order
    arrived: list[dict] = []  # merged in a fixed order below: float sums in arrival order differ between
    # runs in their last digits, which would change the decision's hash and recompute every combine unit

    calls = [(i, cfg) for i in inputs]
    run_tasks(combine_tasks.shard_stats, calls, "combine:stats", res, window, retries, arrived.append, clock=clock)
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
        run_tasks(combine_tasks.shard_histograms, calls, "combine:histograms", res, window, retries, add_hists,
                  clock=clock)  # fmt: skip
        decision.cutoffs = cutoffs(hists, cfg)
    out = decision.to_dict()
    if cfg.eval is not None:  # per category, the id-hash threshold of the held-out split
        out["eval"] = eval_thresholds(recipe, inputs, cfg, out, clock)
    return out


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
    ev = eval_dir(layout)
    if any(as_path(o["path"]).parent == ev for o in produced) or ev.exists():
        held = [o for o in produced if as_path(o["path"]).parent == ev]
        write_folder_manifest(ev, held, recipe.digest(), {"stage": "eval"})
    write_folder_manifest(
        layout.curated,
        [o for o in produced if layout.curated in as_path(o["path"]).parents],
        recipe.digest(),
        {"what": "curriculum, stage-1..4 (+ eval/)"},
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


def eval_thresholds(
    recipe: Recipe, inputs: list[combine_tasks.ShardInputs], cfg: CombineConfig, decision: dict[str, Any],
    clock: list[float] | None = None,
) -> dict[str, str]:
    """Per category, the largest id hash in the split (decimal strings: JSON-safe 64-bit); {} without ``eval``."""
    if cfg.eval is None:
        return {}
    res = recipe.resources.combine
    parts: list[dict] = []
    calls = [(i, cfg, decision) for i in inputs]
    ray = recipe.ray
    run_tasks(combine_tasks.shard_eval_candidates, calls, "combine:eval", res, ray.max_in_flight, ray.task_retries,
              parts.append, clock=clock)  # fmt: skip
    merged = merge_candidates(parts, cfg.eval.max_per_category)
    return {c: str(h) for c, h in thresholds(merged, cfg.eval).items()}
