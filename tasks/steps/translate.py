"""The optional translation step: English samples of chosen datasets → a new dataset ``<name>_<suffix>``.

Runs after ingest (and the id dedup), before quality. One ``TranslateUnit``
per source samples shard, run by ``TranslateStep`` on an actor pool (the LLM is
loaded once per actor, and a model that fails to load is one error before any
shard runs). A unit writes ``samples/<name>_<suffix>/<shard>-NNN.parquet``
(translated rows: new id, the source's image reference, ``source_key`` = the
source sample's id, ``source`` = ``translate:<dataset>/<sample_id>``) and
quarantines each refused translation (``translation_failed``, with the reason)
under the new dataset. The new dataset's manifest carries ingest-like totals
(records in = samples picked), so the run's accounting balances; from there it
runs through quality, signals and combine like any dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from magicvl.model.backends.generate import Generator, load_generator
from magicvl.scoring.translate import (
    TranslateConfig,
    is_english,
    picked,
    source_pointer,
    translate_conversations,
    translated_row,
)
from magicvl.storage.fingerprint import model_identity, sample_id
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import write_folder_manifest
from magicvl.storage.options import StorageOptions
from magicvl.storage.outfs import as_path
from magicvl.storage.readers import column_values, list_shards, read_table
from magicvl.storage.schema import QUARANTINE_SCHEMA, SAMPLE_SCHEMA
from magicvl.tasks.resources import StepResources
from magicvl.tasks.shards import samples_shards
from magicvl.tasks.step import Step, StepStats
from magicvl.tasks.steps.ingest.dedup import DEDUP_PREFIX
from magicvl.tasks.steps.quality.units import ShardUnit
from magicvl.tasks.unit import Outputs, UnitKey, sweep

if TYPE_CHECKING:
    from magicvl.tasks.recipe import Recipe

TRANSLATE_VERSION = "1"
QUARANTINE_PREFIX = "translate-"


class TranslateUnit(ShardUnit):
    """The translations of one source samples shard (``duplicates``: the dataset's id-dedup quarantine files,
    whose later copies are not translated)."""

    step = "translate"

    def __init__(self, dataset: str, shard: dict, cfg: TranslateConfig, duplicates: tuple[str, ...], out_root: str,
                 storage: StorageOptions) -> None:  # fmt: skip
        super().__init__(dataset, shard, out_root, storage)
        self.cfg, self.duplicates = cfg, duplicates

    @property
    def target(self) -> str:
        return self.cfg.target(self.dataset)

    def key(self) -> UnitKey:
        params = {"cfg": self.cfg.model_dump(mode="json"), "duplicates": [Path(p).name for p in self.duplicates]}
        return UnitKey(self.shard["sha256"], self.step, TRANSLATE_VERSION, params, model_identity(self.cfg.model))

    def load_backend(self) -> Generator:
        return load_generator(self.cfg.backend, self.cfg.model, **self.cfg.load_options())

    def model_ref(self) -> str | None:
        return self.cfg.model

    def chosen(self) -> pa.Table:
        """The shard's rows to translate: first copies of an id, English, picked by the seeded draw."""
        table = read_table(self.shard["path"])
        later = set(column_values(list(self.duplicates), "source")) if self.duplicates else set()
        cfg = self.cfg
        keep = [src not in later and picked(sid, cfg.seed, cfg.share) and is_english(conv, cfg.min_latin_share)
                for sid, src, conv in zip(table.column("sample_id").to_pylist(), table.column("source").to_pylist(),
                                          table.column("conversations").to_pylist())]  # fmt: skip
        return table.filter(pa.array(keep, pa.bool_()))

    def compute(self, out: Outputs, backend: Generator) -> dict[str, Any]:
        rows = self.chosen().to_pylist()
        results = translate_conversations(backend, self.cfg, [r["conversations"] for r in rows])
        layout, target = self.layout, self.target
        ok = [translated_row(r, t.conversation, target) for r, t in zip(rows, results) if t.error is None]
        failed = [
            {"dataset": target, "source": source_pointer(r["dataset"], r["sample_id"]),
             "sample_id": sample_id(target, r["sample_id"]), "step": "translate", "error_kind": "translation_failed",
             "error": t.error, "raw": None, "raw_truncated": False}  # fmt: skip
            for r, t in zip(rows, results)
            if t.error is not None
        ]
        samples = out.writer(layout.samples_dir(target), self.stem, SAMPLE_SCHEMA)
        if ok:
            samples.write(pa.Table.from_pylist(ok, schema=SAMPLE_SCHEMA))
        shards = out.close(samples)
        out.own(layout.quarantine_dir(target), f"{QUARANTINE_PREFIX}{self.stem}-")
        if failed:
            out.writer(layout.quarantine_dir(target), f"{QUARANTINE_PREFIX}{self.stem}", QUARANTINE_SCHEMA).write_rows(
                failed
            )
        return {"dataset": self.dataset, "target": target, "shard": self.stem, "picked": len(rows),
                "translated": len(ok), "failed": len(failed), "shards": shards}  # fmt: skip


