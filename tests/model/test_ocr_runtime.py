"""OCR runtime choices: recipe validation, the cache key, the missing-provider error, device resolution."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from magicvl.model.backends.base import BackendError
from magicvl.model.backends.ocr_runtime import OcrRuntime, check_provider, cuda_provider_available, resolve_device
from magicvl.scoring.signals import get_signal
from magicvl.tasks.steps.signals.units import SignalJob

pytest.importorskip("rapidocr", reason="the OCR tests need the ocr extra: pip install rapidocr onnxruntime")


def params(**kw):
    return get_signal("ocr_text_density").params(tokenizer="tok", **kw)


def test_runtime_fields_are_validated_and_name_the_field():
    p = params()
    assert (p.provider, p.device, p.precision, p.use_cls) == ("openvino", "auto", "bf16", True)
    with pytest.raises(ValidationError, match="precision: 'bf16' needs provider 'openvino'"):
        params(provider="onnxruntime")
    with pytest.raises(ValidationError, match="device: 'cuda' needs provider 'onnxruntime'"):
        params(device="cuda", precision="f32")
    with pytest.raises(ValidationError, match="provider"):
        params(provider="tensorrt")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        params(provder="openvino")


def test_cache_key_changes_with_provider_precision_and_classifier_not_threads():
    sig = get_signal("ocr_text_density")
    key = {
        name: SignalJob.of(sig, params(**kw)).key("shard")
        for name, kw in {
            "default": {},
            "threads": {"threads": 4},
            "ort": {"provider": "onnxruntime", "precision": "f32"},
            "ov_f32": {"precision": "f32"},
            "no_cls": {"use_cls": False},
            "cuda": {"provider": "onnxruntime", "precision": "f32", "device": "cuda"},
        }.items()
    }
    assert key["threads"] == key["default"]
    others = [key[k] for k in ("default", "ort", "ov_f32", "no_cls", "cuda")]
    assert len(set(others)) == len(others)
    engine = SignalJob.of(sig, params(provider="onnxruntime", precision="f32", device="cuda")).engine
    assert "provider=onnxruntime device=cuda precision=f32 cls=1" in engine and "rapidocr==" in engine


@pytest.mark.skipif(cuda_provider_available(), reason="this install has onnxruntime's CUDA provider")
def test_cuda_requested_without_onnxruntime_gpu_is_one_clear_error_at_load():
    from magicvl.tasks.backends import load_backend

    p = params(provider="onnxruntime", precision="f32", device="cuda")
    with pytest.raises(BackendError, match="pip install onnxruntime-gpu") as e:
        load_backend(get_signal("ocr_text_density"), p)
    assert "\n" not in str(e.value)


def test_auto_is_cpu_without_a_gpu_or_without_the_cuda_provider(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert resolve_device(OcrRuntime("onnxruntime", "auto", "f32")) == "cpu"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # a GPU assigned, but CUDA only where the provider exists
    expect = "cuda" if cuda_provider_available() else "cpu"
    assert resolve_device(OcrRuntime("onnxruntime", "auto", "f32")) == expect
    assert resolve_device(OcrRuntime("openvino", "auto", "bf16")) == "cpu"  # OpenVINO here is a CPU runtime
    with pytest.raises(BackendError, match="runs on cpu only"):
        check_provider(OcrRuntime("openvino", "cuda", "f32"), "cuda")


def test_missing_openvino_names_the_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(BackendError, match="not installed: pip install openvino"):
        check_provider(OcrRuntime("openvino", "cpu", "bf16"), "cpu")


def test_openvino_sessions_leave_thread_placement_to_the_os():
    """OpenVINO pins inference threads from the first allowed core on: two OCR actors of one node would share
    core 0 (half speed each, bench/README "OCR actors on one node"). Every session of the engine is unpinned."""
    from magicvl.model.backends.ocr import load_ocr

    engine = load_ocr("rapidocr", 1, OcrRuntime("openvino", "cpu", "bf16")).engine
    sessions = [m.session for m in (engine.text_det, engine.text_rec, engine.text_cls)]
    assert all(s.compiled.get_property("ENABLE_CPU_PINNING") is False for s in sessions)
