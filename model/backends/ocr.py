"""Text recognisers for OCR text density: RapidOCR (PP-OCR models inside its wheel) or PaddleOCR.

Both are imported lazily inside ``load_ocr``. An engine takes one RGB image
(PIL) and returns the text lines it found, boxes in that image's pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from PIL import Image

from magicvl.model.backends.base import BackendError
from magicvl.model.backends.ocr_runtime import OcrRuntime, check_provider, rapidocr_params, resolve_device, use_openvino

OcrEngineName = Literal["rapidocr", "paddleocr"]


@dataclass(frozen=True)
class OcrLine:
    """One recognised line: quadrilateral ``box`` [4, 2] (x, y pixels), its text and confidence."""

    box: np.ndarray
    text: str
    score: float


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image.Image) -> list[OcrLine]: ...


class RapidOcrEngine:
    """``rapidocr.RapidOCR`` with its bundled PP-OCR det/cls/rec models (no download).

    ``runtime`` picks onnxruntime (CPU, or CUDA with onnxruntime-gpu) or OpenVINO (CPU)
    and the direction classifier; ``device`` is resolved here, in the worker.
    """

    name = "rapidocr"

    def __init__(self, threads: int = 1, runtime: OcrRuntime | None = None) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as e:
            raise BackendError("OCR engine 'rapidocr' needs the ocr extra: pip install rapidocr onnxruntime") from e
        rt = OcrRuntime(provider="onnxruntime", precision="f32") if runtime is None else runtime
        self.runtime, self.device = rt, resolve_device(rt)
        check_provider(rt, self.device)
        try:
            self.engine = RapidOCR(params=rapidocr_params(rt, self.device))
            if rt.provider == "openvino":
                use_openvino(self.engine, rt)
        except BackendError:
            raise
        except Exception as e:
            raise BackendError(f"cannot start rapidocr ({rt.identity()}): {type(e).__name__}: {e}") from e
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        import cv2  # rapidocr's pre/post-processing: keep OpenCV's pool within the same thread budget

        cv2.setNumThreads(rt.threads)

    def read(self, image: Image.Image) -> list[OcrLine]:
        res = self.engine(image)
        if res is None or res.boxes is None or res.txts is None:
            return []
        return [
            OcrLine(np.asarray(b, dtype=np.float64), str(t), float(s))
            for b, t, s in zip(res.boxes, res.txts, res.scores)
        ]


class PaddleOcrEngine:
    """PaddleOCR 3.x (``pip install paddleocr``; its models must be available locally)."""

    name = "paddleocr"

    def __init__(self, threads: int = 1, runtime: OcrRuntime | None = None) -> None:
        if runtime is not None and runtime.device == "cuda":
            raise BackendError("OCR engine 'paddleocr' runs on cpu here (device: cuda is for engine rapidocr)")
        try:
            from paddleocr import PaddleOCR
        except ImportError as e:
            raise BackendError("OCR engine 'paddleocr' needs the paddle extra: pip install paddleocr") from e
        try:
            self.engine = PaddleOCR(use_doc_orientation_classify=False, use_doc_unwarping=False, cpu_threads=threads)
        except Exception as e:
            raise BackendError(f"cannot start paddleocr: {type(e).__name__}: {e}") from e

    def read(self, image: Image.Image) -> list[OcrLine]:
        lines: list[OcrLine] = []
        for page in self.engine.predict(np.asarray(image)[:, :, ::-1]):  # BGR, as cv2 would load it
            for poly, text, score in zip(page["rec_polys"], page["rec_texts"], page["rec_scores"]):
                lines.append(OcrLine(np.asarray(poly, dtype=np.float64), str(text), float(score)))
        return lines


OCR_ENGINES: dict[str, type] = {"rapidocr": RapidOcrEngine, "paddleocr": PaddleOcrEngine}

# The packages whose versions identify an engine's bundled models and runtime (part of the cache key).
ENGINE_PACKAGES: dict[str, tuple[str, ...]] = {
    "rapidocr": ("rapidocr", "onnxruntime"),
    "paddleocr": ("paddleocr", "paddlepaddle"),
}
PROVIDER_PACKAGES: dict[str, tuple[str, ...]] = {"openvino": ("openvino",), "onnxruntime": ()}


def engine_identity(name: str, runtime: OcrRuntime | None = None) -> str:
    """'rapidocr==3.10.0 onnxruntime==1.32.0 openvino==2026.4.1 provider=openvino ...': versions and numerics.

    rapidocr ships its PP-OCR models inside the wheel, so its version *is* the
    models' identity; upgrading any package, or changing the provider, device,
    precision or classifier, changes the OCR signal's cache key.
    """
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    pkgs = ENGINE_PACKAGES.get(name, (name,)) + (PROVIDER_PACKAGES.get(runtime.provider, ()) if runtime else ())
    if runtime is not None and runtime.device == "cuda":
        pkgs += ("onnxruntime-gpu",)
    for pkg in pkgs:
        try:
            parts.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            parts.append(f"{pkg}==not-installed")
    if runtime is not None:
        parts.append(runtime.identity())
    return " ".join(parts)


def load_ocr(name: str, threads: int = 1, runtime: OcrRuntime | None = None) -> Any:
    """The OCR engine called ``name`` (BackendError when it is not installed or does not start)."""
    if name not in OCR_ENGINES:
        raise BackendError(f"unknown OCR engine {name!r}; known: {sorted(OCR_ENGINES)}")
    return OCR_ENGINES[name](threads, runtime)


def polygon_area(box: np.ndarray) -> float:
    """Area of a polygon [K, 2] by the shoelace formula."""
    x, y = box[:, 0], box[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


@dataclass
class OcrBackend:
    """What the OCR text-density signal receives: the engine and the tokenizer that counts its text."""

    engine: Any
    tokenizer: Any
