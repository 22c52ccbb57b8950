"""Open-vocabulary detectors for object density: Grounding DINO via transformers, or groundingdino-py.

``GroundingDinoDetector`` loads any ``AutoModelForZeroShotObjectDetection``
path or hub id with its ``AutoProcessor``. ``GroundingDinoPyDetector`` uses the
original ``groundingdino`` package (CUDA torch + torchvision; optional, imported
lazily). Both return, per image, boxes in the image's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from magicvl.model.backends.base import BackendError
from magicvl.model.backends.placement import from_pretrained, resolve_device


@dataclass(frozen=True)
class Detection:
    """One detection: ``box`` (x0, y0, x1, y1) in pixels, the phrase it grounds, its score."""

    box: tuple[float, float, float, float]
    label: str
    score: float


class Detector(Protocol):
    def detect(
        self, images: list[Image.Image], labels: tuple[str, ...], box_threshold: float, text_threshold: float
    ) -> list[list[Detection]]: ...


def query_text(labels: tuple[str, ...]) -> str:
    """Grounding DINO's prompt: lower-case phrases, each ended by a period ('a cat. a dog.')."""
    return " ".join(f"{x.strip().lower().rstrip('.')}." for x in labels)


class GroundingDinoDetector:
    """Grounding DINO through transformers (CPU or GPU)."""

    def __init__(self, model: Any, processor: Any) -> None:
        self.model = model.eval()
        self.processor = processor

    @classmethod
    def load(cls, path_or_id: str, dtype: str = "float32", device: str = "auto") -> GroundingDinoDetector:
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        try:
            processor = AutoProcessor.from_pretrained(path_or_id)
            model = from_pretrained(AutoModelForZeroShotObjectDetection, path_or_id, dtype, device)
        except BackendError:
            raise
        except Exception as e:
            raise BackendError(f"cannot load detector {path_or_id!r}: {type(e).__name__}: {e}") from e
        return cls(model, processor)

    def check_labels(self, labels: tuple[str, ...]) -> None:
        """BackendError when the query of ``labels`` is longer than the model's text length (every image would fail)."""
        n = len(self.processor.tokenizer(query_text(labels))["input_ids"])
        limit = getattr(self.model.config, "max_text_len", None)
        if limit is not None and n > limit:
            raise BackendError(
                f"the query of {len(labels)} labels is {n} tokens, over the detector's max_text_len {limit}: "
                "use fewer or shorter labels"
            )

    def detect(
        self, images: list[Image.Image], labels: tuple[str, ...], box_threshold: float, text_threshold: float
    ) -> list[list[Detection]]:
        import torch

        text = [query_text(labels)] * len(images)
        inputs = self.processor(images=images, text=text, return_tensors="pt").to(self.model.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)  # [B, 3, H, W]
        with torch.inference_mode():
            outputs = self.model(**inputs)
        results = self.processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=box_threshold,
            text_threshold=text_threshold,
            target_sizes=[(im.height, im.width) for im in images],
        )
        return [
            [
                Detection(tuple(float(v) for v in box), str(label), float(score))
                for box, label, score in zip(r["boxes"].float().tolist(), r["text_labels"], r["scores"].tolist())
            ]
            for r in results
        ]


class GroundingDinoPyDetector:
    """The original ``groundingdino`` package: ``model`` is a folder with one config ``*.py`` and one ``*.pth``."""

    def __init__(self, model: Any, device: str) -> None:
        self.model = model
        self.device = device

    @classmethod
    def load(cls, folder: str, device: str = "auto") -> GroundingDinoPyDetector:
        try:
            from groundingdino.util.inference import load_model
        except ImportError as e:
            raise BackendError("detector backend 'groundingdino-py' needs: pip install groundingdino-py") from e
        p = Path(folder)
        configs, weights = sorted(p.glob("*.py")), sorted(p.glob("*.pth"))
        if len(configs) != 1 or len(weights) != 1:
            raise BackendError(f"{folder}: expected one config *.py and one weights *.pth for groundingdino-py")
        dev = resolve_device(device)
        try:
            return cls(load_model(str(configs[0]), str(weights[0]), device=dev), dev)
        except Exception as e:
            raise BackendError(f"cannot load groundingdino-py model {folder!r}: {type(e).__name__}: {e}") from e

    def detect(
        self, images: list[Image.Image], labels: tuple[str, ...], box_threshold: float, text_threshold: float
    ) -> list[list[Detection]]:
        import groundingdino.datasets.transforms as T
        from groundingdino.util.inference import predict

        normalize = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        transform = T.Compose([T.RandomResize([800], max_size=1333), T.ToTensor(), normalize])
        out = []
        for im in images:
            tensor, _ = transform(im, None)  # [3, H, W]
            boxes, logits, phrases = predict(
                self.model, tensor, query_text(labels), box_threshold, text_threshold, device=self.device
            )
            w, h = im.width, im.height
            dets = []
            for (cx, cy, bw, bh), score, phrase in zip(boxes.tolist(), logits.tolist(), phrases):  # normalised cxcywh
                box = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
                dets.append(Detection(box, phrase, float(score)))
            out.append(dets)
        return out


def load_detector(backend: str, path_or_id: str, dtype: str = "float32", device: str = "auto") -> Detector:
    """The detector of ``backend`` ('transformers' or 'groundingdino-py') loaded from ``path_or_id``."""
    if backend == "transformers":
        return GroundingDinoDetector.load(path_or_id, dtype, device)
    if backend == "groundingdino-py":
        return GroundingDinoPyDetector.load(path_or_id, device)
    raise BackendError(f"unknown detector backend {backend!r}; known: transformers, groundingdino-py")
