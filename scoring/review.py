"""A person's review decision for a dataset: the sidecar YAML ``magicvl review`` writes and a recipe's
``review`` field names, and the dataset-wide category it gives the categorize step (source ``inspection``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from magicvl.storage.schema import CATEGORIES

Decision = Literal["reasoning", "gui", "ocr", "text_only", "chart", "caption", "vqa", "grounding", "mixed"]


class ReviewDecision(BaseModel):
    """The sidecar file: the reviewed dataset and its category (or ``mixed``; null = not decided yet)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    decision: Decision | None = Field(default=None, description=f"One of {', '.join(CATEGORIES)}, or mixed.")
    reviewer: str | None = None
    notes: str | None = None
    sampled: list[str] = Field(default_factory=list, description="Sources of the records shown on the sheet.")


def load_decision(path: str | Path) -> ReviewDecision:
    """Read and validate a sidecar file; the error names the file and field."""
    try:
        return ReviewDecision.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise ValueError(f"review sidecar {path}: {e}") from None


def inspection_category(decision: ReviewDecision | None) -> str | None:
    """The dataset-wide category to use, or None (undecided or ``mixed``: classify per sample)."""
    return decision.decision if decision is not None and decision.decision in CATEGORIES else None
