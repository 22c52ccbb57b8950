"""Share of abnormal characters in the response: control, U+FFFD, zero-width, private-use, mojibake.

Zero-width joiners/non-joiners and left/right-to-left marks are *not* abnormal:
Persian, Arabic, Indic scripts and emoji sequences use them.
"""

from __future__ import annotations

import re

import numpy as np
from pydantic import Field

from magicvl.scoring.filters.base import Columns, Filter, FilterConfig, Verdict, above

NAME = "abnormal_chars"

_BAD_CHARS = re.compile(
    "["
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # C0/C1 controls except tab, newline, carriage return
    "\ufffd"  # replacement character
    "\u200b\u2060\ufeff\u180e"  # zero-width space, word joiner, BOM, Mongolian vowel separator
    "\u202d\u202e"  # bidi overrides (used to disguise text)
    "\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd"  # private use areas
    "]"
)
# UTF-8 read as Latin-1/cp1252: "Ã©", "â€™", "Ã¤", "Â ", "ï¿½" ... (two or three characters per original one).
_MOJIBAKE = re.compile(
    "(?:[\u00c2\u00c3][\u0080-\u00bf\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122\u0152\u0153"
    "\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc]"
    "|\u00e2\u20ac[\u0080-\u00bf\u2018-\u201e\u2022\u2026\u2122\u0153\u009d\u02dc\u00a6]"
    "|\u00ef\u00bf\u00bd)"
)


class AbnormalCharsConfig(FilterConfig):
    max_share: float = Field(
        default=0.05, ge=0, le=1, description="Drop when abnormal characters exceed this share of all characters."
    )
    max_mojibake: int | None = Field(
        default=0, ge=0, description="Drop when more mojibake sequences than this are found (None: share only)."
    )


def abnormal_share(text: str) -> float:
    """Abnormal characters (mojibake counted by its characters) / all characters; NaN for an empty text."""
    if not text:
        return float("nan")
    bad = _BAD_CHARS.subn("", text)[1]
    moji = sum(len(m) for m in _MOJIBAKE.findall(text)) if not text.isascii() else 0
    return (bad + moji) / len(text)


def mojibake_count(text: str) -> int:
    """Number of mojibake sequences (one broken encoding is enough to distrust a text)."""
    return len(_MOJIBAKE.findall(text)) if not text.isascii() else 0


def measure(responses: list[list[str]], config: AbnormalCharsConfig) -> Columns:
    texts = ["\n".join(r) for r in responses]
    return {
        "abnormal_char_share": np.array([abnormal_share(t) for t in texts], dtype=np.float64),
        "mojibake_hits": np.array([mojibake_count(t) for t in texts], dtype=np.float64),
    }


def apply(columns: Columns, config: AbnormalCharsConfig) -> list[Verdict]:
    """Share over its maximum first; else mojibake sequences over theirs."""
    out = above(NAME, "abnormal_char_share", columns["abnormal_char_share"], config.max_share)
    if config.max_mojibake is None:
        return out
    limit = float(config.max_mojibake)
    moji = columns["mojibake_hits"]
    return [
        Verdict(False, NAME, "mojibake_hits", float(m), ">", limit) if v.keep and m > limit else v
        for v, m in zip(out, moji)
    ]


FILTER = Filter(
    name=NAME,
    version="1",
    description="Share of control, U+FFFD, zero-width, private-use and mojibake characters; mojibake sequences.",
    config=AbnormalCharsConfig,
    columns=("abnormal_char_share", "mojibake_hits"),
    measure_fields=(),
    measure=measure,
    apply=apply,
)
