"""Held-out evaluation: per-category NLL and next-token accuracy equal a hand computation with the plain model
forward (one sample at a time, response mask from the conversation's assistant tokens)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from magicvl.model.evaluate import evaluate_checkpoint
from magicvl.model.magicvl import MagicVL
from magicvl.model.train_data import decode_image, referenced_image
from magicvl.sample_data.synthetic_curated import write_eval_split
from magicvl.storage.readers import list_shards


def by_hand(model: MagicVL, processor, eval_dir: Path, root: Path) -> dict[str, tuple[float, float, int]]:
    """``{category: (mean NLL, accuracy, tokens)}`` with one plain forward per sample."""
    sums = defaultdict(lambda: [0.0, 0, 0])
    for path in list_shards(eval_dir):
        for row in pq.read_table(path).to_pylist():
            row["samples_shard"] = str(root / row["samples_shard"])
            image = decode_image(referenced_image(row))
            x = processor(row["conversations"], [] if image is None else [image])
            with torch.no_grad():
                logits = model(
                    input_ids=x["input_ids"][None],
                    pixel_values=x["pixel_values"],
                    image_grid=x["image_grid"],
                    patch_mask=x["patch_mask"],
                    tile_image_index=x["tile_image_index"],
                ).logits[0]  # [T, V]
            logp = torch.log_softmax(logits.double(), dim=-1)
            for t in range(1, len(x["labels"])):
                target = int(x["labels"][t])
                if target == -100:
                    continue
                s = sums[row["category"]]
                s[0] -= float(logp[t - 1, target])
                s[1] += int(int(logits[t - 1].argmax()) == target)
                s[2] += 1
    return {cat: (s[0] / s[2], s[1] / s[2], s[2]) for cat, s in sums.items()}


def test_eval_values_equal_a_hand_computed_loss(tmp_path, tiny_dir, processor):
    eval_dir = write_eval_split(tmp_path)
    result = evaluate_checkpoint(tiny_dir, eval_dir, tmp_path, max_tokens=2048)  # several samples per pack
    want = by_hand(MagicVL.from_pretrained(tiny_dir).eval(), processor, eval_dir, tmp_path)
    assert sorted(result["categories"]) == ["chart", "gui", "ocr", "reasoning", "text_only", "vqa"] == sorted(want)
    for cat, (nll, acc, tokens) in want.items():
        got = result["categories"][cat]
        assert got["samples"] == 2 and got["tokens"] == tokens > 0, cat
        assert got["nll"] == pytest.approx(nll, rel=1e-4), cat
        assert got["accuracy"] == pytest.approx(acc, abs=1e-9), cat
    total = sum(t for _, _, t in want.values())
    assert result["all"]["tokens"] == total
    assert result["all"]["nll"] == pytest.approx(sum(n * t for n, _, t in want.values()) / total, rel=1e-4)
    assert math.log(processor.tokenizer.vocab_size) * 0.5 < result["all"]["nll"]  # a random model is bad
    assert result["dropped"] == {}


def test_no_eval_split_evaluates_nothing(tmp_path, tiny_dir):
    result = evaluate_checkpoint(tiny_dir, tmp_path / "curated" / "eval", tmp_path)
    assert result["all"] == {"samples": 0, "tokens": 0, "nll": None, "accuracy": None}
    assert result["categories"] == {}
