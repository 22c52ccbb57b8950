"""Normalisation of a metric over the run's population, from mergeable statistics.

Statistics are gathered per shard and merged (Chan et al.'s parallel update),
so the population can be any size; normalised values lie in [0, 1]:

* ``minmax``: (x - min) / (max - min).
* ``zscore``: Φ((x - mean) / std), the standard normal CDF of the z-score,
  i.e. the percentile under a normal fit (robust to one extreme value).

A constant metric (max == min, or std == 0) normalises to 0.5 for everyone.
Metrics listed under ``log1p`` are transformed with log(1 + x) first (for
heavy-tailed counts such as token length).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Method = Literal["minmax", "zscore"]


@dataclass
class Moments:
    """Count, mean, sum of squared deviations, min and max of the non-NaN values seen."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        v = np.asarray(values, dtype=np.float64)
        v = v[~np.isnan(v)]
        if v.size == 0:
            return cls()
        mean = float(v.mean())
        return cls(int(v.size), mean, float(((v - mean) ** 2).sum()), float(v.min()), float(v.max()))

    def merge(self, other: Moments) -> Moments:
        if other.n == 0:
            return Moments(**asdict(self))
        if self.n == 0:
            return Moments(**asdict(other))
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        m2 = self.m2 + other.m2 + delta * delta * self.n * other.n / n
        return Moments(n, mean, m2, min(self.min, other.min), max(self.max, other.max))

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Moments:
        return cls(**d)


def transform(values: np.ndarray, log1p: bool) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return np.log1p(np.clip(v, 0.0, None)) if log1p else v


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def _phi(z: np.ndarray) -> np.ndarray:
    """The standard normal CDF, Φ(z) = erfc(-z/√2)/2 (NaN stays NaN)."""
    z = np.asarray(z, dtype=np.float64)
    return 0.5 * _ERFC(-z / math.sqrt(2.0)).astype(np.float64)


def normalize(values: np.ndarray, stats: Moments, method: Method) -> np.ndarray:
    """Map (already transformed) values into [0, 1] with population ``stats``; NaN stays NaN."""
    v = np.asarray(values, dtype=np.float64)
    if method == "minmax":
        span = stats.max - stats.min
        out = np.full_like(v, 0.5) if not span > 0 else (v - stats.min) / span
    elif method == "zscore":
        sd = stats.std
        out = np.full_like(v, 0.5) if not sd > 0 else _phi((v - stats.mean) / sd)
    else:
        raise ValueError(f"unknown normalization {method!r}")
    out = np.clip(out, 0.0, 1.0)
    out[np.isnan(v)] = np.nan
    return out
