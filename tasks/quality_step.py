"""The quality step over a recipe: filters, categories, judges, cross-dataset dedup, verdicts.

Runs after ingest (and the id dedup), before signals. Model-free parts run as
plain Ray tasks; the VLM classifier and each judge run on an actor pool
(``run_on_actors`` with ``GeneratorActor``: the model is loaded once per actor,
and a model that fails to load is one error before any of its units runs).
Dedup is a map (per-shard hashes, Ray tasks) and a reduce in the driver.
Every part is a cached unit: a threshold edit re-runs only the verdicts.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from magicvl.flows.review import inspection_category, load_decision
from magicvl.model.backends.generate import load_generator
from magicvl.scoring.categorize import CategorizeConfig
from magicvl.scoring.judge import JudgeConfig
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import read_folder_manifest, write_folder_manifest
from magicvl.storage.outfs import as_path
from magicvl.tasks.dedup_near import shard_hashes
from magicvl.tasks.executor import run_on_actors, run_tasks, run_units
from magicvl.tasks.quality_units import CategorizeUnit, DuplicatesUnit, JudgeUnit, MeasureUnit
from magicvl.tasks.verdict import VerdictUnit

if TYPE_CHECKING:
    from magicvl.flows.recipe import Recipe

Shards = list[tuple[str, dict]]  # (dataset, samples shard entry) in recipe order


class GeneratorActor:
    """One generation model (``load_generator(kind, path)``, loaded once here), reused for every unit."""

    def __init__(self, kind: str, path: str) -> None:
        self.backend = load_generator(kind, path)

    def ready(self) -> bool:
        return True

    def run(self, unit: Any, force: bool) -> dict[str, Any]:
        return unit.run(force=force, backend=self.backend)


def recipe_shards(recipe: Recipe) -> Shards:
    """Every samples shard, dataset order then source (path) order."""
    from magicvl.tasks.steps import samples_shards

    by_ds = samples_shards(recipe)
    return [(cfg.name, s) for cfg in recipe.all_datasets for s in sorted(by_ds[cfg.name], key=lambda s: s["path"])]


def _model(recipe: Recipe, ref: Any) -> Any:
    """The config with its model path made absolute when it names a local folder."""
    p = recipe.path(ref.model)
    return ref.model_copy(update={"model": str(p)}) if p is not None and p.exists() else ref


def _summary(results: list[dict], executor: str) -> dict[str, Any]:
    return {"units": len(results), "cached": sum(r["cached"] for r in results), "executor": executor}


def _on_models(units: list, name: str, kind: str, path: str, recipe: Recipe, res, force: bool) -> list[dict]:
    return run_on_actors(units, name, kind, path, res, recipe.ray.task_retries, force, actor=GeneratorActor)


def categorize(recipe: Recipe, shards: Shards, force: bool = False) -> tuple[list[CategorizeUnit], dict]:
    """Category and source of every sample (VLM on actors when ``categorize.method`` is vlm)."""
    cfg: CategorizeConfig = recipe.categorize
    if cfg.vlm is not None:
        cfg = cfg.model_copy(update={"vlm": _model(recipe, cfg.vlm)})
    inspection = {d.name: inspection_category(load_decision(recipe.path(d.review))) if d.review else None
                  for d in recipe.all_datasets}  # fmt: skip
    root = str(recipe.output_root)
    units = [CategorizeUnit(ds, s, cfg, inspection[ds], root, recipe.storage) for ds, s in shards]
    if units and units[0].uses_vlm:
        res = _on_models(units, "categorize", cfg.vlm.backend, cfg.vlm.model, recipe, recipe.resources.categorize,
                         force)  # fmt: skip
        return units, _summary(res, "actors")
    res = run_units(units, "categorize", recipe.resources.quality, recipe.ray.max_in_flight,
                    recipe.ray.task_retries, force)  # fmt: skip
    return units, _summary(res, "tasks")


def judges(recipe: Recipe, shards: Shards, force: bool = False) -> tuple[dict[str, list[JudgeUnit]], dict]:
    """Each configured judge over every shard, on its own actor pool."""
    out, summary = {}, {}
    for name in ("coherence", "hallucination"):
        cfg: JudgeConfig | None = getattr(recipe.judge, name)
        if cfg is None:
            continue
        cfg = _model(recipe, cfg)
        units = [JudgeUnit(name, ds, s, cfg, str(recipe.output_root), recipe.storage) for ds, s in shards]
        res = _on_models(units, f"judge:{name}", cfg.backend, cfg.model, recipe, recipe.resources.judge, force)
        out[name] = units
        summary[name] = {**_summary(res, "actors"), "status": dict(sum((Counter(r["status"]) for r in res),
                                                                       Counter()))}  # fmt: skip
    return out, summary


def duplicates(recipe: Recipe, shards: Shards, force: bool = False) -> tuple[DuplicatesUnit, dict]:
    """Map: hashes per shard (Ray tasks); reduce: the duplicates table (skipped when cached)."""
    unit = DuplicatesUnit(shards, recipe.dedup, recipe.ingest.max_image_bytes, str(recipe.output_root),
                          recipe.storage)  # fmt: skip
    done = None if force else unit.finished()
    if done is None:
        calls = [(s["path"], recipe.dedup, recipe.ingest.max_image_bytes) for _, s in shards]
        res = recipe.resources.quality
        unit.hashes = run_tasks(shard_hashes, calls, "dedup:hashes", res, recipe.ray.max_in_flight,
                                recipe.ray.task_retries)  # fmt: skip
        done = unit.run(force=True)
        unit.hashes = None
    return unit, {k: done[k] for k in ("rows", "duplicates", "image_errors", "cached")}


def quality(recipe: Recipe, force: bool = False) -> dict[str, Any]:
    """Measures, categories, judges, duplicates → one verdict per sample (``quality/verdicts/``)."""
    t0 = time.perf_counter()
    layout, root = OutputLayout(recipe.output_root), str(recipe.output_root)
    shards = recipe_shards(recipe)
    res, window, retries = recipe.resources.quality, recipe.ray.max_in_flight, recipe.ray.task_retries
    judge_units, judge_summary = judges(recipe, shards, force)  # models first: a bad one fails before the rest
    cat_units, cat_summary = categorize(recipe, shards, force)
    measure_units = [MeasureUnit(ds, s, recipe.filters, root, recipe.storage, res.batch_size) for ds, s in shards]
    measured = run_units(measure_units, "filter:measures", res, window, retries, force)
    dup_unit, dup_summary = duplicates(recipe, shards, force)
    dup_key = dup_unit.key().digest()
    verdict_units = [
        VerdictUnit(ds, s, recipe.filters, recipe.categorize.drop_uncategorized,
                    (str(m.path()), m.key().digest()), (str(c.path()), c.key().digest()),
                    {n: (str(us[i].path()), us[i].key().digest()) for n, us in judge_units.items()},
                    (str(dup_unit.path(ds, m.stem)), dup_key), root, recipe.storage)  # fmt: skip
        for i, ((ds, s), m, c) in enumerate(zip(shards, measure_units, cat_units))
    ]
    verdicts = run_units(verdict_units, "verdicts", res, window, retries, force)
    for cfg in recipe.all_datasets:
        folder = layout.quality_dir("verdicts", cfg.name)
        mine = [o for r in verdicts for o in r["outputs"] if as_path(o["path"]).parent == folder]
        write_folder_manifest(folder, mine, recipe.digest(), {"dataset": cfg.name})
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
    }


def summary_line(q: dict[str, Any]) -> str:
    """One line for the run summary: where categories came from, drops per rule, cache reuse."""
    src = ", ".join(f"{k} {n}" for k, n in sorted(q["categorize"]["sources"].items())) or "none"
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
