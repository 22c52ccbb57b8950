"""The composite: splicing, loss, padding invariance, batching, save/load, generation, from_parts."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image

from magicvl.model.magicvl import MagicVL
from magicvl.model.processor import IGNORE_INDEX

QUESTION = [{"from": "human", "value": "<image>\nWhat is written on the sign?"}]
ANSWERED = QUESTION + [{"from": "gpt", "value": "The sign says STOP."}]


def _img(w: int, h: int, seed: int = 0) -> Image.Image:
    gen = torch.Generator().manual_seed(seed)
    return Image.fromarray(torch.randint(0, 256, (h, w, 3), generator=gen, dtype=torch.uint8).numpy())


def _batch(processor, items, padding_side="right", generation=False):
    samples = [processor(conv, imgs, add_generation_prompt=generation) for conv, imgs in items]
    batch = processor.collate(samples, padding_side=padding_side)
    if generation:
        batch.pop("labels")
    return batch


@torch.no_grad()
def test_loss_is_shifted_cross_entropy_on_assistant_tokens(tiny_model, processor):
    batch = _batch(processor, [(ANSWERED, [_img(200, 120)])])
    out = tiny_model(**batch)
    assert out.logits.shape == (1, batch["input_ids"].shape[1], len(processor.tokenizer))
    logits, labels = out.logits[0, :-1], batch["labels"][0, 1:]
    expected = torch.nn.functional.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(out.loss, expected)
    assert (labels != IGNORE_INDEX).sum() == len(processor.tokenizer("The sign says STOP.<|im_end|>")["input_ids"])


@torch.no_grad()
def test_image_tokens_are_spliced_at_the_placeholders(tiny_model, processor):
    batch = _batch(processor, [(ANSWERED, [_img(300, 100)])])  # 3 x 9 tokens
    image_args = {k: batch[k] for k in ("pixel_values", "image_grid", "patch_mask", "tile_image_index")}
    embeds = tiny_model.embed_inputs(batch["input_ids"], **image_args)[0]
    image_tokens = tiny_model.encode_images(**image_args)
    slots = batch["input_ids"][0] == tiny_model.config.image_token_id
    assert image_tokens.shape == (27, 64) and int(slots.sum()) == 27
    assert torch.equal(embeds[slots], image_tokens)
    table = tiny_model.language.get_input_embeddings()
    assert torch.equal(embeds[~slots], table(batch["input_ids"][0][~slots]))


@torch.no_grad()
def test_padding_pixels_do_not_change_logits(tiny_model, processor):
    batch = _batch(processor, [(ANSWERED, [_img(500, 230)])])  # 7 x 16 tokens: 2 tiles, both padded
    pad = ~batch["patch_mask"].repeat_interleave(16, 1).repeat_interleave(16, 2)[:, None]  # [N, 1, 384, 384]
    assert pad.any()
    noisy = dict(
        batch,
        pixel_values=torch.where(pad, 30 * torch.randn_like(batch["pixel_values"]), batch["pixel_values"]),
    )
    torch.testing.assert_close(tiny_model(**noisy).logits, tiny_model(**batch).logits, rtol=0, atol=1e-5)


@torch.no_grad()
def test_sample_is_independent_of_its_batch_mates(tiny_model, processor):
    a = (ANSWERED, [_img(200, 120)])
    b = (
        [{"from": "human", "value": "<image> and <image>: what differs between these two pictures?"}]
        + [{"from": "gpt", "value": "The colour."}],
        [_img(900, 500, seed=1), _img(40, 700, seed=2)],
    )
    alone = tiny_model(**_batch(processor, [a])).logits[0]
    together = tiny_model(**_batch(processor, [b, a])).logits[1, : alone.shape[0]]
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("which", ["tiny_dir", "tiny_qwen3_dir"])
@torch.no_grad()
def test_save_load_gives_identical_logits(which, request, processor, tmp_path):
    model = MagicVL.from_pretrained(request.getfixturevalue(which))
    batch = _batch(processor, [(ANSWERED, [_img(450, 300)])])
    before = model(**batch).logits
    model.save_pretrained(tmp_path / "copy")
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["config.json", "model.safetensors"]
    again = MagicVL.from_pretrained(tmp_path / "copy")
    assert again.config == model.config
    assert torch.equal(again(**batch).logits, before)


@pytest.mark.parametrize("which", ["tiny_dir", "tiny_qwen3_dir"])
def test_generation_with_and_without_cache_agree(which, request, processor):
    model = MagicVL.from_pretrained(request.getfixturevalue(which))
    items = [
        (QUESTION, [_img(200, 120)]),
        ([{"from": "human", "value": "<image><image> Describe."}], [_img(64, 64), _img(700, 300)]),
    ]
    batch = _batch(processor, items, padding_side="left", generation=True)
    cached = model.generate(**batch, max_new_tokens=10, use_cache=True)
    plain = model.generate(**batch, max_new_tokens=10, use_cache=False)
    assert cached.shape == (2, 10)
    assert torch.equal(cached, plain)
    assert len(set(cached[0].tolist())) > 1  # the random model does not just repeat one token
    solo = model.generate(**_batch(processor, items[:1], "left", generation=True), max_new_tokens=10)
    assert torch.equal(solo[0], cached[0])  # left padding does not change a row's output


def test_generation_stops_at_eos(tiny_model, processor):
    batch = _batch(processor, [(QUESTION, [_img(64, 64)])], "left", generation=True)
    first = tiny_model.generate(**batch, max_new_tokens=5)[0]
    stopped = tiny_model.generate(**batch, max_new_tokens=5, eos_token_id=int(first[1]))
    assert stopped.tolist() == [first[:2].tolist()]


def test_gradients_reach_every_part_and_freezing_is_per_part(tiny_dir, processor):
    model = MagicVL.from_pretrained(tiny_dir).train()
    model.vision.requires_grad_(False)  # e.g. stage 1 freezes the encoder
    model(**_batch(processor, [(ANSWERED, [_img(200, 120)])])).loss.backward()
    assert all(p.grad is None for p in model.vision.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.projector.parameters())
    assert model.language.get_input_embeddings().weight.grad is not None


@torch.no_grad()
def test_inconsistent_inputs_are_rejected(tiny_model, processor):
    batch = _batch(processor, [(ANSWERED, [_img(200, 120)])])
    slots = (batch["input_ids"] == tiny_model.config.image_token_id).nonzero()
    broken = batch["input_ids"].clone()
    broken[tuple(slots[0])] = processor.tokenizer.pad_token_id
    with pytest.raises(ValueError, match="placeholder"):
        tiny_model(**dict(batch, input_ids=broken))
    with pytest.raises(ValueError, match="patch_mask"):
        tiny_model(**dict(batch, patch_mask=torch.ones_like(batch["patch_mask"])))
    with pytest.raises(ValueError, match="tile_image_index"):
        tiny_model(**dict(batch, tile_image_index=torch.tensor([1])))
    with pytest.raises(ValueError, match="needs 3 tiles"):
        tiny_model(**dict(batch, image_grid=torch.tensor([[4, 30]])))


def test_from_parts_loads_pretrained_encoder_and_llm(tmp_path):
    from transformers import AutoModelForCausalLM, SiglipVisionConfig, SiglipVisionModel

    from magicvl.model.language import build_language_model
    from magicvl.model.tiny import TINY_VIT, build_tokenizer, tiny_magicvl_config

    vit_kwargs = {k: v for k, v in TINY_VIT.items() if k not in ("model_type", "vision_use_head")}
    # an HF checkpoint that still has the pooling head: from_parts must drop it
    vit = SiglipVisionModel(SiglipVisionConfig(**vit_kwargs, vision_use_head=True))
    vit.save_pretrained(tmp_path / "vit")
    tokenizer_dir = build_tokenizer(tmp_path / "lm")
    base = tiny_magicvl_config(vocab_size=700, image_token_id=12)
    lm = build_language_model(base.lm_config)
    lm.save_pretrained(tmp_path / "lm")
    cfg = dataclasses.replace(base, vit_path=str(tmp_path / "vit"), lm_path=str(tokenizer_dir), image_token_id=0)
    model = MagicVL.from_parts(cfg)
    assert model.config.image_token_id == 12  # resolved from the tokenizer
    assert model.config.vit_config["vision_use_head"] is False
    vit_sd = vit.state_dict()
    for name, tensor in model.vision.vit.state_dict().items():
        assert torch.equal(tensor, vit_sd[name]), name
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "lm")
    for name, tensor in model.language.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[name]), name
    with pytest.raises(ValueError, match="vit_path"):
        MagicVL.from_parts(base)
