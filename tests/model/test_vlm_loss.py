"""VLM response loss: hand-computed from logits, batch/padding invariant, equal to HF's own labels= loss."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from magicvl.model.backends.vlm import VlmLoss, load_vlm_backend
from magicvl.model.backends.vlm_inputs import encode, to_messages
from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals import get_signal

CONVS = [
    [{"from": "human", "value": "<image>\nWhat is in the picture?"}, {"from": "gpt", "value": "A red box on a table."}],
    [{"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "Hi."}],
    [
        {"from": "human", "value": "Describe the chart."},
        {"from": "gpt", "value": "The chart shows revenue growing from 2019 to 2024."},
        {"from": "human", "value": "And then?"},
        {"from": "gpt", "value": "A dip in 2020."},
    ],
    [{"from": "human", "value": "Read the sign. <image>"}, {"from": "gpt", "value": "STOP"}],
    [{"from": "human", "value": "How many people?"}, {"from": "gpt", "value": "Two people are walking."}],
]
IMAGES = [Image.new("RGB", (120, 90), (200, 10, 10)), None, None, Image.new("RGB", (60, 200), (0, 100, 10)), None]


@pytest.fixture(scope="module", params=["qwen2_vl", "qwen2_5_vl"])
def vlm(request, tmp_path_factory) -> VlmLoss:
    from magicvl.model.backends.vlm_options import VlmOptions
    from magicvl.model.tiny_vl import build_tiny_vlm

    path = build_tiny_vlm(tmp_path_factory.mktemp("vlm") / request.param, request.param, hidden=32)
    return VlmLoss.load(VlmOptions(model=str(path), batch_size=3))


def _hand_nll(vlm: VlmLoss, conv: list, image: Image.Image | None, eot: str = "") -> tuple[float, int]:
    """Mean NLL of the response from the full logits, response ids found by tokenising the answers alone
    (each followed by ``eot``: "<|im_end|>" when the end-of-turn token is counted)."""
    enc = encode(vlm.processor, conv, image, count_end_of_turn=bool(eot))
    ids = enc.tensors["input_ids"][0].tolist()
    with torch.no_grad():
        logp = vlm.model(**enc.tensors).logits[0].float().log_softmax(-1)  # [T, V]
    tok = vlm.processor.tokenizer
    positions: list[int] = []
    end = len(ids)
    for turn in reversed([t for t in conv if t["from"] == "gpt"]):  # each answer (+ end), searched backwards
        want = tok(turn["value"] + eot, add_special_tokens=False)["input_ids"]
        start = max(i for i in range(end - len(want) + 1) if ids[i : i + len(want)] == want)
        positions = list(range(start, start + len(want))) + positions
        end = start
    nll = -sum(float(logp[t - 1, ids[t]]) for t in positions)
    return nll / len(positions), len(positions)


@pytest.mark.parametrize("end", ["", "<|im_end|>"])
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_loss_equals_hand_computed_mean_nll(vlm, k, end):
    if end:  # count_end_of_turn: the same model, the end-of-turn token counted too
        options = vlm.options.model_copy(update={"count_end_of_turn": True})
        vlm = VlmLoss(vlm.model, vlm.processor, options)
    res = vlm.score([CONVS[k]], [IMAGES[k]])
    mean, n = _hand_nll(vlm, CONVS[k], IMAGES[k], end)
    assert res.errors == [None]
    assert int(res.tokens[0]) == n
    assert res.mean[0] == pytest.approx(mean, rel=1e-5)
    assert res.nll[0] == pytest.approx(mean * n, rel=1e-5)


def test_loss_equals_hf_labels_loss(vlm):
    for conv, image in zip(CONVS, IMAGES):
        enc = encode(vlm.processor, conv, image)
        labels = torch.where(enc.response, enc.tensors["input_ids"][0], -100)[None]
        with torch.no_grad():
            hf = float(vlm.model(**enc.tensors, labels=labels).loss)
        assert vlm.score([conv], [image]).mean[0] == pytest.approx(hf, rel=1e-5)


def test_batching_and_padding_do_not_change_losses(vlm):
    one = [vlm.score([c], [i]) for c, i in zip(CONVS, IMAGES)]
    batched = vlm.score(CONVS, IMAGES)  # batch_size 3: mixed image/text rows, right padding
    assert len(vlm.batches([encode(vlm.processor, c, i) for c, i in zip(CONVS, IMAGES)])) == 2
    np.testing.assert_allclose(batched.nll, [o.nll[0] for o in one], rtol=1e-5)
    np.testing.assert_array_equal(batched.tokens, [o.tokens[0] for o in one])
    order = [4, 2, 0, 3, 1]
    shuffled = vlm.score([CONVS[k] for k in order], [IMAGES[k] for k in order])
    np.testing.assert_allclose(shuffled.nll, batched.nll[order], rtol=1e-5)


def test_sort_windows_and_background_encoding_do_not_change_losses(vlm):
    whole = vlm.score(CONVS, IMAGES)
    windowed = VlmLoss(vlm.model, vlm.processor, vlm.options.model_copy(update={"sort_window": 2}))
    bad = [{"from": "gpt", "value": "no question"}]  # encodes fine or fails alone: never its window
    out = windowed.score(CONVS + [bad], IMAGES + [Image.new("RGB", (4, 4))])  # 3 windows: 2 + 2 + 2
    np.testing.assert_allclose(out.nll[:5], whole.nll, rtol=1e-5)
    np.testing.assert_array_equal(out.tokens[:5], whole.tokens)
    assert out.errors[:5] == [None] * 5 and len(out.errors) == 6


def test_the_image_changes_the_loss(vlm):
    with_image = vlm.score([CONVS[0]], [IMAGES[0]])
    other = vlm.score([CONVS[0]], [Image.new("RGB", (120, 90), (0, 0, 255))])
    text_only = vlm.score([CONVS[0]], [None])
    assert with_image.tokens[0] == other.tokens[0] == text_only.tokens[0]
    assert with_image.nll[0] != other.nll[0] and with_image.nll[0] != text_only.nll[0]


def test_response_mask_covers_every_answer_and_end_of_turn_when_asked(vlm):
    decode = vlm.processor.tokenizer.decode
    enc = encode(vlm.processor, CONVS[2], None)  # default: content only (the rule perplexity shares)
    assert (
        decode(enc.tensors["input_ids"][0][enc.response])
        == "The chart shows revenue growing from 2019 to 2024.A dip in 2020."
    )
    enc = encode(vlm.processor, CONVS[2], None, count_end_of_turn=True)
    text = decode(enc.tensors["input_ids"][0][enc.response])
    assert text == "The chart shows revenue growing from 2019 to 2024.<|im_end|>A dip in 2020.<|im_end|>"


def test_messages_place_the_image():
    assert to_messages(CONVS[3], True)[0]["content"] == [
        {"type": "text", "text": "Read the sign."},
        {"type": "image"},
    ]
    assert to_messages(CONVS[1], True)[0]["content"][0] == {"type": "image"}  # no placeholder: first
    assert to_messages(CONVS[0], False)[0]["content"] == [{"type": "text", "text": "What is in the picture?"}]
    with pytest.raises(ValueError, match="placeholders"):
        to_messages([{"from": "human", "value": "<image> <image>"}, {"from": "gpt", "value": "x"}], True)


def test_signal_columns_and_row_errors(vlm):
    def png(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    signal = get_signal("vlm_loss@small")
    params = signal.params(model=vlm.options.model)
    convs = CONVS[:2] + [[{"from": "human", "value": "hi"}], CONVS[0]]
    batch = SampleBatch(["a", "b", "c", "d"], convs, [png(IMAGES[0]), None, None, b"not an image"])
    out = signal.compute(batch, params, vlm)
    ref = vlm.score(CONVS[:2], IMAGES[:2])
    np.testing.assert_allclose(out["vlm_loss"][:2], ref.mean, rtol=1e-6)
    np.testing.assert_allclose(out["vlm_loss_nll"][:2], ref.nll, rtol=1e-6)
    np.testing.assert_array_equal(out["vlm_loss_tokens"][:2], ref.tokens)
    assert np.isnan(out["vlm_loss"][2]) and out["vlm_loss_tokens"][2] == 0  # no answer: no value, no error
    assert out["error"][:3].tolist() == [None, None, None]
    assert out["error"][3].startswith("image:") and np.isnan(out["vlm_loss"][3])


def test_backend_is_loaded_once_per_worker(vlm):
    from magicvl.scoring.signals.vlm_loss import VlmLossParams

    p = VlmLossParams(model=vlm.options.model, batch_size=2)
    a, b = load_vlm_backend(p), load_vlm_backend(VlmLossParams(model=vlm.options.model, batch_size=2))
    assert a is b and a.options.batch_size == 2
    assert "batch_size" not in p.model_dump()  # runtime options stay out of cache keys
