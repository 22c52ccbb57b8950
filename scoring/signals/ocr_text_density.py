"""D_text: text tokens recognised per megapixel of the image (OCR text density).

``ocr_text_density`` = tokens of the recognised strings (under the run's
``tokenizer``, no special tokens) / (width × height / 10⁶) of the *original*
image. Raw pieces stored beside it: box count, tokens, characters, covered
area share (sum of box areas / image area, capped at 1) and mean confidence
(NaN without boxes). A blank image gives 0.

Downscale policy (``views``): an image whose longer side is at most
``max_side`` is read as it is. A moderately shaped one (aspect ≤
``max_aspect``) is downscaled so its longer side is ``max_side``. A long one
(a scrolling screenshot, a receipt) is downscaled only so its *shorter* side is
at most ``max_side`` and then cut along its long axis into the fewest
``max_side`` tiles, evenly spaced, that overlap by at least ``overlap`` pixels.
A line belongs to the tile that owns its centre (ownership splits each overlap
in the middle), so no line is counted twice, none is lost at a seam when lines
are shorter than ``overlap``, and small text is not squashed into illegibility.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from PIL import Image
from pydantic import Field, model_validator

from magicvl.model.backends.ocr import OcrLine, engine_identity, polygon_area
from magicvl.model.backends.ocr_runtime import OcrRuntime
from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals.base import Columns, Signal, SignalParams, map_rgb_images

COLUMNS = (
    "ocr_text_density",
    "ocr_text_density_boxes",
    "ocr_text_density_tokens",
    "ocr_text_density_chars",
    "ocr_text_density_area_share",
    "ocr_text_density_confidence",
)


class OcrTextDensityParams(SignalParams):
    unkeyed: ClassVar[tuple[str, ...]] = ("threads",)

    tokenizer: str = Field(description="Tokenizer path or id that counts recognised text (same as L's).")
    engine: Literal["rapidocr", "paddleocr"] = Field(default="rapidocr", description="OCR backend.")
    provider: Literal["openvino", "onnxruntime"] = Field(
        default="openvino",
        description="rapidocr's inference runtime: openvino (CPU, pip install openvino) or onnxruntime (CPU, or CUDA"
        " with onnxruntime-gpu).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="auto: with provider onnxruntime, cuda when the step's resources ask for GPUs (num_gpus > 0)"
        " else cpu (resolved from the recipe, so the cache key names the device); with openvino, the CPU.",
    )
    precision: Literal["f32", "bf16"] = Field(
        default="bf16", description="Inference precision; bf16 needs provider openvino (f32 where the CPU lacks bf16)."
    )
    use_cls: bool = Field(default=True, description="Run the text-direction classifier (0/180 degrees) on each line.")
    max_side: int = Field(default=1280, ge=64, le=8192, description="Longest side (or tile length) read.")
    max_aspect: float = Field(default=2.5, ge=1.0, le=100.0, description="Longer/shorter side above which to tile.")
    overlap: int = Field(default=64, ge=0, le=1024, description="Overlap of adjacent tiles in pixels.")
    threads: int | None = Field(
        default=None, ge=1, le=256, description="Engine threads per worker; default: the step's num_cpus (not keyed)."
    )

    @model_validator(mode="after")
    def _runtime_fits(self) -> OcrTextDensityParams:
        if self.precision == "bf16" and self.provider != "openvino":
            raise ValueError(f"precision: 'bf16' needs provider 'openvino' (got provider {self.provider!r}); use f32")
        if self.device == "cuda" and self.provider != "onnxruntime":
            raise ValueError(f"device: 'cuda' needs provider 'onnxruntime' (got {self.provider!r})")
        return self


@dataclass(frozen=True)
class View:
    """One crop the engine reads: ``box`` (x0, y0, x1, y1) in the scaled image; it owns centres in ``own``."""

    box: tuple[int, int, int, int]
    own: tuple[float, float]  # range of the long-axis coordinate this view owns


def views(width: int, height: int, p: OcrTextDensityParams) -> tuple[float, list[View]]:
    """Scale factor and the crops of the scaled image the engine reads (see the module docstring)."""
    long_, short = max(width, height), min(width, height)
    if long_ <= p.max_side:
        return 1.0, [View((0, 0, width, height), (0.0, float(long_)))]
    tiled = long_ / short > p.max_aspect
    scale = min(1.0, p.max_side / short) if tiled else p.max_side / long_
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    length = max(w, h)
    if length <= p.max_side:
        return scale, [View((0, 0, w, h), (0.0, float(length)))]
    stride = max(1, p.max_side - p.overlap)
    n = -(-(length - p.max_side) // stride) + 1  # fewest tiles whose overlaps are all ≥ overlap
    starts = [round(k * (length - p.max_side) / (n - 1)) for k in range(n)]  # spread evenly
    out = []
    for k, s in enumerate(starts):
        lo = 0.0 if k == 0 else (s + starts[k - 1] + p.max_side) / 2
        hi = float(length) if k == len(starts) - 1 else (starts[k + 1] + s + p.max_side) / 2
        box = (s, 0, s + p.max_side, h) if w >= h else (0, s, w, s + p.max_side)
        out.append(View(box, (lo, hi)))
    return scale, out


def read_lines(engine: Any, image: Image.Image, p: OcrTextDensityParams) -> list[OcrLine]:
    """The engine's lines over all views, boxes mapped back to the original image's pixels."""
    scale, vs = views(image.width, image.height, p)
    scaled = (
        image
        if scale == 1.0
        else image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR
        )
    )
    axis = 0 if scaled.width >= scaled.height else 1
    lines: list[OcrLine] = []
    for v in vs:
        crop = scaled if len(vs) == 1 else scaled.crop(v.box)
        for line in engine.read(crop):
            box = line.box + np.array(v.box[:2], dtype=np.float64)  # [4, 2] in the scaled image
            centre = box[:, axis].mean()
            if v.own[0] <= centre < v.own[1] or len(vs) == 1:
                lines.append(OcrLine(box / scale, line.text, line.score))
    return lines


def measure(lines: list[OcrLine], width: int, height: int, tokenizer: Any) -> dict[str, float]:
    """The signal's columns for one image from its recognised lines."""
    texts = [line.text.strip() for line in lines]
    ids = tokenizer([t for t in texts if t], add_special_tokens=False)["input_ids"] if any(texts) else []
    tokens = float(sum(len(x) for x in ids))
    area = float(width * height)
    covered = sum(polygon_area(line.box) for line in lines)
    return {
        "ocr_text_density": tokens / (area / 1e6),
        "ocr_text_density_boxes": float(len(lines)),
        "ocr_text_density_tokens": tokens,
        "ocr_text_density_chars": float(sum(len(t) for t in texts)),
        "ocr_text_density_area_share": min(1.0, covered / area),
        "ocr_text_density_confidence": float(np.mean([x.score for x in lines])) if lines else float("nan"),
    }


