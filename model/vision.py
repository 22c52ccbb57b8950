"""Vision encoder: a fixed-resolution SigLIP(2) ViT run on 384x384 tiles with padded patches masked.

``transformers.SiglipVisionModel.forward`` takes no attention mask, so this
wrapper runs its pieces itself: patch + position embeddings (the fixed 24x24
grid of the 384 model, no interpolation), every encoder layer with a 4-D
additive *key* mask (padded patches get ``finfo.min``, so after the softmax
their weight is exactly 0 for every query), then the post layer norm. Real
patches therefore never read padded ones, in any layer; outputs at padded
positions are garbage and are dropped later (``model.unshuffle.merge_tiles``).
Patch embedding, layer norms and MLPs are per-patch, so they cannot leak.

Weights use the Hugging Face names under ``vision.vit.*`` (``embeddings``,
``encoder.layers.N``, ``post_layernorm``), so SigLIP / SigLIP2 fixed-resolution
checkpoints load with ``SiglipVisionModel.from_pretrained``. The pooling head
is not used and is dropped (``vision_use_head=False``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import SiglipVisionConfig, SiglipVisionModel


def build_vision_model(vit_config: dict[str, Any]) -> SiglipVisionModel:
    """A randomly initialised SigLIP vision tower from an HF config dict (no head)."""
    cfg = SiglipVisionConfig.from_dict({**vit_config, "vision_use_head": False})
    return SiglipVisionModel(cfg)


def load_vision_model(path: str) -> SiglipVisionModel:
    """Pretrained SigLIP / SigLIP2 (fixed resolution) vision tower from a path or hub id, no head."""
    return SiglipVisionModel.from_pretrained(path, vision_use_head=False)


def additive_key_mask(patch_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``[N, P]`` bool (True = real) -> ``[N, 1, 1, P]`` additive mask (0 or finfo.min)."""
    mask = torch.zeros(patch_mask.shape, dtype=dtype, device=patch_mask.device)  # [N, P]
    mask = mask.masked_fill(~patch_mask, torch.finfo(dtype).min)
    return mask[:, None, None, :]  # [N, 1, 1, P]: same for every head and every query


class VisionEncoder(nn.Module):
    """SigLIP tower over tiles: pixels ``[N, 3, S, S]`` + patch mask ``[N, g, g]`` -> ``[N, g, g, D]``."""

    def __init__(self, vit: SiglipVisionModel):
        super().__init__()
        impl = getattr(vit.config, "_attn_implementation", None) or "sdpa"
        if impl not in ("eager", "sdpa"):
            raise ValueError(f"the padded-patch mask needs eager or sdpa attention, got {impl!r}")
        self.vit = vit
        self.patch_size = int(vit.config.patch_size)
        self.image_size = int(vit.config.image_size)
        self.hidden_size = int(vit.config.hidden_size)

    def forward(self, pixel_values: torch.Tensor, patch_mask: torch.Tensor | None = None) -> torch.Tensor:
        n, _, h, w = pixel_values.shape  # [N, 3, S, S]
        if (h, w) != (self.image_size, self.image_size):
            raise ValueError(f"tiles must be {self.image_size}x{self.image_size}, got {h}x{w}")
        g = self.image_size // self.patch_size
        x = self.vit.embeddings(pixel_values)  # [N, g*g, D], fixed position grid
        mask = None
        if patch_mask is not None:
            if tuple(patch_mask.shape) != (n, g, g):
                raise ValueError(f"patch_mask must be [{n}, {g}, {g}], got {list(patch_mask.shape)}")
            mask = additive_key_mask(patch_mask.reshape(n, g * g).bool(), x.dtype)  # [N, 1, 1, g*g]
        for layer in self.vit.encoder.layers:
            x = layer(x, mask)  # [N, g*g, D]
        x = self.vit.post_layernorm(x)  # [N, g*g, D]
        return x.reshape(n, g, g, -1)  # [N, g, g, D]
