"""Golden values of the model-free signals."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from magicvl.scoring.batch import SampleBatch, prompt_text, response_text
from magicvl.scoring.signals import SIGNALS, get_signal
from magicvl.scoring.signals.image_entropy import ImageEntropyParams, entropy_bits
from magicvl.scoring.signals.type_token_ratio import TypeTokenRatioParams


@pytest.fixture(scope="module")
def word_tokenizer():
    """A whitespace word-level tokenizer: one token per word, so counts are checkable by hand."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "describe", "image", "what", "is", "this", "[UNK]"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


def conv(*turns):
    return [{"from": f, "value": v} for f, v in turns]


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_registry_names_match_modules_and_columns():
    for name, s in SIGNALS.items():
        assert s.name == name == s.columns[0]
        assert s.compute.__module__ == f"magicvl.scoring.signals.{name}"


def test_prompt_and_response_split():
    turns = conv(
        ("system", "be nice"),
        ("human", "<image>\nwhat is this"),
        ("gpt", "a cat"),
        ("human", "and this"),
        ("gpt", "a dog"),
    )
    assert prompt_text(turns) == "what is this\nand this"
    assert response_text(turns) == "a cat\na dog"


def test_token_length_counts_all_assistant_turns(word_tokenizer):
    s = get_signal("token_length")
    batch = SampleBatch(
        ["a", "b", "c"],
        [
            conv(("human", "what is this"), ("gpt", "the cat sat on the mat")),
            conv(("human", "describe"), ("gpt", "a dog"), ("human", "and"), ("gpt", "the dog ran")),
            conv(("human", "x"), ("gpt", "")),
        ],
    )
    out = s.compute(batch, s.params(tokenizer="unused"), word_tokenizer)
    assert out["token_length"].tolist() == [6.0, 5.0, 0.0]


def test_type_token_ratio_token_and_word_units(word_tokenizer):
    s = get_signal("type_token_ratio")
    batch = SampleBatch(
        ["a", "b"],
        [
            conv(("human", "<image>\nthe cat"), ("gpt", "the dog the cat")),  # the cat the dog the cat: 3 types / 6
            conv(("human", "The THE"), ("gpt", "cat")),
        ],
    )
    tok = s.compute(batch, TypeTokenRatioParams(tokenizer="unused", unit="token"), word_tokenizer)
    np.testing.assert_allclose(tok["type_token_ratio"], [3 / 6, 2 / 3])  # case-sensitive vocab: The, THE → [UNK] twice
    word = s.compute(batch, TypeTokenRatioParams(unit="word"), None)
    np.testing.assert_allclose(word["type_token_ratio"], [3 / 6, 2 / 3])


def test_type_token_ratio_tokenizer_required_only_for_token_unit():
    from pydantic import ValidationError

    from magicvl.scoring.signals.base import SignalParams

    assert TypeTokenRatioParams(unit="word").tokenizer is None
    with pytest.raises(ValidationError, match="tokenizer: required when unit is 'token'"):
        TypeTokenRatioParams(unit="token")
    assert TypeTokenRatioParams(unit="word", tokenizer="tok").unit == "word"  # allowed, unused
    assert isinstance(TypeTokenRatioParams(tokenizer="tok"), SignalParams)
    from magicvl.tasks.backends import load_backend

    assert load_backend(get_signal("type_token_ratio"), TypeTokenRatioParams(unit="word")) is None


def test_type_token_ratio_of_empty_text_is_nan(word_tokenizer):
    s = get_signal("type_token_ratio")
    out = s.compute(SampleBatch(["a"], [conv(("gpt", ""))]), TypeTokenRatioParams(unit="word"), None)
    assert np.isnan(out["type_token_ratio"][0])


@pytest.mark.parametrize(
    "arr,bits",
    [
        (np.zeros((8, 8), np.uint8), 0.0),
        (np.array([[0, 255]] * 4, np.uint8), 1.0),
        (np.arange(256, dtype=np.uint8).reshape(16, 16), 8.0),
        (np.array([[0, 0, 0, 1]], np.uint8), -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))),
    ],
)
def test_entropy_golden_values(arr, bits):
    assert entropy_bits(arr) == pytest.approx(bits, abs=1e-12)


def test_entropy_equals_scikit_image():
    from skimage.measure import shannon_entropy

    rng = np.random.default_rng(0)
    arr = (rng.beta(2, 5, size=(97, 131)) * 255).astype(np.uint8)
    assert entropy_bits(arr) == pytest.approx(shannon_entropy(arr, base=2), abs=1e-12)


def test_image_entropy_signal_rows_and_resize_policy():
    s = get_signal("image_entropy")
    half = np.zeros((1024, 2048), np.uint8)
    half[:, 1024:] = 255
    batch = SampleBatch(["img", "text", "broken"], [conv(("gpt", "x"))] * 3, [png(half), None, b"not an image"])
    out = s.compute(batch, ImageEntropyParams(max_side=512), None)
    assert out["image_entropy"][0] == pytest.approx(1.0, abs=1e-12)  # reduced by 4: the seam falls between blocks
    assert np.isnan(out["image_entropy"][1]) and np.isnan(out["image_entropy"][2])
    assert out["error"][0] is None and out["error"][1] is None and "not a readable image" in out["error"][2]
    assert batch.gray(512)[0].size == (512, 256)  # box-reduced by ⌊2048/512⌋ = 4, aspect kept
