"""Models and tokenizers loaded once per worker process (Ray reuses workers)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from magicvl.scoring.signals import Signal, SignalParams


@lru_cache(maxsize=4)
def tokenizer(path_or_id: str) -> Any:
    """A tokenizer loaded with the ordinary ``AutoTokenizer.from_pretrained``."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one task per core already
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path_or_id)


def load_backend(signal: Signal, params: SignalParams) -> Any:
    """What ``signal.compute`` needs besides the batch (None for model-free signals)."""
    if signal.backend is None:
        return None
    if signal.backend == "tokenizer":
        path = getattr(params, "tokenizer", None)  # read once: a params property may do work on each read
        return tokenizer(path) if path else None
    if signal.backend == "vlm":
        from magicvl.model.backends.vlm import load_vlm_backend

        return load_vlm_backend(params)
    raise ValueError(f"signal {signal.name!r} needs backend {signal.backend!r}, which this build does not provide")
