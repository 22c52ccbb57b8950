"""Processor: placeholder expansion, labels on assistant turns only, tiles, shared budget, collation."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from magicvl.model.processor import IGNORE_INDEX


def _img(w: int, h: int, color=(255, 255, 255)) -> Image.Image:
    return Image.new("RGB", (w, h), color)


def _runs(ids: list[int], token: int) -> list[int]:
    """Lengths of consecutive runs of ``token``."""
    runs, n = [], 0
    for i in ids + [None]:
        if i == token:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


def test_image_tokens_wrapped_and_counted(processor):
    conv = [
        {"from": "human", "value": "Compare <image> and <image> please."},
        {"from": "gpt", "value": "Same."},
    ]
    out = processor(conv, [_img(640, 480), _img(64, 64)])
    ids = out["input_ids"].tolist()
    tok = processor.tokenizer
    pad, start, end = (tok.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|vision_start|>", "<|vision_end|>"))
    assert _runs(ids, pad) == [15 * 20, 2 * 2]
    assert out["image_grid"].tolist() == [[15, 20], [2, 2]]
    first = ids.index(pad)
    assert ids[first - 1] == start and ids[first + 300] == end
    assert ids.count(start) == ids.count(end) == 2
    assert out["tile_image_index"].tolist() == [0, 0, 0, 0, 1]
    assert out["pixel_values"].shape == (5, 3, 384, 384)
    assert int(out["patch_mask"].sum()) == 4 * (300 + 4)


def test_labels_cover_assistant_content_and_im_end_only(processor):
    conv = [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "<image>\nWhat is on the sign?"},
        {"from": "gpt", "value": "The sign says STOP."},
        {"from": "human", "value": "Which bar is the tallest?"},
        {"from": "gpt", "value": "The tallest bar is B."},
    ]
    out = processor(conv, [_img(100, 100)])
    ids, labels = out["input_ids"], out["labels"]
    keep = labels != IGNORE_INDEX
    assert torch.equal(labels[keep], ids[keep])
    tok = processor.tokenizer
    assert tok.decode(ids[keep]) == "The sign says STOP.<|im_end|>The tallest bar is B.<|im_end|>"
    text = tok.decode(ids)
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<|vision_start|>")
    assert "You are a helpful assistant" not in text  # the given system turn replaces the default one
    assert out["attention_mask"].tolist() == [1] * len(ids)


def test_generation_prompt_has_no_labels(processor):
    out = processor([{"from": "human", "value": "<image> Describe."}], [_img(32, 32)], add_generation_prompt=True)
    assert (out["labels"] == IGNORE_INDEX).all()
    assert processor.tokenizer.decode(out["input_ids"]).endswith("<|im_start|>assistant\n")


def test_placeholder_rules(processor):
    out = processor([{"from": "human", "value": "Describe."}, {"from": "gpt", "value": "A cat."}], [_img(64, 32)])
    text = processor.tokenizer.decode(out["input_ids"])
    assert "<|im_start|>user\n<|vision_start|>" in text and "<|vision_end|>\nDescribe." in text
    with pytest.raises(ValueError, match="2 <image> placeholders"):
        processor([{"from": "human", "value": "<image><image>"}], [_img(32, 32)])
    with pytest.raises(ValueError, match="literal"):
        processor([{"from": "human", "value": "<image> and <|image_pad|>"}], [_img(32, 32)])
    with pytest.raises(ValueError, match="turn 0"):
        processor([{"from": "robot", "value": "hi"}])


def test_pixels_are_normalised_and_padding_is_zero(processor):
    out = processor([{"from": "human", "value": "<image>"}], [_img(500, 200)])  # 6 x 16 tokens: 192 x 512 px
    assert out["image_grid"].tolist() == [[6, 16]]
    px, mask = out["pixel_values"], out["patch_mask"]
    assert px.shape == (2, 3, 384, 384)
    torch.testing.assert_close(px[0, :, :192, :], torch.ones(3, 192, 384))  # white -> +1 after (x - .5) / .5
    torch.testing.assert_close(px[1, :, :192, :128], torch.ones(3, 192, 128))
    assert (px[0, :, 192:] == 0).all() and (px[1, :, :, 128:] == 0).all()
    assert mask[1, :12, :8].all() and int(mask[1].sum()) == 12 * 8


def test_extreme_images(processor):
    one = processor([{"from": "human", "value": "<image>"}], [_img(1, 1)])
    assert one["image_grid"].tolist() == [[1, 1]] and one["pixel_values"].shape[0] == 1
    shot = processor([{"from": "human", "value": "<image>"}], [_img(1080, 10000)])
    assert shot["image_grid"].tolist() == [[144, 16]]
    assert shot["pixel_values"].shape == (24, 3, 384, 384)
    assert (shot["input_ids"] == processor.image_token_id).sum() == 144 * 16


def test_images_of_one_sample_share_the_budget(processor):
    out = processor([{"from": "human", "value": "<image><image>"}], [_img(4032, 3024), _img(4032, 3024)])
    assert out["pixel_values"].shape[0] == 24
    assert out["tile_image_index"].bincount().tolist() == [12, 12]


def test_collate_pads_and_offsets_images(processor):
    a = processor([{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "Yes."}], [_img(64, 64)])
    b = processor(
        [{"from": "human", "value": "<image><image> long question here"}, {"from": "gpt", "value": "No."}],
        [_img(400, 400), _img(32, 32)],
    )
    batch = processor.collate([a, b])
    n_a = len(a["input_ids"])
    assert batch["input_ids"].shape == (2, len(b["input_ids"]))
    assert batch["attention_mask"][0, n_a:].sum() == 0 and (batch["labels"][0, n_a:] == IGNORE_INDEX).all()
    assert batch["image_grid"].tolist() == [[2, 2], [13, 13], [1, 1]]
    assert batch["tile_image_index"].tolist() == [0, 1, 1, 1, 1, 2]  # 1 + 4 + 1 tiles, images in order
    assert batch["pixel_values"].shape[0] == batch["patch_mask"].shape[0] == 6
    left = processor.collate([a, b], padding_side="left")
    assert left["attention_mask"][0, : len(b["input_ids"]) - n_a].sum() == 0
    assert torch.equal(left["input_ids"][0, -n_a:], a["input_ids"])
