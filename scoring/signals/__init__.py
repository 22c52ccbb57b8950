"""The signal registry: one plain dict, name → Signal. A signal's key, module and column share one name.

Model-backed signals (perplexity, OCR text density, object density) take a
backend that ``tasks.backends.load_backend`` loads once per worker.
"""

from __future__ import annotations

from magicvl.scoring.signals import (
    image_entropy,
    object_density,
    ocr_text_density,
    perplexity,
    token_length,
    type_token_ratio,
)
from magicvl.scoring.signals.base import Axis, Columns, Signal, SignalParams

SIGNALS: dict[str, Signal] = {
    token_length.SIGNAL.name: token_length.SIGNAL,
    type_token_ratio.SIGNAL.name: type_token_ratio.SIGNAL,
    image_entropy.SIGNAL.name: image_entropy.SIGNAL,
    perplexity.SIGNAL.name: perplexity.SIGNAL,
    ocr_text_density.SIGNAL.name: ocr_text_density.SIGNAL,
    object_density.SIGNAL.name: object_density.SIGNAL,
}


def get_signal(name: str) -> Signal:
    """The registered signal called ``name`` (error lists the known ones)."""
    try:
        return SIGNALS[name]
    except KeyError:
        raise KeyError(f"unknown signal {name!r}; known: {', '.join(sorted(SIGNALS))}") from None


__all__ = ["SIGNALS", "Axis", "Columns", "Signal", "SignalParams", "get_signal"]
