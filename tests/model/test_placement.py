"""Device choice, multi-GPU sharding kwargs and vLLM engine kwargs (pure: no GPU, no vllm here)."""

from __future__ import annotations

import pytest
import torch

from magicvl.model.backends.base import BackendError
from magicvl.model.backends.causal_lm import TransformersCausalLM
from magicvl.model.backends.placement import (
    max_memory,
    pick_device,
    resolve_device,
    transformers_load_kwargs,
    vllm_llm_kwargs,
)

GiB = 1 << 30


def test_auto_is_the_assigned_gpu_only_when_ray_gave_one_and_cuda_is_there():
    assert pick_device("auto", cuda_available=True, assigned_gpus=["3"]) == "cuda"
    assert pick_device("auto", cuda_available=True, assigned_gpus=[]) == "cpu"  # a num_gpus: 0 actor
    assert pick_device("auto", cuda_available=True, assigned_gpus=None) == "cuda"  # outside Ray
    assert pick_device("auto", cuda_available=False, assigned_gpus=["0"]) == "cpu"  # Ray's logical GPUs here
    assert pick_device("cpu", cuda_available=True, assigned_gpus=["0"]) == "cpu"
    assert pick_device("cuda", cuda_available=True, assigned_gpus=[]) == "cuda"
    with pytest.raises(BackendError, match=r"device 'cuda' asked for, but torch sees no GPU"):
        pick_device("cuda", cuda_available=False, assigned_gpus=None)
    with pytest.raises(BackendError, match="device must be one of"):
        pick_device("gpu", cuda_available=True, assigned_gpus=None)
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_from_pretrained_kwargs_shard_over_several_gpus_only():
    assert transformers_load_kwargs("bfloat16", "cpu", []) == {"dtype": torch.bfloat16}
    assert transformers_load_kwargs("float16", "cuda", [80 * GiB]) == {"dtype": torch.float16}  # one GPU: .to()
    kw = transformers_load_kwargs("bfloat16", "cuda", [80 * GiB] * 4)
    assert kw["device_map"] == "auto" and kw["dtype"] is torch.bfloat16
    assert kw["max_memory"] == {i: f"{int(80 * GiB * 0.9) >> 20}MiB" for i in range(4)}  # 73728 MiB each
    assert max_memory([80 * GiB, 40 * GiB], headroom=0.5) == {0: "40960MiB", 1: "20480MiB"}
    assert transformers_load_kwargs("auto", "cpu", [])["dtype"] == "auto"


def test_vllm_kwargs_carry_tensor_parallel_size():
    assert vllm_llm_kwargs("Qwen/Qwen2.5-1.5B", "bfloat16") == {
        "model": "Qwen/Qwen2.5-1.5B", "dtype": "bfloat16", "tensor_parallel_size": 1}  # fmt: skip
    kw = vllm_llm_kwargs("Qwen/Qwen2-VL-72B-Instruct", None, 4, limit_mm_per_prompt={"image": 1})
    assert kw == {"model": "Qwen/Qwen2-VL-72B-Instruct", "dtype": "auto", "tensor_parallel_size": 4,
                  "distributed_executor_backend": "mp", "limit_mm_per_prompt": {"image": 1}}  # fmt: skip
    with pytest.raises(ValueError, match="tensor_parallel must be"):
        vllm_llm_kwargs("m", "auto", 0)


def test_vlm_loss_and_generator_vllm_args_come_from_the_options():
    from magicvl.model.backends.vlm_options import VlmOptions
    from magicvl.model.backends.vlm_vllm import vllm_args

    opts = VlmOptions(model="Qwen/Qwen2-VL-72B-Instruct", dtype="bfloat16", engine="vllm", tensor_parallel=4)
    assert vllm_args(opts)["tensor_parallel_size"] == 4 and vllm_args(opts)["limit_mm_per_prompt"] == {"image": 1}
    assert "tensor_parallel" not in opts.model_dump() and "device" not in opts.model_dump()  # not keyed
    with pytest.raises(ValueError, match="tensor_parallel applies to engine vllm"):
        VlmOptions(model="m", tensor_parallel=2)
    with pytest.raises(ValueError, match="device"):
        VlmOptions(model="m", device="gpu")


def test_the_causal_lm_loads_on_the_chosen_device_and_dtype(causal_lm_dir):
    lm = TransformersCausalLM.load(str(causal_lm_dir), dtype="bfloat16", device="auto")
    p = next(lm.model.parameters())
    assert p.device.type == ("cuda" if torch.cuda.is_available() else "cpu") and p.dtype is torch.bfloat16
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="device 'cuda' asked for"):
            TransformersCausalLM.load(str(causal_lm_dir), device="cuda")
