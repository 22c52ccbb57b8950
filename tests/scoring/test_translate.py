"""Translation: protected spans survive, bad translations are refused, records point back."""

from __future__ import annotations

import re

import pytest

from magicvl.model.backends.generate import load_generator
from magicvl.scoring.translate import TranslateConfig, mask, translate_conversations, translated_row, unmask


def test_mask_protects_image_boxes_numbers_code_urls():
    text = (
        "<image>\nThe box is [0.53, 0.52, 0.66, 0.65] and <|box_start|>(611,218),(944,269)<|box_end|>; "
        "it costs $3,719.28 (8%). Run `ls -la` or see https://example.com/x?a=1.\n```py\nprint(2)\n```"
    )
    masked, spans = mask(text)
    assert spans == [
        "<image>",
        "[0.53, 0.52, 0.66, 0.65]",
        "<|box_start|>",
        "(611,218)",
        "(944,269)",
        "<|box_end|>",
        "3,719.28",
        "8%",
        "`ls -la`",
        "https://example.com/x?a=1.",
        "```py\nprint(2)\n```",
    ]
    assert not any(ch.isdigit() for ch in re.sub(r"⟦\d+⟧", "", masked))  # every number is protected
    assert unmask(masked, spans) == text


@pytest.mark.parametrize(
    ("answer", "error"),
    [("⟦0⟧ 文本", "expected 0..1"), ("⟦0⟧⟦1⟧⟦1⟧", "expected 0..1"), ("⟦0⟧⟦1⟧⟦2⟧", "expected 0..1")],
)
def test_unmask_refuses_lost_repeated_or_invented_placeholders(answer, error):
    with pytest.raises(ValueError, match=error):
        unmask(answer, ["<image>", "42"])


class _Echo:
    """Returns the masked text with a Chinese prefix: a translator that keeps every marker."""

    identity = "echo"

    def generate(self, requests, max_new_tokens):
        return ["译文：" + r.prompt.split("\n\n", 1)[1] for r in requests]


def test_translate_and_point_back():
    conv = [{"from": "human", "value": "<image>\nHow many cats? Box [1, 2, 3, 4]."}, {"from": "gpt", "value": "2"}]
    [t] = translate_conversations(_Echo(), TranslateConfig(model="unused", datasets=["vqa"]), [conv])
    assert t.error is None
    assert t.conversation == [
        {"from": "human", "value": "译文：<image>\nHow many cats? Box [1, 2, 3, 4]."},
        {"from": "gpt", "value": "译文：2"},
    ]
    row = {
        "sample_id": "abc",
        "dataset": "vqa",
        "source_key": "k",
        "source": "f.json:1",
        "category": "vqa",
        "conversations": conv,
        "image": None,
    }
    new = translated_row(row, t.conversation, "vqa_zh")
    assert new["dataset"] == "vqa_zh" and new["source_key"] == "abc" and new["source"] == "translate:vqa/abc"
    assert new["sample_id"] != "abc" and new["category"] == "vqa"


def test_translate_end_to_end_with_tiny_model(tiny_lm_dir):
    import torch

    torch.set_num_threads(1)
    cfg = TranslateConfig(model=str(tiny_lm_dir), datasets=["vqa"], max_new_tokens=8)
    conv = [{"from": "human", "value": "<image>\nWhat is 2 + 2?"}, {"from": "gpt", "value": "4"}]
    [t] = translate_conversations(load_generator(cfg.backend, cfg.model), cfg, [conv])
    assert t.conversation is None and "placeholders" in t.error  # a random model loses the markers: refused
