"""The recipe's ``filters:`` section and the two pure entry points a per-shard step calls.

columns = measure_all(responses, cfg)     # store these (one table keyed by sample_id)
verdicts = decide(columns, cfg)           # thresholds only: re-run freely
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from magicvl.scoring.filters import FILTERS
from magicvl.scoring.filters.abnormal_chars import AbnormalCharsConfig
from magicvl.scoring.filters.base import KEEP, Columns, FilterConfig, Verdict
from magicvl.scoring.filters.repetition import RepetitionConfig
from magicvl.scoring.filters.response_length import ResponseLengthConfig
from magicvl.scoring.filters.synthetic_keywords import SyntheticKeywordsConfig


class FiltersConfig(BaseModel):
    """Quality filters of a run: one entry per registered filter (defaults on)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    response_length: ResponseLengthConfig = Field(default_factory=ResponseLengthConfig)
    abnormal_chars: AbnormalCharsConfig = Field(default_factory=AbnormalCharsConfig)
    synthetic_keywords: SyntheticKeywordsConfig = Field(default_factory=SyntheticKeywordsConfig)
    repetition: RepetitionConfig = Field(default_factory=RepetitionConfig)

    def of(self, name: str) -> FilterConfig:
        return getattr(self, name)

    def enabled(self) -> list[str]:
        """Names of the enabled filters in registry order."""
        return [n for n in FILTERS if self.of(n).enabled]

    def measure_identity(self) -> dict[str, dict]:
        """What the measured columns depend on (filter versions and measure parameters): a cache key input."""
        return {n: {"version": FILTERS[n].version, **FILTERS[n].measure_params(self.of(n))} for n in self.enabled()}


def responses_of(conversations: list[list[dict[str, str]]]) -> list[list[str]]:
    """Per sample, its assistant turns (the text every filter reads)."""
    return [[t["value"] for t in c if t["from"] == "gpt"] for c in conversations]


def measure_all(responses: list[list[str]], cfg: FiltersConfig) -> Columns:
    """Every enabled filter's columns for a batch (column names are unique across filters)."""
    out: Columns = {}
    for name in cfg.enabled():
        out.update(FILTERS[name].measure(responses, cfg.of(name)))
    return out


@dataclass(frozen=True)
class Decisions:
    """Per sample: the first failing verdict (or KEEP), and every failing filter's verdict."""

    first: list[Verdict]
    failures: list[list[Verdict]]

    def keep_mask(self) -> np.ndarray:
        return np.array([v.keep for v in self.first], dtype=bool)

    def counts(self) -> dict[str, int]:
        """Drops per reason (first failing filter only)."""
        out: dict[str, int] = {}
        for v in self.first:
            if not v.keep:
                out[v.reason] = out.get(v.reason, 0) + 1
        return dict(sorted(out.items()))


def decide(columns: Columns, cfg: FiltersConfig, n: int | None = None) -> Decisions:
    """Apply every enabled filter's thresholds to stored columns; no text is read.

    ``n`` is the number of samples: with every filter disabled there is no column to count them by."""
    if n is None:
        n = len(next(iter(columns.values()))) if columns else 0
    failures: list[list[Verdict]] = [[] for _ in range(n)]
    for name in cfg.enabled():
        for i, v in enumerate(FILTERS[name].apply(columns, cfg.of(name))):
            if not v.keep:
                failures[i].append(v)
    return Decisions([f[0] if f else KEEP for f in failures], failures)


__all__ = ["Decisions", "FiltersConfig", "decide", "measure_all", "responses_of"]
