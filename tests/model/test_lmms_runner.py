"""The evaluator view of a checkpoint (model.lmms): greedy answers and continuation log-likelihoods."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from magicvl.model.lmms import MagicVLRunner


@pytest.fixture(scope="module")
def runner(tiny_dir) -> MagicVLRunner:
    return MagicVLRunner(tiny_dir)


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return Image.new("RGB", (96, 64), (200, 30, 30))


def test_generate_matches_the_models_greedy_decoding(runner, image):
    enc = runner.processor([{"from": "human", "value": "Colour?"}], [image], add_generation_prompt=True)
    images = {k: enc[k] for k in ("pixel_values", "image_grid", "patch_mask", "tile_image_index")}
    ids = runner.model.generate(enc["input_ids"][None], enc["attention_mask"][None], **images, max_new_tokens=6)[0]
    assert runner.generate("Colour?", [image], max_new_tokens=6) == runner.processor.decode(ids)
    text = runner.generate("Colour?", [image], max_new_tokens=6)
    assert runner.generate("Colour?", [image], max_new_tokens=6, until=[text[2:4]]) == text[:2]


def test_loglikelihood_picks_the_greedy_token_and_uses_the_image(runner, image):
    tok = runner.processor.tokenizer
    enc = runner.processor([{"from": "human", "value": "Colour?"}], [image], add_generation_prompt=True)
    images = {k: enc[k] for k in ("pixel_values", "image_grid", "patch_mask", "tile_image_index")}
    with torch.no_grad():
        logits = runner.model(enc["input_ids"][None], enc["attention_mask"][None], **images).logits[0, -1]  # [V]
    logp = torch.log_softmax(logits.float(), -1)
    candidates = [t for t in range(40, 400) if tok(tok.decode([t]), add_special_tokens=False)["input_ids"] == [t]][:6]
    best = max(candidates, key=lambda t: float(logp[t]))
    for t in candidates:
        score, greedy = runner.loglikelihood("Colour?", tok.decode([t]), [image])
        assert score == pytest.approx(float(logp[t]), abs=1e-4)
        assert greedy == (t == int(logits.argmax()))
        assert score <= runner.loglikelihood("Colour?", tok.decode([best]), [image])[0] + 1e-6
    other = Image.new("RGB", (96, 64), (10, 10, 250))
    two = tok.decode(candidates[:2])
    assert runner.loglikelihood("Colour?", two, [image])[0] != runner.loglikelihood("Colour?", two, [other])[0]
    assert runner.loglikelihood("Colour?", "", [image]) == (0.0, True)
