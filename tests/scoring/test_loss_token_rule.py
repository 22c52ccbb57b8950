"""perplexity and vlm_loss score the same response tokens of a record (issue 20, defect 5)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from magicvl.flows.recipe import RecipeError, parse_recipe
from magicvl.model.backends.vlm_inputs import encode
from magicvl.scoring.signals import get_signal
from magicvl.scoring.signals.perplexity import requests_for

TWO_TURNS = [
    {"from": "human", "value": "What is written on the sign?"},
    {"from": "gpt", "value": "The sign says STOP."},
    {"from": "human", "value": "How many people are in the picture?"},
    {"from": "gpt", "value": "Two people are walking."},
]


@pytest.fixture(scope="module")
def vl_processor(tmp_path_factory):
    from magicvl.model.tiny_vl import build_tiny_vlm, image_only_processor

    return image_only_processor(build_tiny_vlm(tmp_path_factory.mktemp("vl") / "qwen2_vl", "qwen2_vl", hidden=32))


@pytest.mark.parametrize("count_end_of_turn", [False, True])
def test_both_signals_mask_the_same_tokens(tokenizer_dir, vl_processor, count_end_of_turn):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    (req,) = requests_for(tok, TWO_TURNS, count_end_of_turn)
    ppl = [t for t, scored in zip(req.input_ids, req.target) if scored]
    enc = encode(vl_processor, TWO_TURNS, None, count_end_of_turn)
    vlm = enc.tensors["input_ids"][0][enc.response].tolist()
    assert ppl == vlm
    end = "<|im_end|>" if count_end_of_turn else ""
    assert tok.decode(ppl) == f"The sign says STOP.{end}Two people are walking.{end}"


def test_defaults_agree_and_a_recipe_cannot_mix_the_rules(tmp_path):
    ppl = get_signal("perplexity").params(model="m")
    assert ppl.count_end_of_turn is False and get_signal("vlm_loss").params(model="m").count_end_of_turn is False
    assert get_signal("vlm_loss").version == "2"  # its default changed: cached losses recompute
    data = {
        "output": "o",
        "datasets": [{"name": "a", "format": "jsonl", "path": "x.jsonl"}],
        "signals": {"perplexity": {"model": "org/lm", "count_end_of_turn": True}},
        "cross_modal": {"models": {"s": {"model": "org/s"}, "l": {"model": "org/l", "count_end_of_turn": True}}},
    }
    with pytest.raises(RecipeError, match=r"count_end_of_turn must be the same .*cross_modal.models.s.count_end_of_t"):
        parse_recipe(data, tmp_path)
    data["cross_modal"]["models"]["s"]["count_end_of_turn"] = True
    assert parse_recipe(data, tmp_path).signal_params("perplexity").count_end_of_turn is True
