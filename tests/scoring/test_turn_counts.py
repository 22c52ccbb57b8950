"""L and T count turn contents only, never the newline that joins turns (issue 20, defect 6)."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import AutoTokenizer

from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals import get_signal

TWO_TURNS = [
    {"from": "human", "value": "<image>\nWhat is written on the sign?"},
    {"from": "gpt", "value": "The sign says STOP."},
    {"from": "human", "value": "How many people are in the picture?"},
    {"from": "gpt", "value": "Two people are walking."},
]
ONE_TURN = [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "A cat."}]


def _run(name: str, tokenizer_dir, **params) -> np.ndarray:
    signal = get_signal(name)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    batch = SampleBatch(["two", "one", "none"], [TWO_TURNS, ONE_TURN, [{"from": "human", "value": "hi"}]])
    return signal.compute(batch, signal.params(tokenizer=str(tokenizer_dir), **params), tok)[name]


def test_token_length_sums_the_turns_golden(tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    count = lambda t: len(tok(t, add_special_tokens=False)["input_ids"])  # noqa: E731
    joined = count("The sign says STOP.\nTwo people are walking.")
    assert (count("The sign says STOP."), count("Two people are walking."), joined) == (5, 6, 12)
    assert _run("token_length", tokenizer_dir).tolist() == [11.0, 3.0, 0.0]  # 5 + 6: the "\n" is not counted


def test_type_token_ratio_over_turn_contents_golden(tokenizer_dir):
    ttr = _run("type_token_ratio", tokenizer_dir)
    assert ttr[0] == pytest.approx(21 / 27) and ttr[1] == 1.0  # joined by newlines it was 22 / 30
    words = _run("type_token_ratio", tokenizer_dir, unit="word")
    assert words[0] == pytest.approx(16 / 21)  # the ×3, sign, people, are ×2 repeat: words are unchanged by v2
    assert words[2] == 1.0  # a prompt with no response still has its words


def test_versions_bumped_so_caches_recompute():
    assert get_signal("token_length").version == "2" and get_signal("type_token_ratio").version == "2"