class TranslateStep(Step):
    """``TranslateUnit``s of the chosen datasets on an actor pool (the LLM loaded once per actor)."""

    name, pool = "translate", "actors"

    def __init__(self, recipe: Recipe, force: bool = False) -> None:
        super().__init__(recipe, force)
        cfg: TranslateConfig = recipe.translate
        if (local := recipe.path(cfg.model)) is not None and local.exists():  # a local folder: made absolute
            cfg = cfg.model_copy(update={"model": str(local)})
        self.cfg, self.layout = cfg, OutputLayout(recipe.output_root)

    def resources(self) -> StepResources:
        return self.recipe.resources.translate

    def units(self) -> list[TranslateUnit]:
        shards = samples_shards(self.recipe, self.cfg.datasets)
        units = []
        for ds in self.cfg.datasets:
            qdir = self.layout.quarantine_dir(ds)
            dups = tuple(str(p) for p in list_shards(qdir) if p.name.startswith(DEDUP_PREFIX))
            units += [TranslateUnit(ds, s, self.cfg, dups, str(self.layout.root), self.recipe.storage)
                      for s in sorted(shards[ds], key=lambda s: s["path"])]  # fmt: skip
        return units

    def finish(self, results: list[dict[str, Any]], stats: StepStats) -> dict[str, Any]:
        totals = {ds: _finish_dataset(self.recipe, self.layout, self.cfg.target(ds),
                                      [r for r in results if r["dataset"] == ds])
                  for ds in self.cfg.datasets}  # fmt: skip
        return {"units": stats.units, "cached": stats.cached, "datasets": totals, "seconds": stats.seconds}


def translate(recipe: Recipe, force: bool = False) -> dict[str, Any]:
    """Translate the recipe's chosen datasets (nothing when ``translate`` is not configured)."""
    return {} if recipe.translate is None else TranslateStep(recipe, force).run()


def _finish_dataset(recipe: Recipe, layout: OutputLayout, target: str, results: list[dict]) -> dict[str, Any]:
    """Sweep what the translated dataset no longer holds; write its samples manifest with its totals."""
    shards = [sh for r in results for sh in r["shards"]]
    sweep(layout.samples_dir(target), {sh["path"] for sh in shards})
    qdir = layout.quarantine_dir(target)
    keep_q = {o["path"] for r in results for o in r["outputs"] if as_path(o["path"]).parent == qdir}
    sweep(qdir, keep_q, QUARANTINE_PREFIX)
    failed = sum(r["failed"] for r in results)
    totals = {
        "records_in": sum(r["picked"] for r in results),
        "samples": sum(r["translated"] for r in results),
        "quarantined": {"translation_failed": failed} if failed else {},
        "duplicates": 0,
    }
    write_folder_manifest(layout.samples_dir(target), shards, recipe.digest(), {"dataset": target, "ingest": totals})
    return totals
