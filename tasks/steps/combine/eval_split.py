"""The eval split inside the combine step: where it is written and the per-shard mask the write pass
applies (``scoring.eval_split``). The pass that finds each category's hash threshold is
``units.shard_eval_candidates`` (per shard) and ``step.eval_thresholds`` (merged)."""

from __future__ import annotations

from typing import Any

import numpy as np

from magicvl.scoring.eval_split import EVAL_REASON, id_hashes
from magicvl.scoring.score import RowScores
from magicvl.storage.layout import OutputLayout

EVAL_FOLDER = "eval"  # curated/eval/: read by model.evaluate and flows.evaluate


def eval_dir(layout: OutputLayout) -> Any:
    """``<root>/curated/eval/``."""
    return layout.curated / EVAL_FOLDER


def apply_eval(rows: RowScores, sample_ids: list[str], categories: list[str | None], decision: dict) -> np.ndarray:
    """Mark the shard's eval rows (reason ``eval_split``; they stay kept) and return their mask."""
    from magicvl.scoring.eval_split import eval_mask

    limits = {c: int(h) for c, h in decision.get("eval", {}).items()}
    kept = np.array([f == "kept" for f in rows.fate], dtype=bool)
    mask = eval_mask(categories, kept, id_hashes(sample_ids), limits) if limits else np.zeros(len(kept), bool)
    for i in np.flatnonzero(mask):
        rows.reason[i] = EVAL_REASON
    return mask
