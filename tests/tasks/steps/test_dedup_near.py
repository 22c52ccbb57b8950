"""Cross-dataset duplicates: exact, near-duplicate images, MinHash text; determinism and recipe order."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from magicvl.scoring.dedup import (
    DedupConfig,
    dhash,
    hamming,
    near_pairs,
    phash,
    resolve_pairs,
)
from magicvl.storage.schema import SAMPLE_SCHEMA
from magicvl.storage.writer import write_table
from magicvl.tasks.steps.quality.dedup_near import find_duplicates


def _photo(seed: int, size=(96, 72), fmt="PNG", quality=90) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.random((6, 8, 3)) * 255  # a smooth random scene
    img = Image.fromarray(base.astype(np.uint8)).resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _row(ds: str, sid: str, q: str, a: str, image: bytes | None) -> dict:
    return {
        "sample_id": sid,
        "dataset": ds,
        "source_key": sid,
        "source": f"{ds}:{sid}",
        "category": None,
        "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}],
        "image": {"bytes": image, "path": None} if image is not None else None,
        "width": None,
        "height": None,
        "image_format": None,
    }


def _shard(tmp_path, name: str, rows: list[dict]) -> str:
    import pyarrow as pa

    path = tmp_path / f"{name}.parquet"
    write_table(path, pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA))
    return str(path)


def test_hashes_golden_and_robust():
    a, same_bigger, jpeg, other = _photo(1), _photo(1, (192, 144)), _photo(1, fmt="JPEG", quality=60), _photo(2)
    for fn in (phash, dhash):
        h = np.array([fn(x) for x in (a, same_bigger, jpeg, other)], dtype=np.uint64)
        d = hamming(h[0], h)
        assert d[0] == 0 and d[1] <= 4 and d[2] <= 4  # resize / recompression: near
        assert d[3] > 12  # another image: far
    assert hamming(np.uint64(0), np.uint64(0xFF)) == 8
    assert phash(a) == phash(a)  # deterministic


def test_near_pairs_match_brute_force():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, size=50, dtype=np.uint64)
    flips = np.uint64(1) << rng.integers(0, 64, size=(50, 3)).astype(np.uint64)
    hashes = np.concatenate([base, base ^ flips[:, 0] ^ flips[:, 1]])  # 100 hashes, pairs within distance 2
    i, j = near_pairs(hashes, 3)
    d = hamming(hashes[:, None], hashes[None, :])
    bi, bj = np.nonzero(np.triu(d <= 3, k=1))
    assert sorted(zip(i.tolist(), j.tolist())) == sorted(zip(bi.tolist(), bj.tolist()))


def test_resolve_keeps_earliest_and_names_a_kept_neighbour():
    # chain 0~1~2 (0 and 2 not similar): 1 is dropped for 0, 2 stays (its only neighbour is gone)
    kept_by = resolve_pairs(4, np.array([0, 1, 0]), np.array([1, 2, 3]))
    assert kept_by.tolist() == [-1, 0, -1, 0]


def test_cross_dataset_duplicates_in_recipe_order(tmp_path):
    img, img2, other = _photo(1), _photo(1, fmt="JPEG", quality=70), _photo(5)
    a = _shard(
        tmp_path,
        "a",
        [
            _row("a", "a1", "<image>\nWhat is this?", "A red scene.", img),
            _row("a", "a2", "Say hi", "Hi", None),
            _row("a", "a3", "<image>\nWhat is this?", "A red scene.", img),  # exact copy inside a
        ],
    )
    b = _shard(
        tmp_path,
        "b",
        [
            _row("b", "b1", "<image>\nWhat  is THIS?", "A red scene. ", img),  # exact after normalization
            _row("b", "b2", "<image>\nWhat is this?", "A red scene.", img2),  # same image re-encoded: near
            _row("b", "b3", "<image>\nWhat is this?", "Something else.", img2),  # same image, other text: kept
            _row("b", "b4", "<image>\nWhat is this?", "A red scene.", other),  # other image: kept
            _row("b", "b5", "Say hi", "Hi", None),
        ],
    )
    table, errors = find_duplicates([a, b], DedupConfig())
    got = [(r["sample_id"], r["kind"], r["kept_sample_id"]) for r in table.to_pylist()]
    assert got == [("a3", "exact", "a1"), ("b1", "exact", "a1"), ("b2", "near_image", "a1"), ("b5", "exact", "a2")]
    assert errors == []
    again, _ = find_duplicates([a, b], DedupConfig())
    assert again.equals(table)  # deterministic
    flipped, _ = find_duplicates([b, a], DedupConfig())  # dataset order decides which copy stays
    assert ("a1", "exact", "b1") in [(r["sample_id"], r["kind"], r["kept_sample_id"]) for r in flipped.to_pylist()]


def test_near_text_minhash(tmp_path):
    long = "The quick brown fox jumps over the lazy dog while the farmer watches from the old red barn near the river"
    rows = [
        _row("a", "t1", "Tell a story", long, None),
        _row("a", "t2", "Tell a story", long + " today", None),  # nearly the same text
        _row(
            "a", "t3", "Tell a story", "A completely different answer about quantum computing and sparse matrices", None
        ),
        _row("a", "t4", "讲个故事", "从前有一座山，山里有一座庙，庙里有一个老和尚在给小和尚讲故事。", None),
        _row("a", "t5", "讲个故事", "从前有一座山，山里有一座庙，庙里有一个老和尚在给小和尚讲故事呢。", None),
    ]
    table, _ = find_duplicates([_shard(tmp_path, "t", rows)], DedupConfig(near_text=True))
    got = [(r["sample_id"], r["kind"], r["kept_sample_id"]) for r in table.to_pylist()]
    assert got == [("t2", "near_text", "t1"), ("t5", "near_text", "t4")]


def test_bad_image_is_reported_not_raised(tmp_path):
    rows = [_row("a", "x1", "<image>\nq", "a", b"not an image"), _row("a", "x2", "<image>\nq", "b", _photo(3))]
    table, errors = find_duplicates([_shard(tmp_path, "x", rows)], DedupConfig())
    assert table.num_rows == 0
    assert errors and errors[0][0] == "x1"


def test_config_is_strict():
    with pytest.raises(ValueError):
        DedupConfig(max_hamming=4, hamming=3)


def test_duplicates_unit_splits_the_table_per_shard(tmp_path):
    """Each verdict unit reads only its shard's file: the split holds exactly the shard's copies, and the
    union of the per-shard files is the run-wide table (a shard with no copies gets an empty file)."""
    import pyarrow.parquet as pq

    from magicvl.storage.fingerprint import sha256_file
    from magicvl.storage.options import StorageOptions
    from magicvl.tasks.steps.quality.units import DuplicatesUnit

    img = _photo(1)
    a = _shard(tmp_path, "a-000", [_row("a", "a1", "<image>\nWhat?", "Red.", img), _row("a", "a2", "Hi", "Hi", None)])
    a2 = _shard(tmp_path, "a-001", [_row("a", "a3", "<image>\nWhat?", "Red.", img), _row("a", "a4", "Yo", "Yo", None)])
    b = _shard(tmp_path, "b-000", [_row("b", "b1", "Hi", "Hi", None), _row("b", "b2", "Other", "Text", None)])
    shards = [(ds, {"path": p, "sha256": sha256_file(p)}) for ds, p in (("a", a), ("a", a2), ("b", b))]
    unit = DuplicatesUnit(shards, DedupConfig(), 1 << 20, str(tmp_path / "out"), StorageOptions())
    res = unit.run()
    whole = pq.read_table(unit.path()).to_pylist()
    assert [(r["sample_id"], r["kept_sample_id"]) for r in whole] == [("a3", "a1"), ("b1", "a2")]
    per_shard = {stem: pq.read_table(unit.path(ds, stem)).to_pylist() for ds, stem in
                 (("a", "a-000"), ("a", "a-001"), ("b", "b-000"))}  # fmt: skip
    assert {k: [r["sample_id"] for r in v] for k, v in per_shard.items()} == {
        "a-000": [], "a-001": ["a3"], "b-000": ["b1"]}  # fmt: skip
    assert sorted(r["sample_id"] for v in per_shard.values() for r in v) == sorted(r["sample_id"] for r in whole)
    assert {Path(o["path"]).name for o in res["outputs"]} == {"duplicates.parquet", "a-000.parquet",
                                                              "a-001.parquet", "b-000.parquet"}  # fmt: skip
    assert unit.run()["cached"]


def test_stored_hashes_are_used_and_equal_hashing_the_bytes(tmp_path):
    """A shard whose rows carry ingestion's hash columns is deduplicated without reading its images:
    the same verdicts as hashing the bytes, even when the stored bytes are no longer an image."""
    from magicvl.scoring.dedup import image_hash_columns

    images = [_photo(1), _photo(1, fmt="JPEG", quality=60), _photo(2), _photo(1)]
    rows = [_row("a", f"a{i}", "q", "same answer", im) for i, im in enumerate(images)]
    bare = _shard(tmp_path, "bare", rows)
    stored = [{**r, **image_hash_columns(r["image"]["bytes"]), "image": {"bytes": b"not an image", "path": None}}
              for r in rows]  # fmt: skip
    hashed = _shard(tmp_path, "hashed", stored)
    by_bytes, errors_bytes = find_duplicates([bare], DedupConfig())
    by_columns, errors_columns = find_duplicates([hashed], DedupConfig())
    assert by_columns.to_pylist() == by_bytes.to_pylist()
    assert [(r["sample_id"], r["kind"]) for r in by_columns.to_pylist()] == [("a1", "near_image"), ("a3", "exact")]
    assert errors_bytes == errors_columns == []


def test_hash_thumb_is_idempotent_and_hashes_match_the_dct_definition():
    from PIL import Image
    from scipy.fft import dctn

    from magicvl.scoring.dedup import _DCT_32_8, HASH_THUMB_MIN, dhash_gray, hash_thumb, phash_gray

    rng = np.random.default_rng(3)
    for size in ((1000, 700), (300, 2000), (255, 255), (256, 900), (100, 60)):
        g = Image.fromarray(rng.integers(0, 256, size=size[::-1], dtype=np.uint8), "L")
        t = hash_thumb(g)
        assert min(t.size) >= min(min(size), HASH_THUMB_MIN) and min(t.size) < 2 * HASH_THUMB_MIN or t is g
        assert hash_thumb(t) is t  # a thumb is not reduced again: hashes of image and thumb agree
        assert phash_gray(g) == phash_gray(t) and dhash_gray(g) == dhash_gray(t)
    x = rng.random((32, 32)) * 255
    assert np.allclose(_DCT_32_8 @ x @ _DCT_32_8.T, dctn(x, norm="ortho")[:8, :8], atol=1e-9)
