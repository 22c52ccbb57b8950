"""Combine signals into complexity scores: S = λ1·S_text + λ2·S_image + λ3·S_task.

Each axis score is the mean of its normalised metrics that exist for the
sample (S_text = mean(L̂, T̂, P̂) when all three are computed). The task axis
comes from stored VLM losses: S_task = mean over model pairs of C(Ms, Ml)
(``scoring.crossmodal``), a share that is not normalised again. λ depends on
the task category. Axes with no value for a sample (no signal configured, or
a text-only sample's image axis) are left out and the remaining weights are
renormalised: S = Σ λ_a S_a / Σ λ_a over the present axes, so S stays in
[0, 1]. Which axes were absent is reported by the run.

The paper gives λ per category only in its (unavailable) supplement; the
defaults below are this project's choice, documented in the recipe.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from magicvl.scoring.crossmodal import TaskRule
from magicvl.scoring.eval_split import EvalSplit
from magicvl.scoring.normalize import Method
from magicvl.scoring.stages import StageRule
from magicvl.storage.schema import CATEGORIES

AXES = ("text", "image", "task")


class AxisWeights(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: float = Field(ge=0.0)
    image: float = Field(ge=0.0)
    task: float = Field(ge=0.0)

    @model_validator(mode="after")
    def _positive(self) -> AxisWeights:
        if self.text + self.image + self.task <= 0:
            raise ValueError("at least one weight must be positive")
        return self

    def as_array(self) -> np.ndarray:
        return np.array([self.text, self.image, self.task], dtype=np.float64)


DEFAULT_WEIGHTS: dict[str, AxisWeights] = {
    "caption": AxisWeights(text=0.4, image=0.4, task=0.2),
    "vqa": AxisWeights(text=0.3, image=0.3, task=0.4),
    "ocr": AxisWeights(text=0.3, image=0.5, task=0.2),
    "chart": AxisWeights(text=0.3, image=0.4, task=0.3),
    "gui": AxisWeights(text=0.2, image=0.5, task=0.3),
    "grounding": AxisWeights(text=0.2, image=0.4, task=0.4),
    "reasoning": AxisWeights(text=0.5, image=0.1, task=0.4),
    "text_only": AxisWeights(text=0.7, image=0.0, task=0.3),
}


class CombineConfig(BaseModel):
    """How metrics become scores and stages (re-tunable without any model run)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    granularity: Literal["dataset", "sample"] = Field(
        default="dataset",
        description="dataset: the paper's rule (means per dataset and category, whole units staged); "
        "sample: per sample.",
    )
    normalization: Method = Field(default="minmax", description="minmax or zscore (see scoring.normalize).")
    log1p: tuple[str, ...] = Field(default=("token_length",), description="Metrics log(1+x)-transformed first.")
    weights: dict[str, AxisWeights] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    stages: StageRule = Field(default_factory=StageRule)
    task: TaskRule = Field(
        default_factory=TaskRule, description="Cross-modal C(Ms, Ml): β, δ, model pairs (see scoring.crossmodal)."
    )
    eval: EvalSplit | None = Field(
        default=None,
        description="Held-out eval split per category (curated/eval/; see scoring.eval_split); none if unset.",
    )

    @field_validator("weights")
    @classmethod
    def _all_categories(cls, v: dict[str, AxisWeights]) -> dict[str, AxisWeights]:
        unknown = sorted(set(v) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; expected {', '.join(CATEGORIES)}")
        return {**DEFAULT_WEIGHTS, **v}


def _nanmean_rows(m: np.ndarray) -> np.ndarray:
    """Row means ignoring NaN; NaN where a row has no value."""
    valid = ~np.isnan(m)
    count = valid.sum(axis=1)
    total = np.where(valid, m, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def axis_scores(normalized: dict[str, np.ndarray], axis_of: dict[str, str], n: int) -> dict[str, np.ndarray]:
    """Per axis, the mean of its normalised metrics (NaN where none exists)."""
    out = {}
    for axis in AXES:
        cols = [normalized[m] for m in normalized if axis_of[m] == axis]
        out[axis] = _nanmean_rows(np.column_stack(cols)) if cols else np.full(n, np.nan)
    return out


def complexity(
    scores: dict[str, np.ndarray], categories: list[str | None], weights: dict[str, AxisWeights]
) -> np.ndarray:
    """S per row: λ-weighted mean over the axes present (λ from the row's category)."""
    s = np.column_stack([scores[a] for a in AXES])  # [N, 3]
    codes, uniq = category_codes(categories)
    table = np.array([weights[c].as_array() if c in weights else np.zeros(3) for c in uniq]).reshape(len(uniq), 3)
    lam = table[codes]  # [N, 3]: one lookup per distinct category, not per row
    present = ~np.isnan(s) & (lam > 0)
    num = np.where(present, s * lam, 0.0).sum(axis=1)
    den = np.where(present, lam, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def category_codes(categories: list[str | None]) -> tuple[np.ndarray, list[str | None]]:
    """Each row's index into the distinct categories (first-seen order), and those categories."""
    index: dict[str | None, int] = {}
    codes = np.fromiter((index.setdefault(c, len(index)) for c in categories), np.int64, len(categories))
    return codes, list(index)


def fates(errors: list[list[str]], categories: list[str | None], scores: np.ndarray) -> tuple[list[str], list]:
    """Where each sample ends: quarantined (a signal failed on it: its errors are the reason), else
    dropped (``uncategorized``, or ``no_complexity_axis`` when S is NaN), else kept."""
    n = len(categories)
    has_err = np.fromiter((bool(e) for e in errors), bool, n)
    no_cat = np.fromiter((c is None for c in categories), bool, n)
    nan = np.isnan(np.asarray(scores, dtype=np.float64))
    out = np.where(has_err, "quarantined", np.where(no_cat | nan, "dropped", "kept")).astype(object)
    reason = np.where(has_err, None, np.where(no_cat, "uncategorized", np.where(nan, "no_complexity_axis", None)))
    reason = reason.astype(object)
    for i in np.flatnonzero(has_err):
        reason[i] = "; ".join(errors[i])
    return out.tolist(), reason.tolist()

