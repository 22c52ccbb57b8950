"""D_obj: open-vocabulary detections per megapixel of the image (object density).

Grounding DINO (paper's choice) is prompted with the recipe's ``labels``
("person. car. ...") and keeps boxes whose best phrase score passes
``box_threshold`` and phrase tokens passing ``text_threshold``.
``object_density`` = detections / (width × height / 10⁶) of the original
image; ``object_density_count`` is the count and ``object_density_boxes`` a
JSON list of ``{"box": [x0, y0, x1, y1], "label": ..., "score": ...}`` in the
original image's pixels. The detector's processor does its own resizing
(shortest side 800, longest 1333 for the real models).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from PIL import Image
from pydantic import Field

from magicvl.model.backends.detector import Detection
from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals.base import Columns, Signal, SignalParams, rgb_images, to_columns

COLUMNS = ("object_density", "object_density_count")
TEXT_COLUMNS = ("object_density_boxes",)
DEFAULT_LABELS = (
    "person", "animal", "car", "building", "tree", "furniture", "food", "sign",
    "text", "screen", "button", "icon", "chart", "table", "logo", "object",
)  # fmt: skip


class ObjectDensityParams(SignalParams):
    unkeyed: ClassVar[tuple[str, ...]] = ("batch_size", "device")

    model: str = Field(description="Grounding DINO path or hub id, e.g. IDEA-Research/grounding-dino-tiny.")
    backend: Literal["transformers", "groundingdino-py"] = Field(default="transformers", description="Detector.")
    labels: tuple[str, ...] = Field(default=DEFAULT_LABELS, min_length=1, description="Query vocabulary.")
    box_threshold: float = Field(default=0.35, gt=0.0, lt=1.0, description="Minimum box score.")
    text_threshold: float = Field(default=0.25, gt=0.0, lt=1.0, description="Minimum phrase-token score.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(default="float32", description="Weights dtype.")
    batch_size: int = Field(default=4, ge=1, le=256, description="Images per forward pass (not part of the key).")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto: the actor's GPU when num_gpus > 0 and torch sees CUDA, else cpu."
    )


def measure(dets: list[Detection], width: int, height: int) -> dict[str, Any]:
    """The signal's columns for one image from its detections."""
    boxes = [{"box": [round(v, 2) for v in d.box], "label": d.label, "score": round(d.score, 4)} for d in dets]
    return {
        "object_density": len(dets) / (width * height / 1e6),
        "object_density_count": float(len(dets)),
        "object_density_boxes": json.dumps(boxes, ensure_ascii=False),
    }


def compute(batch: SampleBatch, params: ObjectDensityParams, detector) -> Columns:
    """Detect on every image of the batch in chunks of ``batch_size``; NaN/None for text-only rows."""
    rows: list[dict[str, Any] | None] = [None] * len(batch)
    errors: list[str | None] = [None] * len(batch)
    chunk: list[tuple[int, Image.Image]] = []  # (row, decoded image): at most batch_size decoded at once
    for i, img in enumerate(rgb_images(batch)):
        if isinstance(img, Exception):
            errors[i] = f"{type(img).__name__}: {img}"
        elif img is not None:
            chunk.append((i, img))
        if chunk and (len(chunk) == params.batch_size or i == len(batch) - 1):
            _detect_chunk(detector, chunk, params, rows, errors)
            chunk = []
    return to_columns(rows, COLUMNS + TEXT_COLUMNS, errors)


def _detect_chunk(
    detector: Any, chunk: list[tuple[int, Image.Image]], p: ObjectDensityParams, rows: list, errors: list
) -> None:
    """Detections of one chunk of images into ``rows`` (per-image errors into ``errors``)."""
    idx = [i for i, _ in chunk]
    images = [im for _, im in chunk]
    for i, im, dets in zip(idx, images, _detect(detector, images, p, errors, idx)):
        if dets is not None:
            rows[i] = measure(dets, im.width, im.height)


def _detect(
    detector: Any, images: list[Image.Image], p: ObjectDensityParams, errors: list[str | None], rows: list[int]
) -> list[list[Detection] | None]:
    """Detections per image; when the batch fails, one image at a time so only the bad one errs."""
    try:
        return detector.detect(images, p.labels, p.box_threshold, p.text_threshold)
    except Exception:
        out: list[list[Detection] | None] = []
        for im, i in zip(images, rows):
            try:
                out.append(detector.detect([im], p.labels, p.box_threshold, p.text_threshold)[0])
            except Exception as e:
                errors[i] = f"object_density: {type(e).__name__}: {e}"
                out.append(None)
        return out


SIGNAL = Signal(
    name="object_density",
    version="1",
    axis="image",
    description="Open-vocabulary detections (Grounding DINO) per megapixel (D_obj).",
    params=ObjectDensityParams,
    compute=compute,
    columns=COLUMNS,
    reads="image",
    backend="detector",
    text_columns=TEXT_COLUMNS,
)
