"""Synthetic / anomalous phrases in the response: refusals, "as an AI language model", template leftovers."""

from __future__ import annotations

import re
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
        description="Phrases matched case-insensitively ('' and ’ are the same apostrophe).",
    )
    max_hits: int = Field(default=0, ge=0, description="Drop when more phrases than this are found.")


@lru_cache(maxsize=8)
def _pattern(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    alts = [re.escape(k.lower()).replace("'", "['’]") for k in keywords if k]
    return re.compile("|".join(sorted(alts, key=len, reverse=True)), re.IGNORECASE) if alts else None


def find(text: str, keywords: tuple[str, ...]) -> list[str]:
    """Every keyword occurrence in ``text`` (as written there)."""
    pattern = _pattern(keywords)
    return pattern.findall(text) if pattern is not None else []


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
