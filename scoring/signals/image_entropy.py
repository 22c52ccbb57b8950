"""E: Shannon entropy (bits) of the image's 8-bit luma histogram.

Resize policy (fixed, so values are comparable across datasets): luma of the
image box-reduced by an integer factor to a longer side below ``2 · max_side``
(see ``storage.images.gray_for_signals``); smaller images are used as they
are. The value equals ``skimage.measure.shannon_entropy(gray, base=2)``; it
lies in [0, 8] (8 = the paper's normalisation constant e for 256 levels).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from pydantic import Field

from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals.base import Columns, Signal, SignalParams, map_images


class ImageEntropyParams(SignalParams):
    max_side: int = Field(default=512, ge=16, le=8192, description="Longer side of the luma image measured.")


def entropy_from_counts(counts: np.ndarray | list[int]) -> float:
    """Shannon entropy in bits of a histogram of counts."""
    c = np.asarray(counts, dtype=np.float64)
    p = c[c > 0] / c.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0


def entropy_bits(gray: np.ndarray) -> float:
    """Shannon entropy in bits of a uint8 array's value histogram."""
    return entropy_from_counts(np.bincount(gray.ravel(), minlength=256))


def per_image(gray: Image.Image, params: ImageEntropyParams) -> dict[str, float]:
    return {"image_entropy": entropy_from_counts(gray.histogram())}  # PIL's C histogram of the 'L' image


def compute(batch: SampleBatch, params: ImageEntropyParams, _backend=None) -> Columns:
    return map_images(batch, params.max_side, lambda g: per_image(g, params), ("image_entropy",))


SIGNAL = Signal(
    name="image_entropy",
    version="1",
    axis="image",
    description="Shannon entropy of the luma histogram (E).",
    params=ImageEntropyParams,
    compute=compute,
    columns=("image_entropy",),
    reads="image",
    per_image=per_image,
    image_side=lambda p: p.max_side,
)
