"""Where a model runs: device choice, multi-GPU sharding, vLLM engine arguments.

Pure functions (no torch or vllm import) build what the loaders pass on, so
they are tested on a machine without a GPU:

* ``pick_device``: ``auto`` is the GPU Ray assigned to this actor (``cuda``:
  Ray sets ``CUDA_VISIBLE_DEVICES`` to it) when it assigned one and torch sees
  CUDA, else ``cpu``; outside Ray, ``auto`` is ``cuda`` whenever torch sees it.
* ``transformers_load_kwargs``: ``from_pretrained`` keyword arguments; over
  more than one visible GPU the model is sharded layer-wise
  (``device_map="auto"`` with a ``max_memory`` budget per GPU).
* ``vllm_llm_kwargs``: ``vllm.LLM(...)`` keyword arguments, with
  ``tensor_parallel_size`` (vLLM's multiprocessing executor on the actor's GPUs).
"""

from __future__ import annotations

import sys
from typing import Any, Literal

from magicvl.model.backends.base import BackendError, torch_dtype

Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
HEADROOM = 0.9  # share of each GPU's memory the weights may fill when sharded (activations need the rest)


def ray_gpu_ids() -> list[str] | None:
    """GPU ids Ray assigned to the current task or actor; None outside a Ray worker (never imports ray)."""
    ray = sys.modules.get("ray")
    if not (ray and ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE):
        return None
    return [str(g) for g in ray.get_gpu_ids()]


def pick_device(requested: str, cuda_available: bool, assigned_gpus: list[str] | None) -> str:
    """'cuda' or 'cpu' for ``requested`` (auto|cpu|cuda); BackendError when 'cuda' cannot be had.

    ``assigned_gpus``: Ray's GPU ids for this worker (None outside Ray). Under
    ``auto`` a Ray worker without GPUs runs on CPU even where torch sees one.
    """
    if requested not in DEVICES:
        raise BackendError(f"device must be one of {DEVICES}, got {requested!r}")
    if requested == "cpu":
        return "cpu"
    if requested == "cuda":
        if not cuda_available:
            raise BackendError("device 'cuda' asked for, but torch sees no GPU (torch.cuda.is_available() is False)")
        return "cuda"
    if not cuda_available:
        return "cpu"
    return "cuda" if assigned_gpus is None or assigned_gpus else "cpu"


def resolve_device(requested: str = "auto") -> str:
    """``pick_device`` for this process: torch's CUDA state and Ray's assignment."""
    import torch

    return pick_device(requested, torch.cuda.is_available(), ray_gpu_ids())


def max_memory(gpu_bytes: list[int], headroom: float = HEADROOM) -> dict[int, str]:
    """Per visible GPU index, the weights budget ``device_map='auto'`` may fill (MiB, as accelerate reads it)."""
    return {i: f"{int(b * headroom) >> 20}MiB" for i, b in enumerate(gpu_bytes)}


def transformers_load_kwargs(dtype: str, device: str, gpu_bytes: list[int]) -> dict[str, Any]:
    """``from_pretrained`` kwargs: dtype, plus a sharded ``device_map`` when ``device`` is cuda over ≥ 2 GPUs.

    ``device`` is already resolved ('cuda' or 'cpu'); ``gpu_bytes`` is each
    visible GPU's total memory (the actor's GPUs). One GPU or CPU: no
    ``device_map`` (the caller moves the model with ``.to(device)``).
    """
    kwargs: dict[str, Any] = {"dtype": torch_dtype(dtype)}
    if device == "cuda" and len(gpu_bytes) > 1:
        kwargs["device_map"] = "auto"
        kwargs["max_memory"] = max_memory(gpu_bytes)
    return kwargs


def visible_gpu_bytes() -> list[int]:
    """Total memory of each GPU torch sees (the actor's GPUs under Ray); [] without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())]


def from_pretrained(cls: Any, path_or_id: str, dtype: str, device: str, **extra: Any) -> Any:
    """``cls.from_pretrained`` placed by ``device`` (auto|cpu|cuda): one device, or sharded over the actor's GPUs."""
    where = resolve_device(device)
    kwargs = transformers_load_kwargs(dtype, where, visible_gpu_bytes() if where == "cuda" else [])
    model = cls.from_pretrained(path_or_id, **kwargs, **extra)
    return model if "device_map" in kwargs else model.to(where)


def vllm_llm_kwargs(model: str, dtype: str | None, tensor_parallel: int = 1, **extra: Any) -> dict[str, Any]:
    """``vllm.LLM`` kwargs: the model, its dtype ('auto' when None), ``tensor_parallel_size``.

    Over several GPUs vLLM runs its multiprocessing executor on the GPUs Ray
    gave the actor (``num_gpus`` = ``tensor_parallel``), not Ray workers of its own.
    """
    if tensor_parallel < 1:
        raise ValueError(f"tensor_parallel must be ≥ 1, got {tensor_parallel}")
    kwargs: dict[str, Any] = {"model": model, "dtype": dtype or "auto", "tensor_parallel_size": tensor_parallel}
    if tensor_parallel > 1:
        kwargs["distributed_executor_backend"] = "mp"
    return {**kwargs, **extra}
