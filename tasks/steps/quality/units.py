"""The quality step's units of work, one samples shard each (``tasks.unit.Unit``).

* ``MeasureUnit``: every enabled filter's measures (key: the measure identity
  only, so a threshold edit reuses them).
* ``CategorizeUnit``: category and its source (label, inspection, vlm, rules);
  the VLM classifier is the unit's backend (one load per actor).
* ``JudgeUnit``: one configured LLM/VLM judge's answers and policy verdicts.
* ``DuplicatesUnit``: the run-wide duplicates table (reduce of per-shard hashes),
  also split into one file per samples shard so a verdict unit reads only its own rows.

``tasks.steps.quality.verdicts`` turns their outputs into one fate per sample.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from magicvl.model.backends.generate import Generator, load_generator
from magicvl.scoring.categorize import CategorizeConfig
from magicvl.scoring.dedup import DedupConfig
from magicvl.scoring.filters.config import FiltersConfig
from magicvl.scoring.judge import JudgeConfig
from magicvl.storage.fingerprint import model_identity, stable_hash
from magicvl.storage.options import StorageOptions
from magicvl.tasks.steps.quality.dedup_near import ShardHashes, resolve, shard_hashes
from magicvl.tasks.steps.quality.shard import categorize_shard, filter_shard, judge_shard
from magicvl.tasks.unit import Outputs, Unit, UnitKey

QUALITY_VERSION = "1"
DUPLICATES_VERSION = "4"  # 2: also split per samples shard; 3: hashes from ingestion (luma at HASH_SIDE); 4: hash_thumb


def shard_stem(path: str) -> str:
    return Path(path).name.removesuffix(".parquet")


class ShardUnit(Unit):
    """A unit over one samples shard of one dataset (``shard``: its manifest entry with path and sha256)."""

    def __init__(self, dataset: str, shard: dict[str, Any], out_root: str, storage: StorageOptions) -> None:
        super().__init__(out_root, storage)
        self.dataset, self.shard = dataset, shard

    @property
    def stem(self) -> str:
        return shard_stem(self.shard["path"])

    @property
    def marker_name(self) -> str:
        return f"{self.dataset}/{self.stem}"


class MeasureUnit(ShardUnit):
    """``quality/filter_measures/<dataset>/<shard>-<key>.parquet``: every enabled filter's measures."""

    step = "filter_measures"

    def __init__(self, dataset: str, shard: dict, cfg: FiltersConfig, out_root: str, storage: StorageOptions,
                 batch_size: int = 1024) -> None:  # fmt: skip
        super().__init__(dataset, shard, out_root, storage)
        self.cfg, self.batch_size = cfg, batch_size

    def key(self) -> UnitKey:
        return UnitKey(self.shard["sha256"], self.step, QUALITY_VERSION, {"measures": self.cfg.measure_identity()})

    def path(self) -> Path:
        return self.layout.quality_dir(self.step, self.dataset) / f"{self.stem}-{self.key().digest()[:16]}.parquet"

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        measures, _ = filter_shard(self.shard["path"], self.cfg, self.batch_size)
        out.table(self.path(), measures, f"{self.stem}-")
        return {"dataset": self.dataset, "shard": self.stem, "rows": measures.num_rows}


class CategorizeUnit(ShardUnit):
    """``quality/categories/<dataset>/<shard>.parquet``: category and category_source per sample."""

    step = "categorize"

    def __init__(self, dataset: str, shard: dict, cfg: CategorizeConfig, inspection: str | None, out_root: str,
                 storage: StorageOptions) -> None:  # fmt: skip
        super().__init__(dataset, shard, out_root, storage)
        self.cfg, self.inspection = cfg, inspection

    @property
    def uses_vlm(self) -> bool:
        return self.cfg.method == "vlm" and self.cfg.vlm is not None

    def key(self) -> UnitKey:
        params = {"cfg": self.cfg.model_dump(mode="json"), "inspection": self.inspection}
        model = model_identity(self.cfg.vlm.model) if self.uses_vlm else None
        return UnitKey(self.shard["sha256"], self.step, QUALITY_VERSION, params, model)

    def path(self) -> Path:
        return self.layout.quality_dir("categories", self.dataset) / f"{self.stem}.parquet"

    def load_backend(self) -> Generator | None:
        vlm = self.cfg.vlm
        return load_generator(vlm.backend, vlm.model, **vlm.load_options()) if self.uses_vlm else None

    def model_ref(self) -> str | None:
        return self.cfg.vlm.model if self.uses_vlm else None

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        t = categorize_shard(self.shard["path"], self.cfg, self.inspection, backend)
        out.table(self.path(), t, f"{self.stem}.")
        errors = sum(e is not None for e in t.column("vlm_error").to_pylist())
        sources = Counter(t.column("category_source").to_pylist())
        return {"dataset": self.dataset, "shard": self.stem, "sources": dict(sources), "vlm_errors": errors}


