"""MagicVLConfig: round trips, validation naming the field, and the paper preset's sizes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from magicvl.model.config import MagicVLConfig
from magicvl.model.magicvl import MagicVL
from magicvl.model.tiny import tiny_magicvl_config


def _cfg(**changes) -> MagicVLConfig:
    return dataclasses.replace(tiny_magicvl_config(vocab_size=700, image_token_id=12), **changes)


def test_round_trip(tmp_path):
    cfg = _cfg(max_tiles=12)
    assert MagicVLConfig.from_dict(cfg.to_dict()) == cfg
    cfg.save_pretrained(tmp_path)
    assert MagicVLConfig.from_pretrained(tmp_path) == cfg
    assert MagicVLConfig.from_pretrained(tmp_path / "config.json") == cfg


def test_derived_geometry():
    cfg = MagicVLConfig.paper()
    assert (cfg.token_px, cfg.patches_per_side, cfg.tokens_per_side) == (32, 24, 12)
    assert cfg.mp_input_size == 4 * 768 and cfg.lm_hidden_size == 1536
    assert cfg.vit_path == "google/siglip2-base-patch16-384"
    assert MagicVLConfig.paper("qwen3").lm_path == "Qwen/Qwen3-1.7B"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_tiles": 0}, "max_tiles"),
        ({"unshuffle_ratio": 0}, "unshuffle_ratio"),
        ({"tile_size": 400}, "tile_size"),
        ({"patch_size": 14}, "patch_size"),
        ({"mp_hidden_act": "relu"}, "mp_hidden_act"),
        ({"image_token_id": 5000}, "image_token_id"),
        ({"lm_config": {"hidden_size": 64}}, "lm_config"),
    ],
)
def test_validation_names_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        _cfg(**changes)


def test_vit_resolution_must_match_tiles():
    vit = {**tiny_magicvl_config(700, 12).vit_config, "image_size": 224}
    with pytest.raises(ValueError, match=r"vit_config\['image_size'\]"):
        _cfg(vit_config=vit)


def test_unknown_key_is_rejected():
    with pytest.raises(ValueError, match="unknown field.*vit_layers"):
        MagicVLConfig.from_dict({**_cfg().to_dict(), "vit_layers": 3})
    with pytest.raises(ValueError, match="lm must be one of"):
        MagicVLConfig.paper("llama")


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _siglip_params(d: int, layers: int, mlp: int, patch: int, image: int) -> int:
    """Analytic SigLIP vision tower size without the pooling head."""
    embed = 3 * patch * patch * d + d + (image // patch) ** 2 * d
    layer = 4 * (d * d + d) + 2 * (d * mlp) + mlp + d + 2 * 2 * d
    return embed + layers * layer + 2 * d


def _qwen_params(v: int, d: int, layers: int, heads: int, kv: int, hd: int, mlp: int, qwen3: bool) -> int:
    """Analytic Qwen2 (qkv bias) / Qwen3 (q/k norm) size with tied embeddings."""
    attn = d * heads * hd + 2 * d * kv * hd + heads * hd * d
    attn += hd * 2 if qwen3 else heads * hd + 2 * kv * hd
    layer = attn + 3 * d * mlp + 2 * d
    return v * d + layers * layer + d


@pytest.mark.parametrize(
    ("lm", "lm_params"),
    [
        ("qwen2.5", _qwen_params(151936, 1536, 28, 12, 2, 128, 8960, qwen3=False)),  # 1.54 B
        ("qwen3", _qwen_params(151936, 2048, 28, 16, 8, 128, 6144, qwen3=True)),  # 1.72 B
    ],
)
def test_paper_preset_sizes_on_meta_device(lm, lm_params):
    cfg = MagicVLConfig.paper(lm)
    with torch.device("meta"):  # shapes only: nothing allocated, nothing downloaded
        model = MagicVL(cfg)
    vit = _siglip_params(768, 12, 3072, 16, 384)
    assert _count(model.vision) == vit == 86_088_960
    assert _count(model.language) == lm_params
    d_lm = cfg.lm_hidden_size
    assert _count(model.projector) == 2 * 3072 + 3072 * d_lm + d_lm + d_lm * d_lm + d_lm
    # the paper's "93M" counts SigLIP's attention-pooling head, which the VLM does not use
    from transformers import SiglipVisionConfig, SiglipVisionModel

    vit_cfg = {k: v for k, v in cfg.vit_config.items() if k not in ("model_type", "vision_use_head")}
    with torch.device("meta"):
        with_head = SiglipVisionModel(SiglipVisionConfig(**vit_cfg, vision_use_head=True))
    assert round(_count(with_head) / 1e6) == 93
