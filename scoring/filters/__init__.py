"""Quality filters: the registry (a plain dict, name → Filter) and the recipe's ``filters:`` section.

Order matters: a sample's drop reason is the first filter (in this order) it fails.
"""

from __future__ import annotations

from magicvl.scoring.filters import abnormal_chars, repetition, response_length, synthetic_keywords
from magicvl.scoring.filters.base import Columns, Filter, FilterConfig, Verdict

FILTERS: dict[str, Filter] = {
    response_length.FILTER.name: response_length.FILTER,
    abnormal_chars.FILTER.name: abnormal_chars.FILTER,
    synthetic_keywords.FILTER.name: synthetic_keywords.FILTER,
    repetition.FILTER.name: repetition.FILTER,
}


def get_filter(name: str) -> Filter:
    """The registered filter called ``name`` (error lists the known ones)."""
    try:
        return FILTERS[name]
    except KeyError:
        raise KeyError(f"unknown filter {name!r}; known: {', '.join(FILTERS)}") from None


__all__ = ["FILTERS", "Columns", "Filter", "FilterConfig", "Verdict", "get_filter"]
