"""Language model glue: any ``AutoModelForCausalLM`` (Qwen2.5 / Qwen3 in the paper) + image splicing.

Image features replace the embeddings of the ``<|image_pad|>`` placeholder
tokens, in order: the k-th run of placeholders in the flattened ``[B, T]``
batch (row-major) receives the k-th image's tokens. The processor writes
exactly ``rows * cols`` placeholders per image, so counts must match.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

_VOLATILE_KEYS = ("transformers_version", "architectures", "_name_or_path", "dtype", "torch_dtype")


def hf_config_dict(config: PretrainedConfig) -> dict[str, Any]:
    """An HF config as a plain dict for ``MagicVLConfig`` (non-default fields + ``model_type``)."""
    data = config.to_diff_dict()
    data["model_type"] = config.model_type
    for key in _VOLATILE_KEYS:
        data.pop(key, None)
    return data


def build_language_model(lm_config: dict[str, Any]) -> PreTrainedModel:
    """A randomly initialised causal LM from an HF config dict with a ``model_type``."""
    data = dict(lm_config)
    config = AutoConfig.for_model(data.pop("model_type"), **data)
    return AutoModelForCausalLM.from_config(config)


def load_language_model(path: str, dtype: torch.dtype | None = None) -> PreTrainedModel:
    """Pretrained causal LM from a path or hub id."""
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)


def splice_image_embeddings(
    text_embeds: torch.Tensor, input_ids: torch.Tensor, image_embeds: torch.Tensor, image_token_id: int
) -> torch.Tensor:
    """Put ``image_embeds [M, D]`` at the ``image_token_id`` positions of ``text_embeds [B, T, D]``."""
    slots = input_ids == image_token_id  # [B, T]
    n_slots = int(slots.sum())
    if n_slots != image_embeds.shape[0]:
        raise ValueError(
            f"{n_slots} image placeholder tokens in input_ids but {image_embeds.shape[0]} image tokens "
            "from the encoder: the processor and the image grids disagree"
        )
    if n_slots == 0:
        return text_embeds
    mask = slots.unsqueeze(-1).expand_as(text_embeds)  # [B, T, D]
    return text_embeds.masked_scatter(mask, image_embeds.to(text_embeds.dtype))  # [B, T, D]


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding: ``cumsum(mask) - 1``, clamped at 0. ``[B, T]``."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # [B, T]
