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
    vlm_loss,
)
from magicvl.scoring.signals.base import Axis, Columns, Signal, SignalParams

SIGNALS: dict[str, Signal] = {
    token_length.SIGNAL.name: token_length.SIGNAL,
    type_token_ratio.SIGNAL.name: type_token_ratio.SIGNAL,
    image_entropy.SIGNAL.name: image_entropy.SIGNAL,
    perplexity.SIGNAL.name: perplexity.SIGNAL,
    ocr_text_density.SIGNAL.name: ocr_text_density.SIGNAL,
    object_density.SIGNAL.name: object_density.SIGNAL,
    vlm_loss.SIGNAL.name: vlm_loss.SIGNAL,
}

INSTANCE_SEP = "@"  # "vlm_loss@7b": one configured instance of a signal (one per cross-modal model)


def base_name(name: str) -> str:
    """The registered signal an instance name refers to (``vlm_loss@7b`` → ``vlm_loss``)."""
    return name.split(INSTANCE_SEP, 1)[0]


def get_signal(name: str) -> Signal:
    """The registered signal called ``name``, or of which ``name`` is an instance (error lists the known ones)."""
    try:
        return SIGNALS[base_name(name)]
    except KeyError:
        raise KeyError(f"unknown signal {name!r}; known: {', '.join(sorted(SIGNALS))}") from None


__all__ = ["INSTANCE_SEP", "SIGNALS", "Axis", "Columns", "Signal", "SignalParams", "base_name", "get_signal"]
