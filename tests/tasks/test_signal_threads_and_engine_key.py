"""OCR engine versions in the cache key; backends use the CPUs their Ray worker reserved, not every core."""

from __future__ import annotations

import importlib.metadata

import pytest

from magicvl.model.backends.ocr import engine_identity
from magicvl.scoring.signals import get_signal
from magicvl.tasks.backends import in_ray_worker, worker_threads
from magicvl.tasks.steps.signals.units import SignalJob


def _versions(monkeypatch, **pinned: str) -> None:
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda pkg: pinned.get(pkg) or real(pkg))


def test_engine_identity_names_rapidocr_and_onnxruntime_versions():
    ident = engine_identity("rapidocr")
    v = importlib.metadata.version
    assert ident == f"rapidocr=={v('rapidocr')} onnxruntime=={v('onnxruntime')}"
    assert engine_identity("paddleocr").startswith("paddleocr==")  # not installed here: named, not an error


def test_ocr_cache_key_changes_with_the_ocr_packages_not_with_threads(monkeypatch, tokenizer_dir):
    s = get_signal("ocr_text_density")
    params = s.params(tokenizer=str(tokenizer_dir))
    _versions(monkeypatch, rapidocr="3.10.0", onnxruntime="1.32.0", openvino="2026.4.1")
    job = SignalJob.of(s, params)
    key = job.key("shard")
    numerics = "provider=openvino device=auto precision=bf16 cls=1"  # the default runtime (model/backends/ocr_runtime)
    assert job.engine == f"rapidocr==3.10.0 onnxruntime==1.32.0 openvino==2026.4.1 {numerics}"
    assert job.identity()["engine"] == job.engine and job.identity()["model"] == job.model_id
    assert SignalJob.of(s, s.params(tokenizer=str(tokenizer_dir), threads=4)).key("shard") == key
    assert SignalJob.of(s, s.params(tokenizer=str(tokenizer_dir), max_side=640)).key("shard") != key
    _versions(monkeypatch, rapidocr="3.11.0", onnxruntime="1.32.0", openvino="2026.4.1")
    assert SignalJob.of(s, params).key("shard") != key  # an OCR upgrade (new bundled models) recomputes
    _versions(monkeypatch, rapidocr="3.10.0", onnxruntime="1.33.0", openvino="2026.4.1")
    assert SignalJob.of(s, params).key("shard") != key  # so does a runtime upgrade
    _versions(monkeypatch, rapidocr="3.10.0", onnxruntime="1.32.0", openvino="2026.5.0")
    assert SignalJob.of(s, params).key("shard") != key  # and one of the default provider, OpenVINO
    _versions(monkeypatch, rapidocr="3.10.0", onnxruntime="1.32.0", openvino="2026.4.1")
    assert SignalJob.of(s, params).key("shard") == key


def test_signals_without_an_engine_keep_their_model_key(causal_lm_dir):
    s = get_signal("perplexity")
    job = SignalJob.of(s, s.params(model=str(causal_lm_dir)))
    assert job.engine is None and job.model_key == job.model_id and job.model_id.startswith("local:")


def test_outside_ray_a_backend_gets_one_thread():
    assert not in_ray_worker() and worker_threads() == 1


def _actor_threads(loads: list[tuple[str, dict]], num_cpus: float) -> list[dict]:
    """In ONE Ray actor reserving ``num_cpus``, load each signal's backend in turn and report the thread
    settings right after each load (one worker start per case instead of one per backend: the settings
    are per process, and each load sets them again)."""
    import ray

    @ray.remote
    class Probe:
        def load(self, signal: str, params: dict) -> dict:
            import cv2
            import torch

            from magicvl.tasks.backends import load_backend

            s = get_signal(signal)
            self.backend = load_backend(s, s.params(**params))
            return {"worker": worker_threads(), "cv2": cv2.getNumThreads(), "torch": torch.get_num_threads()}

    probe = Probe.options(num_cpus=num_cpus).remote()
    try:
        return [ray.get(probe.load.remote(signal, params)) for signal, params in loads]
    finally:
        ray.kill(probe)


@pytest.mark.parametrize("num_cpus", [1, 2])
def test_ocr_and_detector_threads_follow_the_steps_num_cpus(ray_local, tokenizer_dir, grounding_dino_dir, num_cpus):
    ocr, det, pinned = _actor_threads(
        [
            ("ocr_text_density", {"tokenizer": str(tokenizer_dir)}),
            ("object_density", {"model": str(grounding_dino_dir)}),
            ("ocr_text_density", {"tokenizer": str(tokenizer_dir), "threads": 1}),
        ],
        num_cpus,
    )
    assert ocr["worker"] == num_cpus and ocr["cv2"] == num_cpus
    assert det["worker"] == num_cpus and det["torch"] == num_cpus
    assert pinned["cv2"] == 1  # the signal's own `threads` wins over the reservation


def test_onnxruntime_auto_device_is_keyed_as_the_device_the_step_gets():
    """`device: auto` on onnxruntime runs CUDA only where the step holds GPUs: the recipe resolves it, so a CPU
    run and a GPU run never share a cache key; openvino's `auto` (always the CPU) keeps its key."""
    from pathlib import Path

    from magicvl.flows.recipe import load_recipe

    paper = load_recipe(Path(__file__).resolve().parents[2] / "flows" / "recipes" / "paper.yaml")
    ocr = paper.signals["ocr_text_density"]
    ocr["device"] = "auto"
    assert paper.resources.signal("ocr_text_density").num_gpus == 0.25
    assert paper.signal_params("ocr_text_density").device == "cuda"
    res = paper.resources.signals["ocr_text_density"]
    paper.resources.signals["ocr_text_density"] = res.model_copy(update={"num_gpus": 0.0})
    on_cpu = paper.signal_params("ocr_text_density")
    assert on_cpu.device == "cpu" and "device=cpu" in SignalJob.of(get_signal("ocr_text_density"), on_cpu).engine
    ocr.update(provider="openvino", precision="bf16")
    assert paper.signal_params("ocr_text_density").device == "auto"  # the default key is unchanged
