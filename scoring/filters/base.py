"""What a filter is: a pure batch → measures computation plus a separate threshold rule.

Measures are stored per sample; thresholds are applied afterwards, so changing a
threshold recomputes nothing. A filter's config model holds both: the fields
named in ``measure_fields`` change the measured values (part of a cache key),
every other field is a threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Columns = dict[str, np.ndarray]  # column name → one value per sample (float64, or object for strings)


class FilterConfig(BaseModel):
    """Base of every filter's config: unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Run this filter.")


@dataclass(frozen=True)
class Verdict:
    """One sample's fate under one filter: kept, or dropped with the measure that crossed its threshold."""

    keep: bool
    reason: str | None = None  # drop reason (the filter name, or a finer one such as empty_response)
    measure: str | None = None  # the column compared
    value: float | None = None
    op: str | None = None  # how value compares to threshold when dropped: ">" or "<" or ">="
    threshold: float | None = None

    def describe(self) -> str:
        """``reason: measure=value op threshold`` (or ``kept``)."""
        if self.keep:
            return "kept"
        return f"{self.reason}: {self.measure}={self.value:.4g} {self.op} {self.threshold:.4g}"


KEEP = Verdict(True)


@dataclass(frozen=True)
class Filter:
    """A quality filter over the response turns of each sample.

    ``measure(responses, config)`` gets, per sample, the list of its assistant
    turns and returns ``columns``; ``apply(columns, config)`` returns one
    Verdict per sample from those columns alone.
    """

    name: str
    version: str
    description: str
    config: type[FilterConfig]
    columns: tuple[str, ...]
    measure_fields: tuple[str, ...]
    measure: Callable[[list[list[str]], Any], Columns]
    apply: Callable[[Columns, Any], list[Verdict]]

    def measure_params(self, config: FilterConfig) -> dict[str, Any]:
        """The config fields that change measured values (for a cache key)."""
        return {k: getattr(config, k) for k in self.measure_fields}


def above(name: str, measure: str, values: np.ndarray, limit: float) -> list[Verdict]:
    """Drop where ``values > limit`` (NaN keeps)."""
    return [Verdict(False, name, measure, float(v), ">", limit) if v > limit else KEEP for v in values]
