"""Repetition: duplicated lines/sentences, over-frequent short phrases, duplicated long n-grams.

Measures (Gopher-style, weighted by characters):
* ``dup_segment_char_share``: characters in lines/sentences that repeat an earlier one
  of the same assistant turn, over the turn's characters; max over turns (an answer
  repeated across turns of a multi-turn VQA is not repetition).
* ``top_{n}gram_char_share`` (n = 2..4): characters covered by the occurrences of the
  most frequent n-gram (when it occurs at least twice), over all characters.
* ``dup_{n}gram_char_share`` (n = 5..10): characters of units inside an n-gram
  that already occurred earlier, over all characters.
Units are lower-cased words; Chinese/Japanese text is counted in characters with
every n multiplied by ``cjk_ngram_scale`` (Latin words inside it stay whole and weigh one
character each). Only the first ``max_measure_chars`` of a
turn are measured, so a 1 MB response costs what a 100 kB one does. ``repetition_units`` is the unit count:
the top n-gram thresholds apply only from ``min_units_top_ngram`` units on, so
a short caption that says "red car" twice is not "repetitive".

The n-gram limits are Gopher's web-document values for long texts and length-aware
for short ones: each is raised by ``slack_units / units`` up to ``max_ngram_limit``
(calibrated on bench/data/repetition_set.jsonl, real texts of this machine + planted
loops; see ``python -m bench.filters --labelled``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from pydantic import Field, field_validator

from magicvl.scoring.filters.base import KEEP, Columns, Filter, FilterConfig, Verdict
from magicvl.scoring.filters.units import is_cjk, segments, units

NAME = "repetition"
TOP_N = (2, 3, 4)
DUP_N = (5, 6, 7, 8, 9, 10)
COLUMNS = (
    "dup_segment_char_share",
    *(f"top_{n}gram_char_share" for n in TOP_N),
    *(f"dup_{n}gram_char_share" for n in DUP_N),
    "repetition_units",
)


class RepetitionConfig(FilterConfig):
    cjk_min_share: float = Field(
        default=0.3, gt=0, le=1, description="CJK share of letters that switches to characters."
    )
    cjk_ngram_scale: int = Field(default=2, ge=1, description="n multiplier for character n-grams (CJK).")
    max_dup_segment_share: float = Field(default=0.3, ge=0, le=1, description="Duplicated lines/sentences.")
    max_top_ngram_share: dict[int, float] = Field(
        default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16}, description="n → max share of the top n-gram."
    )
    max_dup_ngram_share: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="n → max share of characters in duplicated n-grams.",
    )
    min_units_top_ngram: int = Field(default=50, ge=0, description="Top n-gram rules apply from this many units.")
    slack_units: float = Field(
        default=20.0,
        ge=0,
        description="Length-aware n-gram limits: each is raised by slack_units / units (a short text may repeat "
        "a phrase or a code line a long one may not), up to max_ngram_limit.",
    )
    max_ngram_limit: float = Field(
        default=0.45, gt=0, le=1, description="Ceiling of a raised n-gram limit (below 0.5: a text said twice drops)."
    )
    max_measure_chars: int = Field(
        default=100_000, gt=0, description="Only the first this many characters of each turn are measured."
    )

    @field_validator("max_top_ngram_share")
    @classmethod
    def _top(cls, v: dict[int, float]) -> dict[int, float]:
        if not set(v) <= set(TOP_N):
            raise ValueError(f"keys must be among {TOP_N}, got {sorted(v)}")
        return v

    @field_validator("max_dup_ngram_share")
    @classmethod
    def _dup(cls, v: dict[int, float]) -> dict[int, float]:
        if not set(v) <= set(DUP_N):
            raise ValueError(f"keys must be among {DUP_N}, got {sorted(v)}")
        return v


def dup_segment_share(text: str) -> float:
    """Characters in segments that repeat an earlier one / characters in all segments (0 for empty)."""
    seen: set[str] = set()
    dup = total = 0
    for s in segments(text):
        total += len(s)
        if s in seen:
            dup += len(s)
        else:
            seen.add(s)
    return dup / total if total else 0.0


def top_ngram_share(words: list[str], n: int, total: int, weights: list[int]) -> float:
    """Characters of units covered by occurrences of the most frequent n-gram / ``total`` (0 unless it repeats)."""
    if len(words) < n + 1:
        return 0.0
    grams = list(zip(*(words[i:] for i in range(n))))
    counts = Counter(grams)
    if len(counts) == len(grams):  # nothing repeats
        return 0.0
    top, count = counts.most_common(1)[0]
    covered = bytearray(len(words))
    for i, gram in enumerate(grams):
        if gram == top:
            covered[i : i + n] = b"\x01" * n
    return sum(w for w, c in zip(weights, covered) if c) / total


def dup_ngram_share(words: list[str], n: int, total: int, weights: list[int]) -> float:
    """Characters of units covered by an n-gram seen earlier / ``total``."""
    grams = list(zip(*(words[i:] for i in range(n))))
    if len(set(grams)) == len(grams):  # nothing repeats (checked in C)
        return 0.0
    seen: set[tuple[str, ...]] = set()
    covered = bytearray(len(words))
    for i, gram in enumerate(grams):
        if gram in seen:
            covered[i : i + n] = b"\x01" * n
        else:
            seen.add(gram)
    return sum(w for w, c in zip(weights, covered) if c) / total


def measure_one(turns: list[str], config: RepetitionConfig) -> list[float]:
    """The values of COLUMNS for one sample."""
    turns = [t[: config.max_measure_chars] for t in turns]
    text = "\n".join(turns)
    seg = max((dup_segment_share(t) for t in turns), default=0.0)
    cjk = is_cjk(text, config.cjk_min_share)
    words = units(text, cjk=cjk)
    scale = config.cjk_ngram_scale if cjk else 1
    weights = [1] * len(words) if cjk else [len(w) for w in words]  # CJK: a Latin word weighs one character
    total = sum(weights)
    if not total:
        return [seg] + [0.0] * (len(TOP_N) + len(DUP_N)) + [0.0]
    top = [top_ngram_share(words, TOP_N[0] * scale, total, weights)]
    for n in TOP_N[1:]:  # no repeated shorter n-gram → no repeated longer one
        top.append(top_ngram_share(words, n * scale, total, weights) if top[-1] > 0 else 0.0)
    dup = [dup_ngram_share(words, DUP_N[0] * scale, total, weights)]
    for n in DUP_N[1:]:  # no duplicated shorter n-gram → no duplicated longer one
        dup.append(dup_ngram_share(words, n * scale, total, weights) if dup[-1] > 0 else 0.0)
    return [seg, *top, *dup, float(len(words))]


def measure(responses: list[list[str]], config: RepetitionConfig) -> Columns:
    rows = np.array([measure_one(r, config) for r in responses], dtype=np.float64).reshape(-1, len(COLUMNS))
    return {c: rows[:, i] for i, c in enumerate(COLUMNS)}


def _rules(config: RepetitionConfig) -> list[tuple[str, float, bool]]:
    """(column, max, needs min_units) in the order they are checked."""
    rules = [("dup_segment_char_share", config.max_dup_segment_share, False)]
    rules += [(f"dup_{n}gram_char_share", t, False) for n, t in sorted(config.max_dup_ngram_share.items())]
    rules += [(f"top_{n}gram_char_share", t, True) for n, t in sorted(config.max_top_ngram_share.items())]
    return rules


def ngram_limit(base: float, slack: float, ceiling: float) -> float:
    """An n-gram rule's limit for one text: its base limit raised by the length slack, never above the ceiling
    (nor below the base)."""
    return round(max(base, min(base + slack, ceiling)), 4)


def apply(columns: Columns, config: RepetitionConfig) -> list[Verdict]:
    """The first rule a sample breaks, in the order segments → duplicated n-grams → top n-grams."""
    rules = _rules(config)
    units_ = columns["repetition_units"]
    out = []
    for i in range(len(units_)):
        verdict = KEEP
        slack = config.slack_units / units_[i] if units_[i] else 0.0
        for col, base, guarded in rules:
            v = columns[col][i]
            limit = base if col == "dup_segment_char_share" else ngram_limit(base, slack, config.max_ngram_limit)
            if v > limit and not (guarded and units_[i] < config.min_units_top_ngram):
                verdict = Verdict(False, NAME, col, float(v), ">", limit)
                break
        out.append(verdict)
    return out


FILTER = Filter(
    name=NAME,
    version="2",  # 2: CJK words stay whole, length-aware n-gram limits
    description="Duplicated lines/sentences, frequent 2-4-grams, duplicated 5-10-grams (characters for CJK).",
    config=RepetitionConfig,
    columns=COLUMNS,
    measure_fields=("cjk_min_share", "cjk_ngram_scale", "max_measure_chars"),
    measure=measure,
    apply=apply,
)
