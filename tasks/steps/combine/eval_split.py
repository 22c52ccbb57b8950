"""The eval split inside the combine step: a pass that finds each category's hash threshold
(``scoring.eval_split``), and the per-shard mask the write pass applies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from magicvl.scoring.combine import CombineConfig
from magicvl.scoring.eval_split import EVAL_REASON, id_hashes, merge_candidates, shard_candidates, thresholds
from magicvl.scoring.score import RowScores, score_rows
from magicvl.storage.layout import OutputLayout
from magicvl.tasks.executor import run_tasks

if TYPE_CHECKING:
    from magicvl.flows.recipe import Recipe
    from magicvl.tasks.steps.combine.units import ShardInputs

EVAL_FOLDER = "eval"  # curated/eval/: read by model.evaluate and flows.evaluate


def eval_dir(layout: OutputLayout) -> Any:
    """``<root>/curated/eval/``."""
    return layout.curated / EVAL_FOLDER


def shard_eval_candidates(inp: ShardInputs, cfg: CombineConfig, decision: dict[str, Any]) -> dict:
    """One shard's kept rows per category: count and smallest ``max_per_category`` id hashes."""
    from magicvl.tasks.steps.combine import units as combine_tasks  # units imports this module

    c = combine_tasks.load_columns(inp)
    rows = score_rows(c.datasets, c.categories, c.metrics, c.errors, cfg, combine_tasks._decision(decision))
    kept = np.array([f == "kept" for f in rows.fate], dtype=bool)
    assert cfg.eval is not None
    return shard_candidates(c.categories, kept, id_hashes(c.sample_ids), cfg.eval.max_per_category)


def eval_thresholds(
    recipe: Recipe, inputs: list[ShardInputs], cfg: CombineConfig, decision: dict[str, Any]
) -> dict[str, str]:
    """Per category, the largest id hash in the split (decimal strings: JSON-safe 64-bit); {} without ``eval``."""
    if cfg.eval is None:
        return {}
    res = recipe.resources.combine
    parts: list[dict] = []
    calls = [(i, cfg, decision) for i in inputs]
    run_tasks(shard_eval_candidates, calls, "combine:eval", res, recipe.ray.max_in_flight, recipe.ray.task_retries,
              parts.append)  # fmt: skip
    merged = merge_candidates(parts, cfg.eval.max_per_category)
    return {c: str(h) for c, h in thresholds(merged, cfg.eval).items()}


def apply_eval(rows: RowScores, sample_ids: list[str], categories: list[str | None], decision: dict) -> np.ndarray:
    """Mark the shard's eval rows (reason ``eval_split``; they stay kept) and return their mask."""
    from magicvl.scoring.eval_split import eval_mask

    limits = {c: int(h) for c, h in decision.get("eval", {}).items()}
    kept = np.array([f == "kept" for f in rows.fate], dtype=bool)
    mask = eval_mask(categories, kept, id_hashes(sample_ids), limits) if limits else np.zeros(len(kept), bool)
    for i in np.flatnonzero(mask):
        rows.reason[i] = EVAL_REASON
    return mask
