"""What a signal is: a named, versioned, pure batch → columns computation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict

from magicvl.scoring.batch import SampleBatch

Axis = Literal["text", "image", "task"]
Columns = dict[str, np.ndarray]


class SignalParams(BaseModel):
    """Base of every signal's parameters: frozen, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Fields that change how values are computed (batching, threads) but not the values:
    # left out of the cache key, so retuning them reuses stored results.
    unkeyed: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class Signal:
    """A complexity signal.

    ``compute(batch, params, backend)`` returns one float array per output
    column (NaN where the value does not exist, e.g. entropy of a text-only
    sample), and may add ``"error"``: a list of per-row error strings or None.
    ``columns[0]`` is the metric ``combine`` uses and equals ``name``.
    ``backend`` names what the task layer must load and pass in (e.g. a
    tokenizer from the path in ``params.tokenizer``); None for model-free ones.
    ``text_columns`` are string-valued extras (None where absent), e.g. JSON.
    ``engine(params)`` names the packages (and versions) that bundle the model
    when the model is not a path or id of its own (OCR engines).
    ``per_image`` marks a model-free image signal that ingestion can evaluate
    on the luma image it has just decoded (one decode for check + signal).
    """

    name: str
    version: str
    axis: Axis
    description: str
    params: type[SignalParams]
    compute: Callable[[SampleBatch, Any, Any], Columns]
    columns: tuple[str, ...]
    reads: Literal["text", "image", "both"]  # both: conversations and image bytes in one batch
    backend: Literal["tokenizer", "lm", "vlm", "ocr", "detector"] | None = None
    per_image: Callable[[Image.Image, Any], dict[str, float]] | None = None
    image_side: Callable[[Any], int] | None = None
    text_columns: tuple[str, ...] = ()  # extra string columns (e.g. JSON boxes), after the float ones
    # Installed versions of the packages whose bundled models compute the values (rapidocr's PP-OCR):
    # part of the cache key beside ``model_ref``'s identity, so upgrading them recomputes.
    engine: Callable[[Any], str] | None = None
    # The recipe's raw parameters and the step's GPUs (``resources.signals.<name>.num_gpus``) → the parameters
    # with a device that depends on them resolved, so the cache key names the device the numerics come from.
    placed: Callable[[dict[str, Any], float], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not self.columns or self.columns[0] != self.name:
            raise ValueError(f"signal {self.name!r}: columns[0] must be the signal name")

    @property
    def image_only(self) -> bool:
        """Reads only the image: one value per distinct image, reused by every sample that carries it
        (``tasks.steps.signals.images``). A signal whose value depends on anything but the image
        bytes and its parameters must read ``"both"``."""
        return self.reads == "image"

    def model_ref(self, params: SignalParams) -> str | None:
        """The model/tokenizer path or id this signal's values depend on (part of the cache key)."""
        for attr in ("model", "tokenizer"):
            if hasattr(params, attr):
                return getattr(params, attr)
        return None


def map_images(
    batch: SampleBatch, side: int, fn: Callable[[np.ndarray], dict[str, float]], columns: tuple[str, ...]
) -> Columns:
    """Apply a per-image function over a batch's decoded images (NaN for rows without one)."""
    out = {c: np.full(len(batch), np.nan) for c in columns}
    errors: list[str | None] = [None] * len(batch)
    for i, img in enumerate(batch.gray(side)):
        if img is None:
            continue
        if isinstance(img, Exception):
            errors[i] = str(img)
            continue
        for c, v in fn(img).items():
            out[c][i] = v
    if any(errors):
        out["error"] = np.array(errors, dtype=object)
    return out


def rgb_images(batch: SampleBatch) -> Iterator[Image.Image | Exception | None]:
    """Per row, one at a time: the full-size 8-bit RGB image, None without one, or the decode error.

    Each image is decoded completely when its row is reached, inside its own
    decode deadline: a lazily opened image whose pixels were read later (after
    slow model work on the rows before it) would hit the deadline it got at
    open time. One row at a time also keeps one batch's decoded images out of memory.
    """
    from magicvl.storage.images import _load, open_checked, to_rgb

    for data in batch.images or [None] * len(batch):
        if data is None:
            yield None
            continue
        try:
            img = open_checked(data, batch.max_pixels)
            _load(img)
            yield to_rgb(img)
        except Exception as e:
            yield e


def to_columns(rows: list[dict[str, Any] | None], columns: tuple[str, ...], errors: list[str | None]) -> Columns:
    """Per-row dicts → column arrays (float, NaN where missing; object for string columns) + ``error``."""
    cols: Columns = {}
    for c in columns:
        vals = [None if r is None else r.get(c) for r in rows]
        if any(isinstance(v, str) for v in vals):
            cols[c] = np.array(vals, dtype=object)
        else:
            cols[c] = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)
    if any(errors):
        cols["error"] = np.array(errors, dtype=object)
    return cols


def map_rgb_images(
    batch: SampleBatch, fn: Callable[[Image.Image], dict[str, Any]], columns: tuple[str, ...]
) -> Columns:
    """Apply a per-image function over a batch's full-size RGB images (a failing row gets its error)."""
    rows: list[dict[str, Any] | None] = [None] * len(batch)
    errors: list[str | None] = [None] * len(batch)
    for i, img in enumerate(rgb_images(batch)):
        if img is None:
            continue
        try:
            if isinstance(img, Exception):
                raise img
            rows[i] = fn(img)
        except Exception as e:
            errors[i] = f"{type(e).__name__}: {e}"
    return to_columns(rows, columns, errors)
