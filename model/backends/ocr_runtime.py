"""Where rapidocr's PP-OCR models run: onnxruntime (CPU or its CUDA provider) or OpenVINO (CPU).

``OcrRuntime`` is what the recipe chooses (``provider``, ``device``, ``precision``,
``use_cls``, ``threads``); ``resolve_device`` turns ``device: auto`` into ``cpu``
or ``cuda`` inside the worker; ``check_provider`` is the one clear error for a
provider that is not installed. OpenVINO runs the *same* ONNX files rapidocr
ships (no download): :func:`use_openvino` swaps the sessions of a loaded
``RapidOCR`` for OpenVINO-compiled ones, keeping rapidocr's pre/post-processing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from magicvl.model.backends.base import BackendError

Provider = Literal["onnxruntime", "openvino"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["f32", "bf16"]

# What to install for each (provider, device): named in the error when it is missing.
INSTALL = {
    ("onnxruntime", "cpu"): "pip install onnxruntime",
    ("onnxruntime", "cuda"): "pip install onnxruntime-gpu (in place of onnxruntime)",
    ("openvino", "cpu"): "pip install openvino",
}
REC_WIDTH_BUCKET = 64  # OpenVINO recognizer: widths padded to a multiple of this (few distinct shapes)


@dataclass(frozen=True)
class OcrRuntime:
    """How the OCR models run. ``device`` is resolved (``cpu``/``cuda``) by :func:`resolve_device` at load."""

    provider: Provider = "openvino"
    device: Device = "auto"
    precision: Precision = "bf16"
    use_cls: bool = True
    threads: int = 1

    def identity(self) -> str:
        """The numerics part of the cache key: 'provider=openvino device=auto precision=bf16 cls=1'."""
        return f"provider={self.provider} device={self.device} precision={self.precision} cls={int(self.use_cls)}"


def ray_gpu_assigned() -> bool:
    """True when Ray gave this worker a GPU (ray.get_gpu_ids(), else a non-empty CUDA_VISIBLE_DEVICES)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        try:
            return bool(ray.get_gpu_ids())
        except Exception:  # the driver, or a Ray that cannot answer: fall back to the environment
            pass
    return bool(os.environ.get("CUDA_VISIBLE_DEVICES", "").strip())


def cuda_provider_available() -> bool:
    """onnxruntime lists its CUDA execution provider (onnxruntime-gpu installed)."""
    try:
        import onnxruntime
    except ImportError:
        return False
    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def resolve_device(rt: OcrRuntime) -> Literal["cpu", "cuda"]:
    """``auto``: CUDA when Ray assigned a GPU and the onnxruntime CUDA provider is installed, else CPU."""
    if rt.device != "auto":
        return rt.device
    if rt.provider == "onnxruntime" and ray_gpu_assigned() and cuda_provider_available():
        return "cuda"
    return "cpu"


def check_provider(rt: OcrRuntime, device: str) -> None:
    """One BackendError naming the package to install when the provider/device pair cannot run here."""
    key = (rt.provider, device)
    if key not in INSTALL:
        raise BackendError(f"OCR provider {rt.provider!r} runs on cpu only, not {device!r}")
    pkg = "openvino" if rt.provider == "openvino" else "onnxruntime"
    if importlib.util.find_spec(pkg) is None:
        raise BackendError(f"OCR provider {rt.provider!r} on {device} is not installed: {INSTALL[key]}")
    if device == "cuda" and not cuda_provider_available():
        import onnxruntime

        raise BackendError(
            f"OCR provider 'onnxruntime' on cuda needs onnxruntime's CUDAExecutionProvider, which this install "
            f"lacks (available: {onnxruntime.get_available_providers()}): {INSTALL[key]}"
        )
    if rt.precision == "bf16" and rt.provider != "openvino":
        raise BackendError(f"OCR precision 'bf16' needs provider 'openvino', not {rt.provider!r}")


def rapidocr_params(rt: OcrRuntime, device: str) -> dict[str, Any]:
    """rapidocr config overrides for ``rt`` (models are loaded by onnxruntime first in every case)."""
    params: dict[str, Any] = {
        "Global.log_level": "error",
        "Global.use_cls": rt.use_cls,
        "EngineConfig.onnxruntime.intra_op_num_threads": rt.threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }
    if device == "cuda":
        params["EngineConfig.onnxruntime.use_cuda"] = True
        params["EngineConfig.onnxruntime.cuda_ep_cfg.device_id"] = 0  # the first device Ray made visible
    return params


class OpenVinoSession:
    """An OpenVINO-compiled ONNX model called like rapidocr's sessions: ``session(x [N, C, H, W]) -> out``.

    ``bucket`` > 0 pads the input width with zeros (rapidocr's own padding value)
    to a multiple of ``bucket`` and crops the output's sequence axis back, so the
    recognizer compiles for a few widths instead of one per batch.
    """

    def __init__(self, path: str, threads: int, precision: str, bucket: int = 0) -> None:
        import openvino as ov

        cfg = {
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": precision,
            # OpenVINO pins its inference threads to cores counted from the first one the process may use: two
            # workers of one node (Ray actors share the node's cores) both land on core 0 and run at half speed
            # (measured: 1.28 vs 0.70 s per document page for two concurrent workers). The OS spreads them.
            "ENABLE_CPU_PINNING": False,
        }
        self.compiled = ov.Core().compile_model(path, "CPU", cfg)
        self.request = self.compiled.create_infer_request()
        self.bucket = bucket

    def __call__(self, x: np.ndarray) -> np.ndarray:
        w = x.shape[3]
        wp = -(-w // self.bucket) * self.bucket if self.bucket else w
        if wp != w:
            x = np.concatenate([x, np.zeros((*x.shape[:3], wp - w), x.dtype)], axis=3)
        self.request.infer([np.ascontiguousarray(x)])
        y = self.request.get_output_tensor(0).data.copy()  # rec: [N, T, classes]
        return y[:, : round(y.shape[1] * w / wp)] if wp != w else y


def use_openvino(engine: Any, rt: OcrRuntime) -> None:
    """Replace the onnxruntime sessions of a loaded ``RapidOCR`` by OpenVINO ones on the same ONNX files."""
    parts = [("text_det", engine._load_det_model(), 0), ("text_rec", engine._load_rec_model(), REC_WIDTH_BUCKET)]
    if rt.use_cls:
        parts.append(("text_cls", engine._load_cls_model(), 0))
    for name, model, bucket in parts:
        ort = getattr(model.session, "session", None)
        path = getattr(ort, "_model_path", None)
        if not path:
            raise BackendError(f"cannot find the ONNX file of rapidocr's {name} to compile with OpenVINO")
        model.session = OpenVinoSession(str(path), rt.threads, rt.precision, bucket)