class JudgeUnit(ShardUnit):
    """``quality/judge-<name>/<dataset>/<shard>.parquet``: one judge's status, keep, detail, raw answer."""

    step = "judge"

    def __init__(self, name: str, dataset: str, shard: dict, cfg: JudgeConfig, out_root: str,
                 storage: StorageOptions) -> None:  # fmt: skip
        super().__init__(dataset, shard, out_root, storage)
        self.name, self.cfg = name, cfg

    @property
    def marker_name(self) -> str:
        return f"{self.name}/{self.dataset}/{self.stem}"

    def key(self) -> UnitKey:
        params = {"judge": self.name, "cfg": self.cfg.model_dump(mode="json")}
        return UnitKey(self.shard["sha256"], self.step, QUALITY_VERSION, params, model_identity(self.cfg.model))

    def path(self) -> Path:
        return self.layout.quality_dir(f"judge-{self.name}", self.dataset) / f"{self.stem}.parquet"

    def load_backend(self) -> Generator:
        return load_generator(self.cfg.backend, self.cfg.model, **self.cfg.load_options())

    def model_ref(self) -> str | None:
        return self.cfg.model

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        t = judge_shard(self.shard["path"], self.name, backend, self.cfg, self.cfg.batch_size)
        out.table(self.path(), t, f"{self.stem}.")
        return {"dataset": self.dataset, "shard": self.stem, "judge": self.name,
                "status": dict(Counter(t.column("status").to_pylist()))}  # fmt: skip


def first_ids_only(hashes: list[ShardHashes]) -> list[ShardHashes]:
    """The hashes without later repeats of a (dataset, sample_id): those rows are the id-dedup
    step's (quarantined as ``duplicate_id``), and leaving them out keeps the duplicates table keyed by id."""
    seen: set[tuple[str, str]] = set()
    out = []
    for h in hashes:
        keep = np.zeros(len(h.sample_ids), dtype=bool)
        for i, key in enumerate(zip(h.datasets, h.sample_ids)):
            keep[i] = key not in seen
            seen.add(key)
        idx = np.flatnonzero(keep)
        out.append(
            ShardHashes(
                [h.sample_ids[i] for i in idx], [h.datasets[i] for i in idx], h.exact[idx], h.text[idx],
                h.image[idx], h.has_image[idx], None if h.bands is None else h.bands[idx], h.errors,
            )  # fmt: skip
        )
    return out


class DuplicatesUnit(Unit):
    """``quality/duplicates/duplicates.parquet``: every later copy across the run, naming the kept one;
    ``quality/duplicates/<dataset>/<shard>.parquet``: the same rows split by the shard holding the copy
    (one file per shard, possibly empty), so each verdict unit reads only its shard's rows (memory
    bounded per shard, not per run).

    ``shards`` are (dataset, shard) in recipe order (dataset order, then source
    order); the map's per-shard hashes (same order) are handed in as ``run(backend=...)``
    (``tasks.step.reduce_after_map``), else computed here.
    """

    step = "duplicates"
    marker_name = "run"

    def __init__(self, shards: list[tuple[str, dict]], cfg: DedupConfig, max_image_bytes: int, out_root: str,
                 storage: StorageOptions) -> None:  # fmt: skip
        super().__init__(out_root, storage)
        self.shards, self.cfg, self.max_image_bytes = shards, cfg, max_image_bytes

    def key(self) -> UnitKey:
        shas = [(ds, shard_stem(s["path"]), s["sha256"]) for ds, s in self.shards]
        return UnitKey(stable_hash(shas), self.step, DUPLICATES_VERSION, {"cfg": self.cfg.model_dump(mode="json")})

    def path(self, dataset: str | None = None, stem: str | None = None) -> Path:
        """The run-wide table, or (with ``dataset`` and ``stem``) one shard's part of it."""
        if dataset is None:
            return self.layout.quality_dir("duplicates") / "duplicates.parquet"
        return self.layout.quality_dir("duplicates", dataset) / f"{stem}.parquet"

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        hashes: list[ShardHashes] | None = backend
        if hashes is None:
            hashes = [shard_hashes(s["path"], self.cfg, self.max_image_bytes) for _, s in self.shards]
        firsts = first_ids_only(hashes)
        table = resolve(firsts, self.cfg)
        out.table(self.path(), table, "duplicates.")
        self._write_per_shard(out, firsts, table)
        return {
            "rows": sum(len(h.sample_ids) for h in hashes),
            "duplicates": dict(Counter(table.column("kind").to_pylist())),
            "image_errors": sum(len(h.errors) for h in hashes),
        }

    def _write_per_shard(self, out: Outputs, hashes: list[ShardHashes], table: pa.Table) -> None:
        """One file per shard with the duplicates table's rows whose copy lives in that shard."""
        where = {(d, sid): k for k, h in enumerate(hashes) for d, sid in zip(h.datasets, h.sample_ids)}
        t = table.to_pydict()
        shard_of = np.array([where[(d, sid)] for d, sid in zip(t["dataset"], t["sample_id"])], dtype=np.int64)
        for k, (ds, s) in enumerate(self.shards):
            stem = shard_stem(s["path"])
            out.table(self.path(ds, stem), table.filter(pa.array(shard_of == k, pa.bool_())), f"{stem}.")
