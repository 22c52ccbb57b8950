"""Duplicate sample ids within a dataset, as a step of its own: ``DedupUnit``.

Runs after every chunk of the dataset is ingested and reads only the
``sample_id`` and ``source`` columns. The first occurrence (source order:
shard order, then row order) is kept; every later one is written to the
dataset's quarantine as ``duplicate_id`` with an error naming the first
occurrence. Ingest's shards and markers are left as they are: combine and the
accounting read this table and treat those rows as quarantined.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from magicvl.storage.fingerprint import stable_hash
from magicvl.storage.options import StorageOptions
from magicvl.storage.readers import duplicate_rows, read_rows
from magicvl.storage.schema import QUARANTINE_SCHEMA
from magicvl.tasks.unit import Outputs, Unit, UnitKey

DEDUP_VERSION = "1"
DEDUP_PREFIX = "dedup-"  # quarantine file names of this step


class DedupUnit(Unit):
    """Later duplicates of a dataset's sample ids → ``quarantine/<dataset>/dedup-*.parquet``."""

    step = "dedup"

    def __init__(self, dataset: str, shards: list[dict[str, Any]], out_root: str, storage: StorageOptions) -> None:
        super().__init__(out_root, storage)
        self.dataset = dataset
        self.shards = sorted(shards, key=lambda s: s["path"])

    @property
    def marker_name(self) -> str:
        return self.dataset

    def key(self) -> UnitKey:
        shas = [(Path(s["path"]).name, s["sha256"]) for s in self.shards]
        return UnitKey(stable_hash(shas), "dedup", DEDUP_VERSION, {"storage": self.storage.model_dump()})

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        paths = [s["path"] for s in self.shards]
        qdir = self.layout.quarantine_dir(self.dataset)
        out.own(qdir, DEDUP_PREFIX)
        later = duplicate_rows(paths)
        if later:
            w = out.writer(qdir, DEDUP_PREFIX.rstrip("-"), QUARANTINE_SCHEMA)
            for shard_idx, rows in sorted(later.items()):
                w.write_rows(self._quarantine_rows(paths[shard_idx], rows))
        return {"dataset": self.dataset, "duplicates": sum(len(r) for r in later.values())}

    def _quarantine_rows(self, path: str, rows: list[tuple[int, str]]) -> list[dict[str, Any]]:
        records = read_rows(path, [r for r, _ in rows], ["sample_id", "source", "source_key", "conversations"])
        out = []
        for rec, (_, first) in zip(records, rows, strict=True):
            raw = json.dumps(
                {"source_key": rec["source_key"], "conversations": rec["conversations"]}, ensure_ascii=False
            )
            out.append(
                {
                    "dataset": self.dataset,
                    "source": rec["source"],
                    "sample_id": rec["sample_id"],
                    "step": "dedup",
                    "error_kind": "duplicate_id",
                    "error": f"duplicate sample_id {rec['sample_id']} (record key {rec['source_key']!r}); "
                    f"first seen at {first}",
                    "raw": raw[:4096],
                    "raw_truncated": len(raw) > 4096,
                }
            )
        return out


def dedup_dataset(dataset: str, shards: list[dict[str, Any]], out_root: str, storage: StorageOptions,
                  force: bool = False) -> dict[str, Any]:  # fmt: skip
    """Run the ``DedupUnit`` of one dataset; returns {dataset, duplicates, outputs, cached, ...}."""
    return DedupUnit(dataset, shards, out_root, storage).run(force)
