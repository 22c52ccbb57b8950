"""Synthetic / anomalous phrases in the response: refusals, "as an AI language model", template leftovers."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pydantic import Field

from magicvl.scoring.filters.base import KEEP, Columns, Filter, FilterConfig, Verdict

NAME = "synthetic_keywords"

DEFAULT_KEYWORDS: tuple[str, ...] = (
    # English: model self-reference and refusals about the image
    "as an ai language model",
    "as an ai model",
    "as an ai assistant",
    "as a language model",
    "i am an ai",
    "i'm an ai",
    "i cannot see the image",
    "i can't see the image",
    "i cannot view the image",
    "i can't view the image",
    "i am unable to view",
    "i'm unable to view",
    "i am unable to see",
    "i'm unable to see",
    "i don't have the ability to see",
    "i do not have the ability to see",
    "no image was provided",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "my knowledge cutoff",
    # leftover template markers
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "[inst]",
    "[/inst]",
    "### instruction:",
    "### response:",
    "<unk>",
    "lorem ipsum",
    # Chinese
    "作为一个人工智能",
    "作为一个ai",
    "作为人工智能",
    "作为ai语言模型",
    "我是一个人工智能",
    "我无法看到图片",
    "我无法看到图像",
    "我看不到图片",
    "我无法查看图片",
    "我无法查看图像",
    "抱歉，我无法",
)


class SyntheticKeywordsConfig(FilterConfig):
    keywords: tuple[str, ...] = Field(
        default=DEFAULT_KEYWORDS,
        description="Phrases matched case-insensitively (' and ’ are the same apostrophe).",
    )
    max_hits: int = Field(default=0, ge=0, description="Drop when more phrases than this are found.")


def _normalize(text: str) -> str:
    return text.lower().replace("’", "'")


@lru_cache(maxsize=8)
def _prepared(keywords: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_normalize(k) for k in keywords if k))


def find(text: str, keywords: tuple[str, ...]) -> list[str]:
    """The (lower-cased) keywords found in ``text``, once per occurrence, in keyword order."""
    lowered = _normalize(text)
    out: list[str] = []
    for k in _prepared(keywords):
        if k in lowered:  # substring search in C; most texts match nothing
            out += [k] * lowered.count(k)
    return out


def measure(responses: list[list[str]], config: SyntheticKeywordsConfig) -> Columns:
    hits = [find("\n".join(r), config.keywords) for r in responses]
    return {
        "synthetic_keyword_hits": np.array([len(h) for h in hits], dtype=np.float64),
        "synthetic_keyword_first": np.array([h[0] if h else None for h in hits], dtype=object),
    }


def apply(columns: Columns, config: SyntheticKeywordsConfig) -> list[Verdict]:
    limit = float(config.max_hits)
    return [
        Verdict(False, NAME, "synthetic_keyword_hits", float(v), ">", limit) if v > limit else KEEP
        for v in columns["synthetic_keyword_hits"]
    ]


FILTER = Filter(
    name=NAME,
    version="1",
    description="Count of synthetic/anomalous phrases (configurable list, English and Chinese defaults).",
    config=SyntheticKeywordsConfig,
    columns=("synthetic_keyword_hits", "synthetic_keyword_first"),
    measure_fields=("keywords",),
    measure=measure,
    apply=apply,
)
