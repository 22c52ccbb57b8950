"""Inputs built to exhaust time or memory: each costs one quarantined record, bounded by the recipe's limits."""

from __future__ import annotations

import json
import os
import tracemalloc

import pyarrow as pa
import pytest

from magicvl.sample_data.hostile import (
    deeply_nested_json,
    jpeg_bytes,
    jpeg_scan_bomb_bytes,
    write_json_array_with_huge_element,
    write_non_utf8_name,
    write_parquet_with_blob,
)
from magicvl.storage.images import DecodeBudget, ImageError, check_image, open_checked
from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset, read_chunk

GOOD = [
    {"id": f"g{i}", "conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}]}
    for i in range(6)
]


def read_all(cfg, base, **opts):
    options = IngestOptions(**opts)
    return [r for c in plan_dataset(cfg, base, options) for r in read_chunk(c, cfg, options)]


def outcome(recs):
    return [(r.obj or {}).get("id") if r.error_kind is None else r.error_kind for r in recs]


@pytest.mark.parametrize("chunk_records", [1, 3, 100])
def test_deep_nesting_is_one_quarantined_jsonl_line(tmp_path, chunk_records):
    lines = [json.dumps(r).encode() for r in GOOD]
    lines.insert(2, deeply_nested_json(1000))
    (tmp_path / "d.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    recs = read_all(DatasetConfig(name="d", format="jsonl", path="d.jsonl"), tmp_path, chunk_records=chunk_records)
    assert outcome(recs) == ["g0", "g1", "too_deeply_nested", "g2", "g3", "g4", "g5"]
    assert recs[2].locator == "d.jsonl:line 3"


@pytest.mark.parametrize("chunk_records", [1, 100])
def test_deep_nesting_is_one_quarantined_json_array_element(tmp_path, chunk_records):
    goods = [json.dumps(r).encode() for r in GOOD]
    body = b"[" + b",\n".join(goods[:3] + [deeply_nested_json(1000), deeply_nested_json(5000, "deeper")] + goods[3:]) + b"]"
    (tmp_path / "d.json").write_bytes(body)
    recs = read_all(DatasetConfig(name="d", format="llava_json", path="d.json"), tmp_path, chunk_records=chunk_records)
    assert outcome(recs) == ["g0", "g1", "g2", "too_deeply_nested", "too_deeply_nested", "g3", "g4", "g5"]


def traced_peak(fn):
    """(result, peak bytes of Python allocations while it ran)."""
    tracemalloc.start()
    try:
        return fn(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_huge_json_array_element_is_skipped_in_bounded_memory(tmp_path):
    limit = 1 << 20
    write_json_array_with_huge_element(tmp_path / "d.json", GOOD, element_bytes=40 << 20, at=2)
    cfg = DatasetConfig(name="d", format="llava_json", path="d.json")
    recs, peak = traced_peak(lambda: read_all(cfg, tmp_path, max_record_bytes=limit, chunk_records=100))
    assert outcome(recs) == ["g0", "g1", "record_too_large", "g2", "g3", "g4", "g5"]
    assert "skipped 41943" in recs[2].error  # the whole element, named by its size
    assert peak < 10 * limit  # bounded by max_record_bytes and the 1 MiB read block, not by the 40 MiB element


@pytest.mark.parametrize("char", ["a", "é", "😀"])
def test_an_oversized_json_array_element_never_enters_memory(tmp_path, char):
    """The element is measured on disk: not even its first max_record_bytes are held (whatever
    its characters cost as Python text), in planning or reading."""
    limit = 16 << 20
    piece = (char * ((1 << 20) // len(char.encode()))).encode()
    with open(tmp_path / "d.json", "wb") as f:
        f.write(b"[" + json.dumps(GOOD[0]).encode() + b',{"id": "huge", "blob": "')
        for _ in range(32):
            f.write(piece)
        f.write(b'"},' + json.dumps(GOOD[1]).encode() + b"]")
    cfg = DatasetConfig(name="d", format="llava_json", path="d.json")
    recs, peak = traced_peak(lambda: read_all(cfg, tmp_path, max_record_bytes=limit, chunk_records=1))
    assert outcome(recs) == ["g0", "record_too_large", "g1"]
    assert recs[1].locator.startswith("d.json:record 2 (byte ") and "max_record_bytes=16777216" in recs[1].error
    assert f"skipped {32 * len(piece) + 27} bytes" in recs[1].error  # up to the next record
    assert len(recs[1].raw) == 4096  # the preview, cut
    # a few 1 MiB read blocks (decoding one block of 4-byte characters briefly takes 4 MiB);
    # holding the element's first 16 MiB as text would take 32 MiB or more
    assert peak < 10 << 20


def test_a_long_record_within_the_limit_is_read_after_a_bad_one(tmp_path):
    """Longer than a read block but within max_record_bytes: measured, then read whole, also when
    the search for the next record after a malformed element lands on it."""
    big = {**GOOD[1], "blob": "b" * (3 << 20)}
    parts = [GOOD[0], None, big, GOOD[2], {**GOOD[3], "blob": "c" * (3 << 20)}, GOOD[4]]
    body = b",".join(b'{"id": "bad" "x": 1}' if p is None else json.dumps(p).encode() for p in parts)
    (tmp_path / "d.json").write_bytes(b"[" + body + b"]")
    cfg = DatasetConfig(name="d", format="llava_json", path="d.json")
    for chunk_records in (1, 100):
        recs = read_all(cfg, tmp_path, max_record_bytes=8 << 20, chunk_records=chunk_records)
        assert outcome(recs) == ["g0", "invalid_json", "g1", "g2", "g3", "g4"]
        assert recs[2].obj == big and "skipped 21 bytes" in recs[1].error
    recs = read_all(cfg, tmp_path, max_record_bytes=2 << 20, chunk_records=100)
    assert outcome(recs) == ["g0", "invalid_json", "g2", "record_too_large", "g4"]  # 'big' is no resync target


def test_whitespace_runs_do_not_accumulate(tmp_path):
    goods = [json.dumps(r).encode() for r in GOOD[:2]]
    (tmp_path / "d.json").write_bytes(b"[" + goods[0] + b"," + b" " * (30 << 20) + goods[1] + b"]")
    tracemalloc.start()
    try:
        recs = read_all(DatasetConfig(name="d", format="llava_json", path="d.json"), tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcome(recs) == ["g0", "g1"]
    assert peak < 16 << 20


def test_jpeg_scan_bomb_is_refused_before_decoding():
    bomb = jpeg_scan_bomb_bytes(scans=100_000, side=64)
    with pytest.raises(ImageError) as e:
        check_image(bomb, 10**8)
    assert e.value.kind == "too_many_scans" and "100010 scans (max 100)" in str(e.value)
    assert check_image(jpeg_scan_bomb_bytes(scans=20, side=64), 10**8).width == 64  # a few scans: fine


def test_decode_time_is_bounded_per_image_and_per_task():
    slow = jpeg_scan_bomb_bytes(scans=20_000, side=512)  # seconds of decoding if allowed
    with pytest.raises(ImageError) as e:
        check_image(slow, 10**8, DecodeBudget(image_seconds=0.05, max_jpeg_scans=10**6))
    assert e.value.kind == "decode_timeout"
    budget = DecodeBudget(image_seconds=60, task_seconds=0.05, max_jpeg_scans=10**6)
    with pytest.raises(ImageError) as e:
        check_image(slow, 10**8, budget)  # stopped by the task deadline
    assert e.value.kind == "decode_timeout"
    with pytest.raises(ImageError) as e:
        check_image(jpeg_bytes(), 10**8, budget)  # the task budget is spent: not even decoded
    assert e.value.kind == "task_time_limit"


def test_unreadable_image_error_has_no_object_address():
    with pytest.raises(ImageError) as e:
        open_checked(b"GIF89a-not-really" * 8, 10**8)
    assert "0x" not in str(e.value) and "cannot identify image file" in str(e.value)


@pytest.mark.parametrize("column", ["image", "extra"])
def test_a_parquet_blob_is_refused_without_copying_the_row(tmp_path, column):
    write_parquet_with_blob(tmp_path / "d.parquet", GOOD, blob_bytes=30 << 20, column=column, row=1)
    cfg = DatasetConfig(name="d", format="parquet", path="d.parquet")
    limit = 1 << 20
    tracemalloc.start()
    arrow_before = pa.total_allocated_bytes()
    try:
        recs = read_all(cfg, tmp_path, max_record_bytes=limit, max_image_bytes=limit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    kind = "image_too_large" if column == "image" else "record_too_large"
    assert outcome(recs) == ["g0", kind, "g2", "g3", "g4", "g5"]
    assert "is 31457" in recs[1].error and f"<{30 << 20} bytes>" in recs[1].raw  # named by size
    assert len(recs[1].raw) <= 4096
    assert peak < 8 * limit  # Python objects: no copy or repr of the 30 MiB blob
    assert pa.total_allocated_bytes() - arrow_before < limit  # Arrow buffers released after the chunk


def test_a_non_utf8_file_name_is_one_quarantined_entry(tmp_path):
    d = tmp_path / "data"
    (d / "ok.jsonl").parent.mkdir()
    (d / "ok.jsonl").write_text(json.dumps(GOOD[0]) + "\n")
    write_non_utf8_name(d, ".jsonl", json.dumps(GOOD[1]).encode() + b"\n")
    recs = read_all(DatasetConfig(name="d", format="jsonl", path="data"), tmp_path)
    assert sorted(map(str, outcome(recs))) == ["g0", "invalid_file_name"]
    bad = next(r for r in recs if r.error_kind)
    assert bad.locator == "bad-\\xff-name.jsonl" and "not valid UTF-8" in bad.error
    bad.locator.encode("utf-8")  # storable as text
    assert os.fsencode(bad.error)  # and so is the message
