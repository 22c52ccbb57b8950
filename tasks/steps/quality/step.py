"""The quality step over a recipe: filters, categories, judges, cross-dataset dedup, verdicts.

Runs after ingest (and the id dedup), before signals. The model-free parts of a
shard (filter measures, label categories, dedup hashes) run as one plain Ray task
(``shard_pass``); the VLM classifier and each judge run on an actor pool
(``run_on_actors``: the model is loaded once per actor (``Unit.setup``),
and a model that fails to load is one error before any of its units runs), first.
Dedup is a map (those per-shard hashes) and a reduce in the driver; verdicts follow.
Every part is a cached unit: a threshold edit re-runs only the verdicts.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from magicvl.scoring.categorize import CategorizeConfig
from magicvl.scoring.judge import JudgeConfig
from magicvl.scoring.review import inspection_category, load_decision
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import read_folder_manifest, write_folder_manifest
from magicvl.storage.outfs import as_path
from magicvl.tasks.executor import pending, run_tasks
from magicvl.tasks.resources import StepResources
from magicvl.tasks.shards import samples_shards
from magicvl.tasks.step import Step, StepStats
from magicvl.tasks.steps.quality.dedup_near import shard_hashes
from magicvl.tasks.steps.quality.units import CategorizeUnit, DuplicatesUnit, JudgeUnit, MeasureUnit
from magicvl.tasks.steps.quality.verdicts import VerdictUnit

if TYPE_CHECKING:
    from magicvl.tasks.recipe import Recipe

Shards = list[tuple[str, dict]]  # (dataset, samples shard entry) in recipe order


def recipe_shards(recipe: Recipe) -> Shards:
    """Every samples shard, dataset order then source (path) order."""
    by_ds = samples_shards(recipe)
    return [(cfg.name, s) for cfg in recipe.all_datasets for s in sorted(by_ds[cfg.name], key=lambda s: s["path"])]


def _model(recipe: Recipe, ref: Any) -> Any:
    """The config with its model path made absolute when it names a local folder."""
    p = recipe.path(ref.model)
    return ref.model_copy(update={"model": str(p)}) if p is not None and p.exists() else ref


def _summary(results: list[dict], executor: str) -> dict[str, Any]:
    return {"units": len(results), "cached": sum(r["cached"] for r in results), "executor": executor,
            "worker_s": round(sum(r.get("seconds", 0.0) for r in results if not r["cached"]), 3)}  # fmt: skip


def _fresh_by_shard(results: list[dict]) -> dict[tuple[str, str], float]:
    """(dataset, shard) → seconds of its units that ran (cached ones spent none)."""
    out: dict[tuple[str, str], float] = {}
    for r in results:
        if not r["cached"]:
            out[(r["dataset"], r["shard"])] = out.get((r["dataset"], r["shard"]), 0.0) + r.get("seconds", 0.0)
    return out


def shard_costs(verdicts: list[dict], measured: list[dict], models: list[dict]) -> list[dict[str, Any]]:
    """Per samples shard, the worker-seconds the quality step spent on it (its model-free pass, judges, VLM
    classifier and verdicts) and its rows; ``cached`` when its verdicts were reused (``tasks.costs``)."""
    extra = _fresh_by_shard(models)
    out = []
    for v, m in zip(verdicts, measured):
        key = (v["dataset"], v["shard"])
        seconds = m.get("pass_s", 0.0) + extra.get(key, 0.0) + (0.0 if v["cached"] else v.get("seconds", 0.0))
        out.append({"dataset": key[0], "shard": key[1], "rows": v["rows"], "seconds": round(seconds, 3),
                    "cached": v["cached"]})  # fmt: skip
    return out


class ModelStep(Step):
    """The units of one model (a judge, or the VLM classifier) over every shard, on its own actor pool."""

    pool = "actors"

    def __init__(self, recipe: Recipe, name: str, units: list, resources: StepResources, force: bool) -> None:
        super().__init__(recipe, force)
        self.name, self._units, self._resources = name, units, resources

    def resources(self) -> StepResources:
        return self._resources

    def units(self) -> list:
        return self._units

    def finish(self, results: list[dict[str, Any]], stats: StepStats) -> list[dict[str, Any]]:
        return results


def _on_models(units: list, name: str, recipe: Recipe, res: StepResources, force: bool) -> list[dict]:
    return ModelStep(recipe, name, units, res, force).run()


def categorize_units(recipe: Recipe, shards: Shards) -> list[CategorizeUnit]:
    """One ``CategorizeUnit`` per shard (the VLM's model path made absolute when ``categorize.method`` is vlm)."""
    cfg: CategorizeConfig = recipe.categorize
    if cfg.vlm is not None:
        cfg = cfg.model_copy(update={"vlm": _model(recipe, cfg.vlm)})
    inspection = {d.name: inspection_category(load_decision(recipe.path(d.review))) if d.review else None
                  for d in recipe.all_datasets}  # fmt: skip
    root = str(recipe.output_root)
    return [CategorizeUnit(ds, s, cfg.for_dataset(ds), inspection[ds], root, recipe.storage) for ds, s in shards]


def categorize_on_models(recipe: Recipe, units: list[CategorizeUnit], force: bool = False) -> dict:
    """The VLM classifier over every shard (``categorize.method: vlm``), on its own actor pool."""
    res = _on_models(units, "categorize", recipe, recipe.resources.categorize, force)
    return {**_summary(res, "actors"), "vlm_datasets": sorted({r["dataset"] for r in res}),
            "vlm_unparsed": sum(r.get("vlm_errors", 0) for r in res), "results": res}  # fmt: skip


def judges(recipe: Recipe, shards: Shards, force: bool = False) -> tuple[dict[str, list[JudgeUnit]], dict]:
    """Each configured judge over every shard, on its own actor pool."""
    out, summary = {}, {}
    for name in ("coherence", "hallucination"):
        cfg: JudgeConfig | None = getattr(recipe.judge, name)
        if cfg is None:
            continue
        cfg = _model(recipe, cfg)
        units = [JudgeUnit(name, ds, s, cfg, str(recipe.output_root), recipe.storage) for ds, s in shards]
        res = _on_models(units, f"judge:{name}", recipe, recipe.resources.judge, force)
        out[name] = units
        summary[name] = {**_summary(res, "actors"), "status": dict(sum((Counter(r["status"]) for r in res),
                                                                       Counter())), "results": res}  # fmt: skip
    return out, summary


def _dup_unit(recipe: Recipe, shards: Shards) -> DuplicatesUnit:
    return DuplicatesUnit(shards, recipe.dedup, recipe.ingest.max_image_bytes, str(recipe.output_root),
                          recipe.storage)  # fmt: skip


def _reduce_duplicates(unit: DuplicatesUnit, hashes: list | None, done: dict | None) -> dict:
    """The duplicates table from the map's per-shard hashes (the reduce unit's backend), or ``done``:
    the unit found complete (``tasks.executor.pending``)."""
    if hashes is not None:
        done = unit.run(force=True, backend=hashes)
    return {k: done[k] for k in ("rows", "duplicates", "image_errors", "cached")}


def shard_pass(units: list[Any], hash_args: tuple | None, force: bool) -> tuple[list[dict], Any, float]:
    """One Ray task per samples shard for the model-free parts of the quality step: its units
    (filter measures, label categories) one after another, then its dedup hashes when asked; and
    the task's seconds. One fan-out instead of three: the parts are tiny and each fan-out costs a
    round of task latency."""
    t0 = time.perf_counter()
    done = [u.run(force) for u in units]
    return done, (shard_hashes(*hash_args) if hash_args is not None else None), time.perf_counter() - t0


def model_free(
    recipe: Recipe, shards: Shards, measure_units: list[MeasureUnit], cat_units: list[CategorizeUnit], force: bool
) -> tuple[list[dict], list[dict] | None, DuplicatesUnit, dict]:
    """Filter measures, categories (of the shards no VLM categorizes: ``categorize_on_models``) and
    the dedup map in one fan-out, then the dedup reduce. Returns (measure summaries, those category
    summaries, the duplicates unit, its summary)."""
    dup_unit = _dup_unit(recipe, shards)
    (done,), todo = pending([dup_unit], force)  # the map runs only when the reduce must
    need_hashes = bool(todo)
    hash_args = [(s["path"], recipe.dedup, recipe.ingest.max_image_bytes) if need_hashes else None for _, s in shards]
    calls = [([m] if c.uses_vlm else [m, c], h, force) for m, c, h in zip(measure_units, cat_units, hash_args)]
    res = recipe.resources.quality
    out = run_tasks(shard_pass, calls, "quality:model-free", res, recipe.ray.max_in_flight, recipe.ray.task_retries)
    measured = [{**r[0][0], "pass_s": round(r[2], 3)} for r in out]  # the shard's model-free pass seconds
    cats = [r[0][1] for r in out if len(r[0]) > 1]  # shards the rules (or labels) categorize
    dup_summary = _reduce_duplicates(dup_unit, [r[1] for r in out] if need_hashes else None, done)
    dup_summary["map_worker_s"] = round(sum(r[2] for r in out), 3)  # measures, categories and hashes per shard
    return measured, cats, dup_unit, dup_summary


def quality(recipe: Recipe, force: bool = False) -> dict[str, Any]:
    """Measures, categories, judges, duplicates → one verdict per sample (``quality/verdicts/``)."""
    t0 = time.perf_counter()
    root = str(recipe.output_root)
    shards = recipe_shards(recipe)
    res = recipe.resources.quality
    judge_units, judge_summary = judges(recipe, shards, force)  # models first: a bad one fails before the rest
    cat_units = categorize_units(recipe, shards)
    cat_summary: dict = {}
    if vlm_units := [u for u in cat_units if u.uses_vlm]:  # a VLM categorizes these: its own actor pool, models first
        cat_summary = categorize_on_models(recipe, vlm_units, force)
    measure_units = [MeasureUnit(ds, s, recipe.filters, root, recipe.storage, res.batch_size) for ds, s in shards]
    measured, cats, dup_unit, dup_summary = model_free(recipe, shards, measure_units, cat_units, force)
    if cats:
        by_rules = _summary(cats, "tasks")
        cat_summary = by_rules if not cat_summary else {**cat_summary, "executor": "actors+tasks",
                                                         **{k: cat_summary[k] + by_rules[k] for k in by_rules
                                                            if k != "executor"}}  # fmt: skip
    dup_key = dup_unit.key().digest()
    verdict_units = [
        VerdictUnit(ds, s, recipe.filters, recipe.categorize.drop_uncategorized,
                    (str(m.path()), m.key().digest()), (str(c.path()), c.key().digest()),
                    {n: (str(us[i].path()), us[i].key().digest()) for n, us in judge_units.items()},
                    (str(dup_unit.path(ds, m.stem)), dup_key), root, recipe.storage)  # fmt: skip
        for i, ((ds, s), m, c) in enumerate(zip(shards, measure_units, cat_units))
    ]
    verdicts = VerdictsStep(recipe, verdict_units, force).run()
    models = [r for j in judge_summary.values() for r in j.pop("results")] + cat_summary.pop("results", [])
    dropped = sum((Counter(r["dropped"]) for r in verdicts), Counter())
    sources = sum((Counter(r["sources"]) for r in verdicts), Counter())
    return {
        "measures": _summary(measured, "tasks"),
        "categorize": {**cat_summary, "sources": dict(sources)},
        "judge": judge_summary,
        "dedup": dup_summary,
        "verdicts": _summary(verdicts, "tasks"),
        "dropped_by_rule": dict(dropped.most_common()),
        "seconds": round(time.perf_counter() - t0, 3),
        "results": shard_costs(verdicts, measured, models),  # per shard, for the run's costs (not the manifest)
    }


class VerdictsStep(Step):
    """One ``VerdictUnit`` per shard (plain tasks); finishing writes the verdicts folders' manifests."""

    name = "verdicts"

    def __init__(self, recipe: Recipe, units: list[VerdictUnit], force: bool) -> None:
        super().__init__(recipe, force)
        self._units = units

    def resources(self) -> StepResources:
        return self.recipe.resources.quality

    def units(self) -> list[VerdictUnit]:
        return self._units

    def finish(self, results: list[dict[str, Any]], stats: StepStats) -> list[dict[str, Any]]:
        layout = OutputLayout(self.recipe.output_root)
        for cfg in self.recipe.all_datasets:
            folder = layout.quality_dir("verdicts", cfg.name)
            mine = [o for r in results for o in r["outputs"] if as_path(o["path"]).parent == folder]
            write_folder_manifest(folder, mine, self.recipe.digest(), {"dataset": cfg.name})
        return results


def summary_line(q: dict[str, Any]) -> str:
    """One line for the run summary: where categories came from, drops per rule, cache reuse."""
    cat = q["categorize"]
    src = ", ".join(f"{k} {n}" for k, n in sorted(cat["sources"].items())) or "none"
    if cat.get("vlm_datasets"):  # the VLM classifier ran: where, and how many answers fell back to the rules
        src += f" (VLM classifier on {', '.join(cat['vlm_datasets'])}: {cat['vlm_unparsed']} answers unparsed → rules)"
    drops = ", ".join(f"{k} {n}" for k, n in q["dropped_by_rule"].items()) or "none"
    return (f"quality: categories from {src}; dropped by filters/dedup/judges: {drops}; "
            f"filter measures {q['measures']['cached']} of {q['measures']['units']} shards cached")  # fmt: skip


def verdict_paths(recipe: Recipe) -> dict[tuple[str, str], tuple[str, str]]:
    """(dataset, shard stem) → (verdicts file, its SHA-256), from the verdicts manifests (for combine)."""
    layout = OutputLayout(recipe.output_root)
    out = {}
    for cfg in recipe.all_datasets:
        folder = layout.quality_dir("verdicts", cfg.name)
        m = read_folder_manifest(folder)
        for s in (m or {}).get("shards", []):
            p = folder / s["path"]
            out[(cfg.name, p.name.removesuffix(".parquet"))] = (str(p), s["sha256"])
    return out
