"""T: type-token ratio of prompt + response (lexical diversity, Kettunen 2014)."""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals.base import Columns, Signal, SignalParams

_WORD = re.compile(r"\w+", re.UNICODE)


class TypeTokenRatioParams(SignalParams):
    tokenizer: str | None = Field(
        default=None, description="Tokenizer path or id: required when unit is 'token'; ignored for 'word'."
    )
    unit: Literal["token", "word"] = Field(
        default="token",
        description="token: tokenizer ids (language-agnostic, matches L); word: lower-cased \\w+ words.",
    )

    @model_validator(mode="after")
    def _tokenizer_matches_unit(self) -> TypeTokenRatioParams:
        if self.unit == "token" and not self.tokenizer:
            raise ValueError("tokenizer: required when unit is 'token' (or set unit: word)")
        return self


def ttr(units: list) -> float:
    """Distinct units / units; NaN for an empty text."""
    return len(set(units)) / len(units) if units else float("nan")


def compute(batch: SampleBatch, params: TypeTokenRatioParams, tokenizer) -> Columns:
    """TTR over the prompt and response turns (``<image>`` placeholder removed), each turn taken on its own."""
    texts, owner = batch.turn_texts(prompts=True)
    if params.unit == "word":
        per_text = [_WORD.findall(t.lower()) for t in texts]
    else:
        per_text = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    units: list[list] = [[] for _ in range(len(batch))]
    for i, u in zip(owner.tolist(), per_text):
        units[i] += u
    return {"type_token_ratio": np.array([ttr(u) for u in units], dtype=np.float64)}


SIGNAL = Signal(
    name="type_token_ratio",
    version="2",  # 2: turns tokenized apart (1 counted the newline joining them)
    axis="text",
    description="Type-token ratio of prompt + response (T).",
    params=TypeTokenRatioParams,
    compute=compute,
    columns=("type_token_ratio",),
    reads="text",
    backend="tokenizer",  # loaded only when params.tokenizer is set (unit: token)
)
