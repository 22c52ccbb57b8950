"""Per-shard quality tables: filter measures and decisions, re-deciding from stored measures, categories, judge."""

from __future__ import annotations

import io

import pyarrow as pa
from PIL import Image

from magicvl.scoring.categorize import CategorizeConfig
from magicvl.scoring.filters.config import FiltersConfig
from magicvl.scoring.filters.repetition import RepetitionConfig
from magicvl.scoring.judge import ClassifierConfig, CoherenceJudgeConfig
from magicvl.storage.schema import SAMPLE_SCHEMA
from magicvl.storage.writer import write_table
from magicvl.tasks.steps.quality.shard import (
    CATEGORIES_SCHEMA,
    DECISIONS_SCHEMA,
    JUDGE_SCHEMA,
    categorize_shard,
    decide_table,
    filter_shard,
    judge_shard,
)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


ROWS = [
    ("ok", "<image>\nWhat colour is it?", "Green", True, None),
    ("rep", "<image>\nDescribe the image.", "The cat. The cat. The cat.", True, None),
    ("empty", "Say something", " ", False, "text_only"),
    ("ai", "<image>\nLocate the cat.", "As an AI language model I cannot see the image.", True, "grounding"),
]


def _shard(tmp_path) -> str:
    rows = []
    for sid, q, a, img, label in ROWS:
        rows.append(
            {
                "sample_id": sid,
                "dataset": "d",
                "source_key": sid,
                "source": f"d.jsonl:{sid}",
                "category": label,
                "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}],
                "image": {"bytes": _png(), "path": None} if img else None,
                "width": None,
                "height": None,
                "image_format": None,
            }
        )
    path = tmp_path / "part-000000.parquet"
    write_table(path, pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA))
    return str(path)


def test_filter_shard_and_redecide(tmp_path):
    measures, decisions = filter_shard(_shard(tmp_path), FiltersConfig(), batch_size=3)
    assert decisions.schema == DECISIONS_SCHEMA and measures.num_rows == 4
    assert measures.column("dup_segment_char_share").to_pylist()[1] == 2 / 3
    got = decisions.select(["sample_id", "keep", "reason", "detail"]).to_pylist()
    assert [(r["sample_id"], r["keep"], r["reason"]) for r in got] == [
        ("ok", True, None),
        ("rep", False, "repetition"),
        ("empty", False, "empty_response"),
        ("ai", False, "synthetic_keywords"),
    ]
    assert got[1]["detail"] == "repetition: dup_segment_char_share=0.6667 > 0.3"
    loose = decide_table(measures, FiltersConfig(repetition=RepetitionConfig(max_dup_segment_share=0.9)))
    assert loose.column("keep").to_pylist() == [True, True, False, False]
    assert decide_table(measures, FiltersConfig()).equals(decisions)


class _Scripted:
    identity = "scripted"

    def __init__(self, answers):
        self.answers = list(answers)
        self.images = []

    def generate(self, requests, max_new_tokens):
        self.images += [r.image is not None for r in requests]
        out, self.answers = self.answers[: len(requests)], self.answers[len(requests) :]
        return out


def test_categorize_shard_sources(tmp_path):
    path = _shard(tmp_path)
    t = categorize_shard(path, CategorizeConfig())
    assert t.schema == CATEGORIES_SCHEMA
    assert list(zip(t.column("category").to_pylist(), t.column("category_source").to_pylist())) == [
        ("vqa", "rules"),
        ("caption", "rules"),
        ("text_only", "label"),
        ("grounding", "label"),
    ]
    t = categorize_shard(path, CategorizeConfig(), inspection="chart")
    assert t.column("category_source").to_pylist() == ["inspection", "inspection", "label", "label"]
    gen = _Scripted(['{"category": "ocr"}', "no idea"])
    t = categorize_shard(path, CategorizeConfig(method="vlm", vlm=ClassifierConfig(model="m")), classifier=gen)
    assert t.column("category").to_pylist()[:2] == ["ocr", "caption"]
    assert t.column("category_source").to_pylist()[:2] == ["vlm", "rules"]
    assert t.column("vlm_error").to_pylist()[1] == "answer is not a single JSON object"
    assert gen.images == [True, True]  # the classifier sees the unlabelled samples' images


def test_judge_shard(tmp_path):
    gen = _Scripted(['{"verdict": "pass", "reason": "ok"}', '{"verdict": "fail", "reason": "loops"}', "?", "?"])
    t = judge_shard(_shard(tmp_path), "coherence", gen, CoherenceJudgeConfig(model="m", on_unparseable="drop"), 2)
    assert t.schema == JUDGE_SCHEMA
    assert t.column("status").to_pylist() == ["pass", "fail", "unparseable", "unparseable"]
    assert t.column("keep").to_pylist() == [True, False, False, False]
    assert gen.images == [False] * 4  # the coherence prompt names no <image>: text only
