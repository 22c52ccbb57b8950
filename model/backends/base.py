"""Shared pieces of the model backends: dtype names, device choice, a light tokenizer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

DType = Literal["float32", "bfloat16", "float16", "auto"]
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16", "auto")


class BackendError(RuntimeError):
    """A backend that cannot be loaded or used; the message names the model and the cause."""


def torch_dtype(name: str) -> Any:
    """The torch dtype called ``name`` ('auto' keeps the checkpoint's own dtype: returns "auto")."""
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {name!r}")
    if name == "auto":
        return "auto"
    import torch

    return getattr(torch, name)


def choose_device(device: str = "auto") -> str:
    """'cuda' when a GPU is visible and ``device`` is 'auto', else ``device`` ('cpu' here)."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def local_tokenizer_file(path_or_id: str) -> Path | None:
    """``tokenizer.json`` of a local tokenizer folder, or None (a hub id, or no fast tokenizer file)."""
    p = Path(path_or_id)
    f = p / "tokenizer.json"
    return f if p.is_dir() and f.is_file() else None


class LightTokenizer:
    """A ``tokenizers.Tokenizer`` called like a Hugging Face tokenizer for ids only.

    Workers that only count tokens load this (``tokenizers`` imports in
    milliseconds; transformers + torch take seconds). ``tok(texts,
    add_special_tokens=False)["input_ids"]`` gives the same ids as the
    ``PreTrainedTokenizerFast`` saved with the same ``tokenizer.json``.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def from_file(cls, path: str | Path) -> LightTokenizer:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(path)))

    def __call__(self, texts: list[str] | str, add_special_tokens: bool = True) -> dict[str, list]:
        if isinstance(texts, str):
            return {"input_ids": self.tokenizer.encode(texts, add_special_tokens=add_special_tokens).ids}
        encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encs]}


def load_text_tokenizer(path_or_id: str) -> Any:
    """A tokenizer for counting ids: ``LightTokenizer`` from a local tokenizer.json, else AutoTokenizer."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one task per core already
    f = local_tokenizer_file(path_or_id)
    if f is not None and _plain_fast_tokenizer(f.parent):
        return LightTokenizer.from_file(f)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path_or_id)


def _plain_fast_tokenizer(folder: Path) -> bool:
    """True when tokenizer_config.json asks for nothing the raw tokenizer.json lacks (a prefix-space override)."""
    cfg = folder / "tokenizer_config.json"
    if not cfg.is_file():
        return True
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    # transformers rewrites the pre-tokenizer when add_prefix_space is set; ids without special tokens
    # are otherwise those of tokenizer.json (add_bos/eos only matter with add_special_tokens=True).
    return not data.get("add_prefix_space")
