"""Empty responses (a drop reason of their own) and absurdly long ones."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from magicvl.scoring.filters.base import KEEP, Columns, Filter, FilterConfig, Verdict

NAME = "response_length"


class ResponseLengthConfig(FilterConfig):
    min_chars: int = Field(default=1, ge=0, description="Drop as empty_response below this many non-space characters.")
    max_chars: int | None = Field(
        default=1_000_000, gt=0, description="Drop as response_too_long above this many characters (None: no limit)."
    )


def measure(responses: list[list[str]], config: ResponseLengthConfig) -> Columns:
    """``response_chars``: characters of all assistant turns, without surrounding whitespace."""
    return {"response_chars": np.array([sum(len(t.strip()) for t in r) for r in responses], dtype=np.float64)}


def apply(columns: Columns, config: ResponseLengthConfig) -> list[Verdict]:
    out = []
    for v in columns["response_chars"]:
        if v < config.min_chars:
            out.append(Verdict(False, "empty_response", "response_chars", float(v), "<", float(config.min_chars)))
        elif config.max_chars is not None and v > config.max_chars:
            out.append(Verdict(False, "response_too_long", "response_chars", float(v), ">", float(config.max_chars)))
        else:
            out.append(KEEP)
    return out


FILTER = Filter(
    name=NAME,
    version="1",
    description="Response length in characters: empty responses and ones over max_chars are dropped.",
    config=ResponseLengthConfig,
    columns=("response_chars",),
    measure_fields=(),
    measure=measure,
    apply=apply,
)
