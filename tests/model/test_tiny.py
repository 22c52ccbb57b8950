"""The tiny MagicVL builder: a marked, deterministic, loadable checkpoint directory."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from magicvl.model.magicvl import MagicVL
from magicvl.model.processor import MagicVLProcessor
from magicvl.model.tiny import build_tiny_magicvl, is_tiny


def test_tiny_checkpoint_layout(tiny_dir):
    names = {p.name for p in tiny_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "TINY_RANDOM_CHECKPOINT.json"} <= names
    assert is_tiny(tiny_dir)
    model = MagicVL.from_pretrained(tiny_dir)
    assert model.config.lm_config["model_type"] == "qwen2"
    assert model.config.image_token_id == MagicVLProcessor.from_pretrained(tiny_dir).image_token_id


def test_tiny_build_is_deterministic_and_leaves_global_rng_alone(tiny_dir, tmp_path):
    state = torch.random.get_rng_state()
    again = build_tiny_magicvl(tmp_path / "again", lm="qwen2", seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    a, b = load_file(tiny_dir / "model.safetensors"), load_file(again / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="lm must be one of"):
        build_tiny_magicvl(tmp_path / "bad", lm="llama")


def test_processor_rejects_a_tokenizer_that_disagrees_with_the_config(tiny_dir):
    proc = MagicVLProcessor.from_pretrained(tiny_dir)
    with pytest.raises(ValueError, match="image_token_id"):
        MagicVLProcessor(proc.tokenizer, dataclasses.replace(proc.config, image_token_id=3))
