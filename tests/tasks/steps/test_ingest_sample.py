"""A chunk sample (``curate --sample-chunks``): every k-th chunk of each dataset, what it stands for,
and an ingest over it that reads only those chunks and accounts for exactly what it read."""

from __future__ import annotations

import pytest

from magicvl.flows.recipe import parse_recipe
from magicvl.storage.ingest import Chunk, DatasetConfig
from magicvl.tasks.steps.ingest.sample import keep_chunks, known_records, sample_every, sample_info
from magicvl.tasks.steps.ingest.step import ingest
from tests.helpers import make_dataset


def chunk(ds: str, index: int, path: str, first: int, fmt: str = "jsonl") -> Chunk:
    return Chunk(ds, fmt, path, index, first * 10, first * 10 + 10, first, "fp")


A, B = DatasetConfig(name="a", format="jsonl", path="a.jsonl"), DatasetConfig(name="b", format="webdataset", path="*")
PLANNED = [(A, chunk("a", i, "a.jsonl", 100 * i)) for i in range(7)] + [
    (B, chunk("b", i, f"{i}.tar", 0, "webdataset")) for i in range(3)
]


def test_every_kth_chunk_of_each_dataset():
    assert [sample_every(f) for f in (1.0, 0.5, 0.34, 0.1, 0.07)] == [1, 2, 3, 10, 14]
    kept = keep_chunks(PLANNED, 3)
    assert [(cfg.name, ch.index) for cfg, ch in kept] == [("a", 0), ("a", 3), ("a", 6), ("b", 0)]
    assert keep_chunks(PLANNED, 3) == kept and keep_chunks(PLANNED, 1) == PLANNED  # deterministic; 1: all
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"--sample-chunks must be in \(0, 1\]"):
            sample_every(bad)


def test_what_the_sample_stands_for():
    # a.jsonl: 7 chunks of 100 records known from the next chunk's first record, the last unknown
    assert known_records([ch for _, ch in PLANNED[:7]]) == [100] * 6 + [None]
    assert known_records([ch for _, ch in PLANNED[7:]]) == [None] * 3  # tars do not number their records
    read = [("a", 0, 100), ("a", 3, 100), ("a", 6, 40), ("b", 0, 30)]
    results = [{"dataset": d, "chunk": i, "records_in": n} for d, i, n in read]
    info = sample_info(0.34, 3, PLANNED, results)
    assert info["datasets"] == {
        "a": {"chunks_planned": 7, "chunks_kept": 3, "records_read": 240, "records_estimated": 640.0},
        "b": {"chunks_planned": 3, "chunks_kept": 1, "records_read": 30, "records_estimated": 90.0},
    }
    assert (info["chunks_planned"], info["chunks_kept"], info["records_read"], info["records_estimated"]) == (
        10, 4, 270, 730.0)  # fmt: skip


def test_an_unread_last_chunk_counts_by_its_bytes():
    c = DatasetConfig(name="c", format="jsonl", path="c.jsonl")
    planned = [(c, Chunk("c", "jsonl", "c.jsonl", 0, 0, 1000, 0, "fp")),
               (c, Chunk("c", "jsonl", "c.jsonl", 1, 1000, 2000, 100, "fp")),
               (c, Chunk("c", "jsonl", "c.jsonl", 2, 2000, 2300, 200, "fp"))]  # fmt: skip
    info = sample_info(0.5, 2, planned, [{"dataset": "c", "chunk": 0, "records_in": 100}])
    assert info["datasets"]["c"]["records_estimated"] == 230.0  # 100 + 100 known + 300 bytes at 0.1 a byte
    wide = [*planned[:2], (c, Chunk("c", "jsonl", "c.jsonl", 2, 2000, 5000, 200, "fp"))]
    assert sample_info(0.5, 2, wide, [{"dataset": "c", "chunk": 0, "records_in": 100}])["records_estimated"] == 300.0


def test_a_sampled_ingest_reads_only_its_chunks_and_balances(tmp_path, ray_local):
    make_dataset(tmp_path / "data", n=40)  # 40 good records, 7 a chunk: 6 chunks
    recipe = parse_recipe({
        "output": str(tmp_path / "out"),
        "datasets": [{"name": "d", "format": "jsonl", "path": "data/d.jsonl", "image_root": "data/images",
                      "label_field": "category"}],
        "ingest": {"chunk_records": 7},
        "signals": {"image_entropy": {"max_side": 64}},
    }, tmp_path)  # fmt: skip
    res = ingest(recipe, sample=0.5)
    chunks = res["datasets"]["d"]
    assert [c["chunk"] for c in chunks] == [0, 2, 4] and res["chunks"] == 3
    read = sum(c["records_in"] for c in chunks)
    assert read == 21 and res["sample"]["records_read"] == read  # three full chunks of 7
    assert res["sample"]["datasets"]["d"] == {"chunks_planned": 6, "chunks_kept": 3, "records_read": 21,
                                              "records_estimated": 42.0}  # fmt: skip
    # 5 chunks of 7 known from the plan; the unread last one (5 longer lines) by its bytes, at most 7
    kept = sum(c["kept"] for c in chunks)
    quarantined = sum(n for c in chunks for n in c["quarantined"].values())
    assert read == kept + quarantined  # every record read ends somewhere; unread ones are not counted
    assert sorted(p.name for p in (tmp_path / "out" / "samples" / "d").glob("*.parquet")) == [
        "part-000000-000.parquet", "part-000002-000.parquet", "part-000004-000.parquet"]  # fmt: skip
