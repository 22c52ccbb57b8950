"""The tiny causal LM and Grounding DINO: marked random, deterministic, loadable through from_pretrained."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from magicvl.model.tiny import TINY_BUILDERS, build_tiny_causal_lm, is_tiny


def test_builders_cover_every_tiny_checkpoint():
    assert set(TINY_BUILDERS) == {"tokenizer", "causal_lm", "grounding_dino"}


def test_tiny_causal_lm_is_marked_loadable_and_deterministic(causal_lm_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert is_tiny(causal_lm_dir)
    tok = AutoTokenizer.from_pretrained(causal_lm_dir)
    assert "<|im_start|>assistant" in tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    model = AutoModelForCausalLM.from_pretrained(causal_lm_dir)
    assert model.config.model_type == "qwen2" and model.config.vocab_size == len(tok)
    state = torch.random.get_rng_state()
    again = build_tiny_causal_lm(tmp_path / "again")
    assert torch.equal(torch.random.get_rng_state(), state)
    a, b = load_file(causal_lm_dir / "model.safetensors"), load_file(again / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_tiny_grounding_dino_is_marked_and_its_tokenizer_knows_the_query_words(grounding_dino_dir):
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    assert is_tiny(grounding_dino_dir)
    proc = AutoProcessor.from_pretrained(grounding_dino_dir)
    ids = proc.tokenizer("a cat. text.")["input_ids"]
    assert proc.tokenizer.unk_token_id not in ids  # BertTokenizer(vocab={...}): real ids, not [UNK]
    model = AutoModelForZeroShotObjectDetection.from_pretrained(grounding_dino_dir)
    assert model.config.model_type == "grounding-dino"
