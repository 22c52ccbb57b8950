"""The paper's stage rule: captions → stages 1/2, every other category → 3/4, by a complexity split.

The split is made within each *split unit*: every category by default
(``split_within: category``: S uses per-category weights λ, so scores are
comparable within a category, and every task contributes low- and
high-complexity data, as in the paper's "low-complexity data of all tasks"),
or the two groups (``split_within: group``: captions vs everything else). In
each, the lowest share (``caption_low_share`` for captions,
``instruction_low_share`` otherwise) is "low complexity". The defaults follow
the paper's stage sizes: 10M low of 33M captions (0.30) and 54M low of 120M
instruction samples (0.45).

Sample granularity splits on a histogram of S with ``BINS`` equal bins over
[0, 1] (mergeable across shards): the low set is the smallest run of lowest
bins holding at least round(share · n) samples, so the split is exact up to
ties within 1/BINS. Dataset granularity splits whole (dataset, category)
units, weighted by their sample counts, with the same rule.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from magicvl.storage.schema import CAPTION

BINS = 10_000


class StageRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    caption_low_share: float = Field(default=0.30, ge=0.0, le=1.0, description="Share of captions in stage 1.")
    instruction_low_share: float = Field(default=0.45, ge=0.0, le=1.0, description="Share of other data in stage 3.")
    split_within: Literal["category", "group"] = Field(
        default="category", description="Split each category separately, or captions vs all other data."
    )

    def low_share(self, key: str) -> float:
        """Low share of a split unit (a category or a group)."""
        return self.caption_low_share if group_of(key) == "caption" else self.instruction_low_share

    def split_key(self, category: str) -> str:
        """The split unit a category belongs to."""
        return category if self.split_within == "category" else group_of(category)


def group_of(category: str) -> str:
    """'caption' for captions (and the caption group itself), else 'instruction'."""
    return "caption" if category in (CAPTION, "caption") else "instruction"


def stage_of(group: str, high: bool) -> int:
    """1/2 for low/high captions, 3/4 for low/high instruction data."""
    return (2 if high else 1) if group == "caption" else (4 if high else 3)


def bin_of(scores: np.ndarray) -> np.ndarray:
    """Histogram bin of each score in [0, 1]."""
    return np.clip((np.asarray(scores, dtype=np.float64) * BINS).astype(np.int64), 0, BINS - 1)


def histogram(scores: np.ndarray) -> np.ndarray:
    return np.bincount(bin_of(scores), minlength=BINS).astype(np.int64)


def low_bin_cutoff(hist: np.ndarray, share: float) -> int:
    """Highest bin index that is still 'low' (-1 = nothing is low)."""
    n = int(hist.sum())
    k = int(round(share * n))
    if k <= 0:
        return -1
    return int(np.searchsorted(np.cumsum(hist), k))


def split_units(scores: list[float], counts: list[int], names: list[str], share: float) -> set[str]:
    """Names of the low units: the smallest prefix (by score) holding round(share · total) samples."""
    order = sorted(range(len(names)), key=lambda i: (scores[i], names[i]))
    k = int(round(share * sum(counts)))
    low: set[str] = set()
    total = 0
    for i in order:
        if total >= k:
            break
        low.add(names[i])
        total += counts[i]
    return low


SHARE_WARN_POINTS = 10.0  # warn when a split unit's achieved low share is this many points off its target


def achieved_shares(kept: dict[tuple[str, int], int], rule: StageRule) -> list[dict[str, object]]:
    """Per split unit (a category, or a group with ``split_within: group``): the target low share, the share
    of its kept samples that landed in the low stage, and whether they differ by more than
    ``SHARE_WARN_POINTS`` points. ``kept`` maps (category, stage) → kept samples.

    Sample granularity meets the target up to ties; dataset granularity stages whole units, so a
    unit holding most of a category's samples can push the low share far from the target.
    """
    low: dict[str, int] = {}
    total: dict[str, int] = {}
    for (category, stage), n in kept.items():
        key = rule.split_key(category)
        total[key] = total.get(key, 0) + n
        if stage == stage_of(group_of(key), False):
            low[key] = low.get(key, 0) + n
    rows: list[dict[str, object]] = []
    for key in sorted(total):
        if not total[key]:
            continue
        target, achieved = rule.low_share(key), low.get(key, 0) / total[key]
        off = round(100.0 * (achieved - target), 1)
        rows.append(
            {
                "split": key,
                "low stage": stage_of(group_of(key), False),
                "kept": total[key],
                "target": round(target, 4),
                "achieved": round(achieved, 4),
                "off (points)": off,
                "warn": abs(off) > SHARE_WARN_POINTS,
            }
        )
    return rows


def share_warnings(rows: list[dict[str, object]], granularity: str) -> list[str]:
    """One line per split unit whose achieved low share misses its target by more than the allowed points."""
    why = (
        "; granularity: dataset stages whole (dataset, category) units (granularity: sample meets the share)"
        if granularity == "dataset"
        else ""
    )
    return [
        f"warning: stage {r['low stage']} holds {float(r['achieved']):.0%} of {r['split']} (kept {r['kept']}), "
        f"target {float(r['target']):.0%}: {float(r['off (points)']):+.1f} points{why}"
        for r in rows
        if r["warn"]
    ]
