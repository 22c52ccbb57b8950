"""Options of one VLM loss backend (no torch import: signals and recipes validate these cheaply)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

VlmDType = Literal["float32", "bfloat16", "float16", "auto"]


class VlmOptions(BaseModel):
    """How one VLM is loaded and batched. Only ``model``, ``dtype``, ``engine`` and ``count_end_of_turn``
    change the values: the runtime options are left out of ``model_dump`` (so out of cache keys) but kept
    on the object."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Model path or hub id (from_pretrained), e.g. Qwen/Qwen2-VL-2B-Instruct.")
    dtype: VlmDType = Field(default="auto", description="Weights/activations dtype ('auto': the checkpoint's).")
    engine: Literal["transformers", "vllm"] = Field(
        default="transformers", description="vllm: optional extra, GPU only (prompt log-probabilities)."
    )
    count_end_of_turn: bool = Field(
        default=False, description="Also count the end-of-turn token(s) in the loss (same rule as perplexity)."
    )
    batch_size: int = Field(default=8, ge=1, exclude=True, description="Samples per forward pass.")
    max_batch_tokens: int = Field(default=16384, ge=1, exclude=True, description="Padded tokens per pass (B × T).")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", exclude=True,
        description="auto: the GPU(s) Ray gave the actor when num_gpus > 0 and torch sees CUDA, else cpu.",
    )  # fmt: skip
    tensor_parallel: int = Field(
        default=1, ge=1, exclude=True,
        description="engine vllm: GPUs one model spans (tensor_parallel_size); equals the pool's num_gpus.",
    )  # fmt: skip
    sort_window: int = Field(
        default=256, ge=1, exclude=True,
        description="Samples length-sorted together; the next window is encoded in a background thread while "
        "this one runs through the model (values do not depend on it).",
    )  # fmt: skip

    @model_validator(mode="after")
    def _tensor_parallel(self) -> VlmOptions:
        if self.tensor_parallel > 1 and self.engine != "vllm":
            raise ValueError(
                "tensor_parallel applies to engine vllm; "
                "the transformers engine shards over the actor's num_gpus itself"
            )
        return self

    def options(self) -> VlmOptions:
        """The plain options (a subclass such as a signal's params → this class, runtime fields kept)."""
        return VlmOptions(**{k: getattr(self, k) for k in VlmOptions.model_fields})
