"""Text units the filters count: words (or characters for Chinese/Japanese), lines, sentences."""

from __future__ import annotations

import re

# A word keeps inner punctuation of numbers and contractions together: "3,719.28", "don't", "e-mail".
WORD = re.compile(r"\w+(?:[.,'’\-]\w+)*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_CJK_OR_WORDCHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]|\w")
_CJK_CLASS = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
# Chinese/Japanese: each Han/kana character is a unit; Latin (or other) words inside stay whole.
_CJK_UNIT = re.compile(rf"[{_CJK_CLASS}]|[^\W{_CJK_CLASS}]+(?:[.,'’\-][^\W{_CJK_CLASS}]+)*")
# Sentence ends: .!? followed by space/end (not "3.50"), CJK full stops, and line breaks.
_SEGMENT = re.compile(r"(?<=[.!?…])\s+|[。！？；\n]+")


def is_cjk(text: str, min_share: float = 0.3) -> bool:
    """True when at least ``min_share`` of the text's word characters are Han, Hiragana or Katakana."""
    if text.isascii():
        return False
    letters = len(_CJK_OR_WORDCHAR.findall(text))
    return letters > 0 and len(_CJK.findall(text)) >= min_share * letters


def units(text: str, cjk_min_share: float = 0.3, cjk: bool | None = None) -> list[str]:
    """Lower-cased words; for Chinese/Japanese text (``cjk``, detected when None), single Han/kana
    characters, the words of other scripts inside it staying whole."""
    lowered = text.lower()
    if cjk if cjk is not None else is_cjk(text, cjk_min_share):
        return _CJK_UNIT.findall(lowered)
    return WORD.findall(lowered)


def segments(text: str) -> list[str]:
    """Non-empty stripped lines and sentences."""
    return [s for s in (p.strip() for p in _SEGMENT.split(text)) if s]
