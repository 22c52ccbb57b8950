"""Tiny local generation models for the judge and classifier tests (built offline, random weights)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """A 2-layer Qwen2 causal LM with the project's tiny tokenizer, saved with save_pretrained."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from magicvl.model.tiny import build_tokenizer

    out = build_tokenizer(tmp_path_factory.mktemp("judge") / "tiny-lm")
    tok = AutoTokenizer.from_pretrained(out)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        Qwen2ForCausalLM(config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory) -> Path:
    from magicvl.model.tiny import build_tiny_magicvl

    return build_tiny_magicvl(tmp_path_factory.mktemp("judge") / "tiny-magicvl")
