"""The signal registry: one plain dict, name → Signal. A signal's key, module and column share one name.

Model-backed signals (perplexity, OCR text density, object density, VLM loss)
join this dict as they are built; the framework around them does not change.
"""

from __future__ import annotations

from magicvl.scoring.signals import image_entropy, token_length, type_token_ratio
from magicvl.scoring.signals.base import Axis, Columns, Signal, SignalParams

SIGNALS: dict[str, Signal] = {
    token_length.SIGNAL.name: token_length.SIGNAL,
    type_token_ratio.SIGNAL.name: type_token_ratio.SIGNAL,
    image_entropy.SIGNAL.name: image_entropy.SIGNAL,
}


def get_signal(name: str) -> Signal:
    """The registered signal called ``name`` (error lists the known ones)."""
    try:
        return SIGNALS[name]
    except KeyError:
        raise KeyError(f"unknown signal {name!r}; known: {', '.join(sorted(SIGNALS))}") from None


__all__ = ["SIGNALS", "Axis", "Columns", "Signal", "SignalParams", "get_signal"]
