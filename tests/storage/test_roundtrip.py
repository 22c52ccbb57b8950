"""Shards written by the pipeline open unchanged in pyarrow, polars, duckdb and Hugging Face datasets."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from magicvl.storage.readers import arrow_dataset, scan
from magicvl.storage.schema import CURATED_WITH_IMAGE_SCHEMA, SAMPLE_SCHEMA
from magicvl.storage.writer import ShardWriter


def _jpeg(seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


def _sample(i: int, dataset: str, with_image: bool = True) -> dict:
    return {
        "sample_id": f"{dataset}-{i:04d}",
        "dataset": dataset,
        "source_key": str(i),
        "source": f"x.jsonl:line {i}",
        "category": "vqa" if with_image else "text_only",
        "conversations": [
            {"from": "human", "value": ("<image>\n" if with_image else "") + f"question {i} ünï"},
            {"from": "gpt", "value": f"answer {i}"},
        ],
        "image": {"bytes": _jpeg(i), "path": f"{i}.jpg"} if with_image else None,
        "width": 32 if with_image else None,
        "height": 24 if with_image else None,
        "image_format": "JPEG" if with_image else None,
    }


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    root = tmp_path_factory.mktemp("curated")
    expected = []
    for stage in (1, 3):
        with ShardWriter(root / f"stage={stage}", f"ds{stage}-part", CURATED_WITH_IMAGE_SCHEMA, max_rows=3) as w:
            rows = [
                {
                    **_sample(i, f"ds{stage}", with_image=i % 4 != 3),
                    "stage": stage,
                    "complexity": i / 10,
                    "s_text": 0.5,
                    "s_image": None,
                    "s_task": None,
                    "samples_shard": f"samples/ds{stage}/part-000000-000.parquet",
                    "samples_row": i,
                }
                for i in range(5)
            ]
            w.write_rows(rows)
            w.close()
        expected += rows
    return root, expected


def test_pyarrow_dataset_with_hive_partitions(curated):
    root, expected = curated
    t = arrow_dataset(root).to_table()
    assert t.num_rows == len(expected)
    assert t.schema.field("stage").type == pa.int8()
    assert sorted(t.column("sample_id").to_pylist()) == sorted(r["sample_id"] for r in expected)
    got = {r["sample_id"]: r for r in t.to_pylist()}
    for r in expected:
        assert got[r["sample_id"]]["conversations"] == r["conversations"]
        assert got[r["sample_id"]]["image"] == r["image"]


def test_polars_lazy_scan(curated):
    import polars as pl

    root, expected = curated
    counts = scan(root).group_by("stage").len().sort("stage").collect()
    assert counts.rows() == [(1, 5), (3, 5)]
    first = scan(root, ["sample_id", "conversations"]).filter(pl.col("sample_id") == "ds1-0001").collect()
    assert first["conversations"][0][1]["value"] == "answer 1"


def test_duckdb_reads_shards_unchanged(curated):
    duckdb = pytest.importorskip("duckdb")
    root, expected = curated
    con = duckdb.connect()
    rows = con.execute(
        f"select stage, count(*), sum(octet_length(image.bytes)) from read_parquet('{root}/**/*.parquet', "
        "hive_partitioning=true) group by stage order by stage"
    ).fetchall()
    img_bytes = {s: sum(len(r["image"]["bytes"]) for r in expected if r["image"] and r["stage"] == s) for s in (1, 3)}
    assert rows == [(1, 5, img_bytes[1]), (3, 5, img_bytes[3])]
    v = con.execute(
        f"select conversations[2].value from read_parquet('{root}/stage=1/*.parquet') where sample_id = 'ds1-0002'"
    ).fetchone()[0]
    assert v == "answer 2"


def test_hugging_face_datasets_image_feature(curated):
    datasets = pytest.importorskip("datasets")
    root, expected = curated
    ds = datasets.load_dataset("parquet", data_files=str(root / "stage=1" / "*.parquet"), split="train")
    assert isinstance(ds.features["image"], datasets.Image)
    assert len(ds) == 5
    row = next(r for r in ds if r["sample_id"] == "ds1-0000")
    img = row["image"]
    assert isinstance(img, Image.Image) and img.size == (32, 24)
    assert np.array_equal(np.asarray(img), np.asarray(Image.open(io.BytesIO(_jpeg(0)))))
    text_only = next(r for r in ds if r["sample_id"] == "ds1-0003")
    assert text_only["image"] is None


def test_sample_schema_field_names():
    assert SAMPLE_SCHEMA.names[:2] == ["sample_id", "dataset"]
    assert SAMPLE_SCHEMA.field("image").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
