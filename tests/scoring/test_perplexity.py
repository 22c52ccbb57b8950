"""Perplexity: exp(mean NLL of the response tokens), checked against the model's own logits by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals import get_signal
from magicvl.tasks.backends import load_backend

SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"


def conv(*turns):
    return [{"from": f, "value": v} for f, v in turns]


@pytest.fixture(scope="module")
def signal_lm(causal_lm_dir):
    s = get_signal("perplexity")
    params = s.params(model=str(causal_lm_dir), dtype="float32", batch_size=3)
    return s, params, load_backend(s, params)


def by_hand(lm, pieces: list[tuple[str, bool]]) -> tuple[float, int]:
    """Tokenize the Qwen-template pieces one by one; mean NLL of the scored pieces from full logits."""
    ids, scored = [], []
    for text, is_response in pieces:
        piece = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        scored += [is_response] * len(piece)
    with torch.no_grad():
        logp = lm.model(input_ids=torch.tensor([ids])).logits.float().log_softmax(-1)[0]  # [T, V]
    nll = [-float(logp[t - 1, ids[t]]) for t in range(1, len(ids)) if scored[t]]
    return sum(nll) / len(nll), len(nll)


def test_single_turn_equals_exp_mean_nll_of_response_tokens(signal_lm):
    s, params, lm = signal_lm
    record = conv(("human", "<image>\nDescribe the image."), ("gpt", "A cat sitting on a wooden table."))
    out = s.compute(SampleBatch(["a"], [record]), params, lm)
    nll, n = by_hand(
        lm,
        [
            (SYSTEM + "<|im_start|>user\nDescribe the image.<|im_end|>\n<|im_start|>assistant\n", False),
            ("A cat sitting on a wooden table.", True),
            ("<|im_end|>\n", False),
        ],
    )
    assert out["perplexity_tokens"][0] == n > 3
    assert out["perplexity_nll"][0] == pytest.approx(nll, rel=1e-5)
    assert out["perplexity"][0] == pytest.approx(math.exp(nll), rel=1e-5)
    assert out["perplexity_truncated"][0] == 0.0 and "error" not in out


def test_multi_turn_scores_every_assistant_turn_given_everything_before(signal_lm):
    s, params, lm = signal_lm
    record = conv(
        ("system", "Be brief."),
        ("human", "What is written on the sign?"),
        ("gpt", "The sign says STOP."),
        ("human", "<image>\nHow many people are in the picture?"),
        ("gpt", "Two people are walking."),
    )
    out = s.compute(SampleBatch(["a"], [record]), params, lm)
    nll, n = by_hand(
        lm,
        [
            ("<|im_start|>system\nBe brief.<|im_end|>\n", False),
            ("<|im_start|>user\nWhat is written on the sign?<|im_end|>\n", False),
            ("<|im_start|>assistant\n", False),
            ("The sign says STOP.", True),
            ("<|im_end|>\n<|im_start|>user\nHow many people are in the picture?<|im_end|>\n", False),
            ("<|im_start|>assistant\n", False),
            ("Two people are walking.", True),
            ("<|im_end|>\n", False),
        ],
    )
    assert out["perplexity_tokens"][0] == n
    assert out["perplexity"][0] == pytest.approx(math.exp(nll), rel=1e-5)


def test_batch_of_many_equals_one_at_a_time_and_bad_rows_are_row_errors(signal_lm):
    s, params, lm = signal_lm
    records = [
        conv(("human", f"Question {k}: what is {k} + 3?"), ("gpt", "Let us reason step by step. " * (k + 1)))
        for k in range(7)
    ] + [conv(("human", "x"), ("gpt", ""))]
    batch = s.compute(SampleBatch([str(i) for i in range(8)], records), params, lm)
    one = [s.compute(SampleBatch(["x"], [r]), params, lm)["perplexity"][0] for r in records[:7]]
    np.testing.assert_allclose(batch["perplexity"][:7], one, rtol=1e-5)
    assert np.isnan(batch["perplexity"][7]) and "no response tokens to score" in batch["error"][7]
    assert batch["error"][:7].tolist() == [None] * 7


def test_truncation_is_recorded(causal_lm_dir):
    s = get_signal("perplexity")
    params = s.params(model=str(causal_lm_dir), dtype="float32", max_length=64)
    lm = load_backend(s, params)
    long = conv(("human", "Describe the image."), ("gpt", "The chart shows revenue growing. " * 10))
    gone = conv(("human", "Summarize the table. " * 30), ("gpt", "The tallest bar is B."))
    out = s.compute(SampleBatch(["a", "b"], [long, gone]), params, lm)
    assert out["perplexity_truncated"].tolist() == [1.0, 1.0]
    assert 0 < out["perplexity_tokens"][0] < 30 and np.isfinite(out["perplexity"][0])
    assert np.isnan(out["perplexity"][1]) and "within max_length" in out["error"][1]


def test_bf16_on_cpu_is_close_to_float32(causal_lm_dir, signal_lm):
    s, params, lm = signal_lm
    bf16 = s.params(model=str(causal_lm_dir), dtype="bfloat16")
    record = [conv(("human", "Read the text in the image."), ("gpt", "The document is an invoice dated March 3."))]
    a = s.compute(SampleBatch(["a"], record), params, lm)["perplexity_nll"][0]
    b = s.compute(SampleBatch(["a"], record), bf16, load_backend(s, bf16))["perplexity_nll"][0]
    assert b == pytest.approx(a, rel=0.05)