def compute(batch: SampleBatch, params: OcrTextDensityParams, backend) -> Columns:
    """OCR every image of the batch (``backend``: model.backends.ocr.OcrBackend); NaN for text-only rows."""

    def one(img: Image.Image) -> dict[str, float]:
        return measure(read_lines(backend.engine, img, params), img.width, img.height, backend.tokenizer)

    return map_rgb_images(batch, one, COLUMNS)


def runtime(params: OcrTextDensityParams, threads: int = 1) -> OcrRuntime:
    """How rapidocr runs (provider, device, precision, classifier, threads) under ``params``."""
    return OcrRuntime(params.provider, params.device, params.precision, params.use_cls, threads)


def placed(params: dict[str, Any], num_gpus: float) -> dict[str, Any]:
    """``device: auto`` on onnxruntime is CUDA only where the step holds GPUs: name that device (a CPU and a
    GPU run are different numerics, so different cache keys); openvino's ``auto`` is always the CPU, kept."""
    if params.get("provider") == "onnxruntime" and params.get("device", "auto") == "auto":
        return {**params, "device": "cuda" if num_gpus > 0 else "cpu"}
    return params


def engine(params: OcrTextDensityParams) -> str:
    """The OCR engine's package versions (its bundled models) and numerics: part of the cache key."""
    return engine_identity(params.engine, runtime(params) if params.engine == "rapidocr" else None)


SIGNAL = Signal(
    name="ocr_text_density",
    version="2",  # 2: OpenVINO bf16 by default (provider/device/precision/use_cls params)
    axis="image",
    description="Text tokens recognised by OCR per megapixel (D_text).",
    params=OcrTextDensityParams,
    compute=compute,
    columns=COLUMNS,
    reads="image",
    backend="ocr",
    engine=engine,
    placed=placed,
)
