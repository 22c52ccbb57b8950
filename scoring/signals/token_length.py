"""L: length of the response in tokens of the recipe's tokenizer (paper: mean over the dataset)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals.base import Columns, Signal, SignalParams


class TokenLengthParams(SignalParams):
    tokenizer: str = Field(description="Tokenizer path or id (from_pretrained); the paper's LM is Qwen2.5-1.5B.")


def compute(batch: SampleBatch, params: TokenLengthParams, tokenizer) -> Columns:
    """Token count of the assistant turns, each tokenized on its own (no separator counted), no special tokens."""
    texts, owner = batch.turn_texts(prompts=False)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    lengths = np.array([len(x) for x in ids], dtype=np.float64)
    return {"token_length": np.bincount(owner, weights=lengths, minlength=len(batch)).astype(np.float64)}


SIGNAL = Signal(
    name="token_length",
    version="2",  # 2: turns tokenized apart (1 counted the newline joining them)
    axis="text",
    description="Response length in tokens (L).",
    params=TokenLengthParams,
    compute=compute,
    columns=("token_length",),
    reads="text",
    backend="tokenizer",
)
