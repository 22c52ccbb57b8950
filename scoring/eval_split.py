"""The held-out evaluation split, carved at curation (recipe ``combine.eval``).

Per category, the kept samples with the smallest stable hash of their ``sample_id``
form the split: ``n_c = clamp(round(share · N_c), min_per_category, max_per_category)``
of the ``N_c`` kept samples of category ``c`` (never more than ``N_c - 1``, so every
category keeps a training sample). The choice depends on the sample ids only, never on
shard order or worker count, and is exact at any scale: every shard reports its
category counts and its ``max_per_category`` smallest hashes (bounded), the driver
merges them and keeps one hash threshold per category; a sample is in the split when
its hash is at or under its category's threshold. Eval samples are kept (fate
``kept``, reason ``eval_split``), written to ``curated/eval/`` with the stage
shards' schema, and in no stage folder, so no training pack can hold them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

EVAL_REASON = "eval_split"  # the scores ledger's reason for a kept eval sample
EVAL_KEY = "eval"  # the stage label of eval samples in run summaries (``eval|<category>``)


class EvalSplit(BaseModel):
    """How many kept samples per category are held out for evaluation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    share: float = Field(default=0.05, ge=0.0, lt=1.0, description="Share of each category's kept samples.")
    min_per_category: int = Field(default=1, ge=0, description="At least this many per category (if it has more).")
    max_per_category: int = Field(default=200, ge=1, description="At most this many per category.")

    @model_validator(mode="after")
    def _bounds(self) -> EvalSplit:
        if self.min_per_category > self.max_per_category:
            raise ValueError(f"min_per_category {self.min_per_category} > max_per_category {self.max_per_category}")
        return self

    def size(self, n: int) -> int:
        """Eval samples of a category with ``n`` kept samples."""
        want = min(max(round(self.share * n), self.min_per_category), self.max_per_category)
        return max(0, min(want, n - 1))


def id_hashes(sample_ids: list[str]) -> np.ndarray:
    """uint64 per id: the first 8 bytes of blake2b(sample_id) (stable across machines and runs)."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big") for s in sample_ids),
        np.uint64,
        len(sample_ids),
    )


def shard_candidates(categories: list[str | None], kept: np.ndarray, hashes: np.ndarray, k: int) -> dict[str, Any]:
    """Per category of one shard's kept rows: their count and their ``k`` smallest hashes (as ints)."""
    out: dict[str, Any] = {}
    cats = np.array(categories, dtype=object)
    for c in sorted({c for c, keep in zip(categories, kept) if keep and c is not None}):
        h = np.sort(hashes[kept & (cats == c)])
        out[c] = {"n": int(len(h)), "smallest": [int(x) for x in h[:k]]}
    return out


def merge_candidates(parts: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """Merge shard candidates: total count and the ``k`` smallest hashes per category."""
    out: dict[str, Any] = {}
    for part in parts:
        for c, v in part.items():
            cur = out.setdefault(c, {"n": 0, "smallest": []})
            cur["n"] += v["n"]
            cur["smallest"] = sorted(cur["smallest"] + v["smallest"])[:k]
    return out


def thresholds(merged: dict[str, Any], cfg: EvalSplit) -> dict[str, int]:
    """Per category, the largest hash in the split (categories with an empty split are absent)."""
    out = {}
    for c in sorted(merged):
        n = cfg.size(merged[c]["n"])
        if n > 0:
            out[c] = merged[c]["smallest"][n - 1]
    return out


def eval_mask(categories: list[str | None], kept: np.ndarray, hashes: np.ndarray, limits: dict[str, int]) -> np.ndarray:
    """bool per row: kept and its hash at or under its category's threshold."""
    cats = np.array(categories, dtype=object)
    out = np.zeros(len(categories), dtype=bool)
    for c, limit in limits.items():
        rows = kept & (cats == c)
        out[rows] = hashes[rows] <= np.uint64(limit)
    return out
