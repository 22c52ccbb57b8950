"""The demo's tiny tokenizer and tiny LM tokenize alike, so L/T and P count the same tokens (issue 20, defect 8)."""

from __future__ import annotations

from transformers import AutoTokenizer

TEXTS = [
    "In 2019 revenue was 42.50 dollars; in 2024 it was 1,000,000.",
    "If x + 3 = 7 then x = 4.",
    "Two people are walking.\n\nThe bounding box is [0.12, 0.40, 0.55, 0.83].",
    "Ünïcödé café, 数字 123 and Arabic ٣٤٥",
    "<|im_start|>user\nRead the sign.<|im_end|>",
]


def test_tokenizer_and_causal_lm_load_as_one_class_and_give_identical_ids(tokenizer_dir, causal_lm_dir):
    tok, lm = AutoTokenizer.from_pretrained(tokenizer_dir), AutoTokenizer.from_pretrained(causal_lm_dir)
    assert type(tok) is type(lm) and type(tok).__name__ == "Qwen2Tokenizer"
    assert len(tok) == len(lm) and tok.eos_token == lm.eos_token == "<|im_end|>"
    for text in TEXTS:
        assert tok(text)["input_ids"] == lm(text)["input_ids"], text
    digits = tok.convert_ids_to_tokens(tok("2019", add_special_tokens=False)["input_ids"])
    assert digits == ["2", "0", "1", "9"]  # Qwen2's rule: one token per digit
    assert tok.convert_tokens_to_ids("<|im_end|>") == tok("<|im_end|>", add_special_tokens=False)["input_ids"][0]
