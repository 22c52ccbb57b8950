"""MagicVL: SigLIP2 tiles -> pixel unshuffle -> MLP projector -> tokens spliced into a Qwen LLM.

The composite only wires the parts, exposed as ``vision``, ``projector`` and
``language`` so a freeze schedule is one ``requires_grad_`` per part.

Batch layout (packing-ready). Images of all samples are concatenated along the
tile axis: ``pixel_values [N, 3, 384, 384]``; ``image_grid [I, 2]`` gives each
image's token grid (rows, cols) in the order its placeholders appear in the
flattened ``input_ids``; ``tile_image_index [N]`` says which image a tile
belongs to (tiles consecutive per image, raster order) and is checked against
``image_grid``; ``patch_mask [N, 24, 24]`` is derived from ``image_grid`` when
not given (and checked when given).

Checkpoint: ``config.json`` (``MagicVLConfig``) + ``model.safetensors``
(``vision.vit.*`` / ``projector.*`` / ``language.*``; tied LM embeddings are
stored once).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn
from transformers import AutoTokenizer
from transformers.modeling_outputs import CausalLMOutputWithPast

from magicvl.model import resolution
from magicvl.model.config import MagicVLConfig
from magicvl.model.language import (
    build_language_model,
    hf_config_dict,
    load_language_model,
    positions_from_mask,
    splice_image_embeddings,
)
from magicvl.model.projector import Projector
from magicvl.model.unshuffle import check_tile_index, merge_tiles, pixel_unshuffle, tiles_per_image
from magicvl.model.vision import VisionEncoder, build_vision_model, load_vision_model

WEIGHTS_NAME = "model.safetensors"


class MagicVL(nn.Module):
    """The vision-language model; build from a config (random) or load with ``from_pretrained``."""

    def __init__(self, config: MagicVLConfig, vision: nn.Module | None = None, language: nn.Module | None = None):
        super().__init__()
        self.config = config
        self.vision = VisionEncoder(vision if vision is not None else build_vision_model(config.vit_config))
        self.projector = Projector(config)
        self.language = language if language is not None else build_language_model(config.lm_config)

    # ---- images ---------------------------------------------------------------------
    def patch_mask_for(self, image_grid: torch.Tensor) -> torch.Tensor:
        """Bool ``[N, g, g]`` real-patch mask of all tiles of the images in ``image_grid [I, 2]``."""
        c = self.config
        masks = [
            resolution.patch_mask(
                resolution.ImagePlan(r * c.token_px, k * c.token_px, r, k, c.token_px, c.tile_size),
                c.patch_size,
            )
            for r, k in image_grid.tolist()
        ]
        g = c.patches_per_side
        if not masks:
            return torch.zeros(0, g, g, dtype=torch.bool)
        return torch.cat([torch.from_numpy(m) for m in masks])  # [N, g, g]

    def encode_images(
        self,
        pixel_values: torch.Tensor,
        image_grid: torch.Tensor,
        patch_mask: torch.Tensor | None = None,
        tile_image_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Tiles ``[N, 3, S, S]`` -> real image tokens in the LLM space ``[sum(rows*cols), D_lm]``."""
        needed = int(tiles_per_image(image_grid, self.config.tokens_per_side).sum())
        if pixel_values.shape[0] != needed:
            raise ValueError(f"image_grid needs {needed} tiles but pixel_values has {pixel_values.shape[0]}")
        if tile_image_index is not None:
            check_tile_index(tile_image_index, image_grid, self.config.tokens_per_side)
        expected = self.patch_mask_for(image_grid).to(pixel_values.device)
        if patch_mask is not None and not torch.equal(patch_mask.bool(), expected):
            raise ValueError("patch_mask does not match image_grid (content must sit top-left in each tile)")
        vit_dtype = self.vision.vit.embeddings.patch_embedding.weight.dtype
        feats = self.vision(pixel_values.to(vit_dtype), expected)  # [N, g, g, D_vit]
        feats = pixel_unshuffle(feats, self.config.unshuffle_ratio)  # [N, t, t, 4*D_vit]
        tokens = merge_tiles(feats, image_grid)  # [M, 4*D_vit], padding dropped
        return self.projector(tokens)  # [M, D_lm]

    def embed_inputs(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        image_grid: torch.Tensor | None = None,
        patch_mask: torch.Tensor | None = None,
        tile_image_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings ``[B, T, D_lm]`` with image tokens spliced in at the placeholders."""
        embeds = self.language.get_input_embeddings()(input_ids)  # [B, T, D_lm]
        if pixel_values is None or pixel_values.shape[0] == 0:
            image_embeds = embeds.new_zeros(0, embeds.shape[-1])  # [0, D_lm]
        else:
            if image_grid is None:
                raise ValueError("image_grid is required with pixel_values")
            image_embeds = self.encode_images(pixel_values, image_grid, patch_mask, tile_image_index)
        return splice_image_embeddings(embeds, input_ids, image_embeds, self.config.image_token_id)

    # ---- training / scoring forward -------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grid: torch.Tensor | None = None,
        patch_mask: torch.Tensor | None = None,
        tile_image_index: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> CausalLMOutputWithPast:
        """Logits ``[B, T, V]`` and, with ``labels`` (-100 = ignored), the shifted LM loss."""
        embeds = self.embed_inputs(input_ids, pixel_values, image_grid, patch_mask, tile_image_index)
        if position_ids is None and attention_mask is not None:
            position_ids = positions_from_mask(attention_mask)  # [B, T]
        return self.language(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            labels=labels,
            use_cache=False,
        )

    # ---- greedy generation ----------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grid: torch.Tensor | None = None,
        patch_mask: torch.Tensor | None = None,
        tile_image_index: torch.Tensor | None = None,
        max_new_tokens: int = 32,
        use_cache: bool = True,
        eos_token_id: int | None = None,
        pad_token_id: int = 0,
    ) -> torch.Tensor:
        """Greedy decoding; returns only the new tokens ``[B, <= max_new_tokens]``.

        Prompts in a batch must be *left*-padded (``attention_mask`` 0 on the left);
        positions skip the padding. Finished rows emit ``pad_token_id``.
        """
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        embeds = self.embed_inputs(input_ids, pixel_values, image_grid, patch_mask, tile_image_index)
        embed_tokens = self.language.get_input_embeddings()
        finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        past, new_tokens = None, []
        for _ in range(max_new_tokens):
            positions = positions_from_mask(mask)  # [B, T]
            step_embeds, step_pos = (embeds[:, -1:], positions[:, -1:]) if past is not None else (embeds, positions)
            out = self.language(
                inputs_embeds=step_embeds,
                attention_mask=mask,
                position_ids=step_pos,
                past_key_values=past,
                use_cache=use_cache,
            )
            past = out.past_key_values if use_cache else None
            nxt = out.logits[:, -1].argmax(-1)  # [B]
            if eos_token_id is not None:
                nxt = torch.where(finished, torch.full_like(nxt, pad_token_id), nxt)
                finished |= nxt == eos_token_id
            new_tokens.append(nxt)
            embeds = torch.cat([embeds, embed_tokens(nxt)[:, None]], dim=1)  # [B, T+1, D_lm]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)  # [B, T+1]
            if bool(finished.all()):
                break
        if not new_tokens:
            return input_ids.new_zeros(input_ids.shape[0], 0)
        return torch.stack(new_tokens, dim=1)  # [B, n]

    # ---- checkpoints ----------------------------------------------------------------
    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(out)
        save_model(self, str(out / WEIGHTS_NAME), metadata={"format": "pt"})
        return out

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype | None = None) -> MagicVL:
        """Load a checkpoint written by ``save_pretrained`` (strict: every weight must be present)."""
        config = MagicVLConfig.from_pretrained(path)
        model = cls(config)
        load_model(model, str(Path(path) / WEIGHTS_NAME), strict=True)
        if dtype is not None:
            model = model.to(dtype)
        return model.eval()

    @classmethod
    def from_parts(cls, config: MagicVLConfig, dtype: torch.dtype | None = None) -> MagicVL:
        """Start training: pretrained encoder (``vit_path``) + LLM (``lm_path``), random projector.

        The architecture dicts and the image token id are taken from the loaded
        checkpoints and tokenizer, so ``save_pretrained`` records what was loaded.
        """
        if not config.vit_path or not config.lm_path:
            raise ValueError("MagicVLConfig.vit_path and MagicVLConfig.lm_path are required by from_parts")
        vit = load_vision_model(config.vit_path)
        lm = load_language_model(config.lm_path, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(config.lm_path)
        image_token_id = tokenizer.convert_tokens_to_ids(config.image_token)
        if image_token_id is None or image_token_id == tokenizer.unk_token_id:
            raise ValueError(f"tokenizer at {config.lm_path} has no {config.image_token!r} token")
        config = dataclasses.replace(
            config,
            vit_config={**hf_config_dict(vit.config), "vision_use_head": False},
            lm_config=hf_config_dict(lm.config),
            image_token_id=int(image_token_id),
        )
        model = cls(config, vision=vit, language=lm)
        return model.to(dtype) if dtype is not None else model
