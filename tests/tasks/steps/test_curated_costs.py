"""Curation stores each kept sample's packing costs (text and visual tokens) in curated/, counted with the
recipe's training model; without a `train:` section, visual tokens only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from magicvl.flows.recipe import parse_recipe
from magicvl.storage.readers import list_shards
from magicvl.tasks.steps.combine import step as combine_step
from magicvl.tasks.steps.ingest import step as ingest_step
from magicvl.tasks.steps.quality.step import quality
from magicvl.tasks.steps.signals import step as signals_step

pytestmark = pytest.mark.slow

# (height, width) -> visual tokens by the paper's rule (32 px per token, 24 tiles of 12 x 12 tokens)
SIZES = {"small": ((64, 64), 4), "photo": ((300, 400), 117), "strip": ((100, 1000), 93)}
ANSWERS = {
    "small": "A small square of coloured blocks, mostly blue and green.",
    "photo": "A landscape photo with a red barn beside a narrow river.",
    "strip": "A long banner that reads Welcome to the harbour festival.",
}


def make_data(root: Path) -> None:
    (root / "img").mkdir(parents=True)
    rows = []
    for i, (name, ((h, w), _)) in enumerate(SIZES.items()):
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "img" / f"{name}.png")
        conv = [{"from": "human", "value": "<image>\nDescribe the image."}, {"from": "gpt", "value": ANSWERS[name]}]
        rows.append({"id": name, "image": f"{name}.png", "conversations": conv})
    text = [{"from": "human", "value": "Name a prime number."}, {"from": "gpt", "value": "Seven is a prime number."}]
    rows.append({"id": "text", "conversations": text})
    (root / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def curate(root: Path, tokenizer: Path, train: dict | None) -> dict[str, dict]:
    data = {
        "output": "out",
        "datasets": [{"name": "a", "format": "jsonl", "path": "a.jsonl", "image_root": "img", "category": "vqa"}],
        "signals": {"token_length": {"tokenizer": str(tokenizer)}},
        "combine": {"granularity": "dataset"},
        "ray": {"address": "local"},
        **({"train": train} if train else {}),
    }
    recipe = parse_recipe(data, root)
    ingest_step.ingest(recipe)
    quality(recipe)
    signals_step.signals(recipe)
    combine_step.combine(recipe)
    rows = [r for p in list_shards(root / "out" / "curated") for r in pq.read_table(p).to_pylist()]
    return {r["source_key"]: r for r in rows}


def test_curated_rows_carry_their_token_costs(tmp_path, tokenizer_dir, ray_local):
    from magicvl.model.costs import counter_key
    from magicvl.model.processor import MagicVLProcessor
    from magicvl.model.tiny import build_tiny_magicvl
    from magicvl.model.train_data import decode_image, referenced_image

    tiny = build_tiny_magicvl(tmp_path / "tiny")
    make_data(tmp_path / "run")
    rows = curate(tmp_path / "run", tokenizer_dir, {"model": str(tiny)})
    assert set(rows) == {*SIZES, "text"}
    processor = MagicVLProcessor.from_pretrained(tiny)
    for key, row in rows.items():
        want_visual = SIZES[key][1] if key in SIZES else 0
        assert row["visual_tokens"] == want_visual, key
        assert row["token_counter"] == counter_key(processor)
        row["samples_shard"] = str(tmp_path / "run" / "out" / row["samples_shard"])
        image = decode_image(referenced_image(row))
        enc = processor(row["conversations"], [] if image is None else [image])  # the real encoding, image decoded
        assert row["text_tokens"] + row["visual_tokens"] == len(enc["input_ids"]), key

    make_data(tmp_path / "no-train")
    rows = curate(tmp_path / "no-train", tokenizer_dir, None)
    assert {k: r["visual_tokens"] for k, r in rows.items()} == {**{k: v for k, (_, v) in SIZES.items()}, "text": 0}
    assert all(r["text_tokens"] is None and r["token_counter"] is None for r in rows.values())
