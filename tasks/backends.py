"""What each signal needs besides the batch, loaded once per worker (actor) and reused.

``load_backend(signal, params)`` by ``signal.backend``:

* ``tokenizer``: a light ``tokenizers.Tokenizer`` when the path is a local
  folder with a plain ``tokenizer.json`` (no transformers/torch import: fast
  worker start), else ``AutoTokenizer.from_pretrained`` (hub ids);
* ``lm``: a causal-LM scorer (``TransformersCausalLM`` or ``VllmCausalLM``);
* ``ocr``: ``OcrBackend(engine, tokenizer)``;
* ``detector``: a Grounding DINO detector;
* ``vlm``: a VLM response-loss scorer (``model.backends.vlm.load_vlm_backend``).

Threads: a backend uses as many threads as the CPUs Ray reserved for the
worker it runs in (the step's ``num_cpus``, at least 1; 1 outside Ray), unless
the signal's own ``threads`` parameter says otherwise: onnxruntime's intra-op
threads and OpenCV's pool for OCR, ``torch.set_num_threads`` for torch models.
Without this, every actor on a node would start one thread per core and N
actors would oversubscribe the node N times.

A model-backed signal's actor pool loads it once per actor (``SignalUnit.setup``
→ ``tasks.executor.UnitActor``) and waits for every actor's load before any unit
runs, so a model that cannot load is one clear error, not one per shard;
``check_backend`` is the same check in the calling process. Loads are memoised
per process: Ray reuses workers, actors call this once.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any

from magicvl.model.backends.base import BackendError
from magicvl.scoring.signals import Signal, SignalParams


@lru_cache(maxsize=4)
def tokenizer(path_or_id: str) -> Any:
    """A tokenizer for counting ids (``model.backends.base.load_text_tokenizer``)."""
    from magicvl.model.backends.base import load_text_tokenizer

    return load_text_tokenizer(path_or_id)


@lru_cache(maxsize=2)
def causal_lm(
    path_or_id: str, backend: str, dtype: str, max_length: int, batch_size: int, device: str = "auto", tp: int = 1
) -> Any:
    """A causal-LM scorer for perplexity (``tp``: vLLM tensor_parallel_size)."""
    from magicvl.model.backends.causal_lm import TransformersCausalLM, VllmCausalLM

    if backend == "vllm":
        return VllmCausalLM.load(path_or_id, dtype, max_length, tp)
    return TransformersCausalLM.load(path_or_id, dtype, device, max_length, batch_size)


@lru_cache(maxsize=2)
def ocr(engine: str, tokenizer_path: str, threads: int, runtime: Any = None) -> Any:
    """An OCR engine (``runtime``: model.backends.ocr_runtime.OcrRuntime) and the tokenizer that counts its text."""
    from magicvl.model.backends.ocr import OcrBackend, load_ocr

    return OcrBackend(load_ocr(engine, threads, runtime), tokenizer(tokenizer_path))


@lru_cache(maxsize=2)
def detector(backend: str, path_or_id: str, dtype: str, device: str = "auto") -> Any:
    """An open-vocabulary detector."""
    from magicvl.model.backends.detector import load_detector

    return load_detector(backend, path_or_id, dtype, device)


def in_ray_worker() -> bool:
    """True inside a Ray task or actor (not the driver); never imports ray."""
    ray = sys.modules.get("ray")  # a Ray worker has imported ray already
    return bool(ray and ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE)


def worker_threads() -> int:
    """Whole CPUs Ray reserved for the current task or actor (at least 1); 1 outside a Ray worker."""
    if not in_ray_worker():
        return 1
    cpus = sys.modules["ray"].get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    return max(1, int(cpus))


def _torch_threads() -> None:
    """Inside a Ray worker, torch computes on the worker's reserved CPUs (not one thread per core)."""
    if in_ray_worker():
        import torch

        torch.set_num_threads(worker_threads())


def load_backend(signal: Signal, params: SignalParams) -> Any:
    """What ``signal.compute`` needs besides the batch (None for model-free signals)."""
    kind = signal.backend
    if kind is None:
        return None
    if kind == "tokenizer":
        path = getattr(params, "tokenizer", None)  # read once: type_token_ratio with unit=word needs none
        return tokenizer(path) if path else None
    if kind in ("lm", "detector", "vlm"):
        _torch_threads()
    if kind == "lm":
        p = params
        return causal_lm(p.model, p.backend, p.dtype, p.max_length, p.batch_size, p.device, p.tensor_parallel)
    if kind == "ocr":
        from magicvl.scoring.signals.ocr_text_density import runtime

        threads = params.threads or worker_threads()
        return ocr(params.engine, params.tokenizer, threads, runtime(params, threads))
    if kind == "detector":
        det = detector(params.backend, params.model, params.dtype, params.device)
        if hasattr(det, "check_labels"):
            det.check_labels(params.labels)  # a query the model cannot take: one error, not one per image
        return det
    if kind == "vlm":
        from magicvl.model.backends.vlm import load_vlm_backend

        return load_vlm_backend(params)
    raise ValueError(f"signal {signal.name!r} needs backend {kind!r}, which this build does not provide")


def check_backend(signal: Signal, params: SignalParams) -> None:
    """Load the signal's backend now; raise one BackendError naming the signal if it cannot load."""
    try:
        load_backend(signal, params)
    except BackendError as e:
        raise BackendError(f"signal {signal.name!r}: {e}") from e
    except Exception as e:
        raise BackendError(f"signal {signal.name!r}: cannot load its {signal.backend}: {type(e).__name__}: {e}") from e
