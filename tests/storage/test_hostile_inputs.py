"""Inputs built to exhaust time or memory: each costs one quarantined record, bounded by the recipe's limits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
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
    body = (
        b"["
        + b",\n".join(goods[:3] + [deeply_nested_json(1000), deeply_nested_json(5000, "deeper")] + goods[3:])
        + b"]"
    )
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


_READ_IN_CHILD = """
import json, sys
import pyarrow as pa
from pathlib import Path
from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset, read_chunk
cfg, base, opts = DatasetConfig(**json.loads(sys.argv[1])), Path(sys.argv[2]), IngestOptions(**json.loads(sys.argv[3]))
recs = [r for c in plan_dataset(cfg, base, opts) for r in read_chunk(c, cfg, opts)]
out = [(r.locator, r.error_kind, r.error, r.raw, (r.obj or {}).get("id")) for r in recs]
print(json.dumps({"records": out, "arrow_peak": pa.default_memory_pool().max_memory()}))
"""


def read_in_child(cfg: DatasetConfig, base, **opts):
    """(records as (locator, error_kind, error, raw, id) tuples, peak bytes Arrow allocated) of reading
    the dataset in a fresh process: its pool's peak counts every buffer, pre-buffered reads included."""
    args = [cfg.model_dump_json(), str(base), json.dumps(opts)]
    done = subprocess.run([sys.executable, "-c", _READ_IN_CHILD, *args], capture_output=True, text=True, check=True)
    got = json.loads(done.stdout)
    return [tuple(r) for r in got["records"]], got["arrow_peak"]


def test_an_embedded_image_over_max_image_bytes_is_refused_without_copying_the_row(tmp_path):
    """Its page fits max_parquet_page_bytes, so the row group is read; the row is refused on
    the Arrow buffers, before it becomes Python objects."""
    write_parquet_with_blob(tmp_path / "d.parquet", GOOD, blob_bytes=30 << 20, column="image", row=1)
    cfg = DatasetConfig(name="d", format="parquet", path="d.parquet")
    limit = 1 << 20
    tracemalloc.start()
    arrow_before = pa.total_allocated_bytes()
    try:
        recs = read_all(cfg, tmp_path, max_record_bytes=limit, max_image_bytes=limit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcome(recs) == ["g0", "image_too_large", "g2", "g3", "g4", "g5"]
    assert "is 31457280 bytes (max 1048576)" in recs[1].error and f"<{30 << 20} bytes>" in recs[1].raw
    assert len(recs[1].raw) <= 4096
    assert peak < 8 * limit  # Python objects: no copy or repr of the 30 MiB blob
    assert pa.total_allocated_bytes() - arrow_before < limit  # Arrow buffers released after the chunk


@pytest.mark.parametrize(("column", "leaf", "limit"), [("extra", "extra", "max_record_bytes")])
def test_a_parquet_page_over_its_budget_costs_only_its_row_group(tmp_path, column, leaf, limit):
    """Page sizes come from the page headers: the row group holding the 30 MiB value is never
    read (its rows quarantined, named by id), the others are read, and Arrow never holds the value.
    (Embedded image bytes are read apart, page by page: tests/storage/test_parquet_image.py.)"""
    write_parquet_with_blob(tmp_path / "d.parquet", GOOD, 30 << 20, column=column, row=3, row_group_size=2)
    cfg = DatasetConfig(name="d", format="parquet", path="d.parquet")
    opts = {"max_record_bytes": 1 << 20, "max_image_bytes": 1 << 20, "max_parquet_page_bytes": 1 << 20}
    for chunk_records in (1, 100):
        recs, peak = read_in_child(cfg, tmp_path, chunk_records=chunk_records, **opts)
        assert [r[1] or r[4] for r in recs] == ["g0", "g1", "row_group_too_large", "row_group_too_large", "g4", "g5"]
        assert [r[0] for r in recs[2:4]] == ["d.parquet:row 2", "d.parquet:row 3"]
        err, raw = recs[3][2], recs[3][3]
        assert err.startswith(f"d.parquet row group 1 not read: column {leaf!r} has a dictionary page of 3145")
        assert f"ingest.{limit}=1048576" in err and "row_group_size" in err
        assert '"id": "g3"' in raw and f'"{column}": "<not read: dictionary page of 3145' in raw
        assert peak < 1 << 20  # reading the page would take about 3 x 30 MiB


def test_a_large_row_group_of_small_pages_is_read_page_by_page(tmp_path):
    """Over the budget in total but not in any page: read, holding pages and batches, not the chunk."""
    rows = [{"id": f"r{i}", "conversations": os.urandom(1024).hex()} for i in range(4000)]  # 8 MB of text
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, tmp_path / "d.parquet", data_page_size=64 << 10, write_batch_size=32, use_dictionary=False)
    cfg = DatasetConfig(name="d", format="parquet", path="d.parquet")
    recs, peak = read_in_child(cfg, tmp_path, max_record_bytes=256 << 10)
    assert [r[4] for r in recs] == [f"r{i}" for i in range(4000)]
    assert peak < 4 << 20  # the whole column chunk would be 8 MB


def test_a_corrupt_row_group_is_quarantined_row_by_row_and_the_next_is_read(tmp_path):
    pq.write_table(pa.Table.from_pylist(GOOD), tmp_path / "d.parquet", row_group_size=2, compression="snappy")
    md = pq.ParquetFile(tmp_path / "d.parquet").metadata.row_group(1).column(0)
    data = bytearray((tmp_path / "d.parquet").read_bytes())
    start = md.dictionary_page_offset
    data[start + 8 : start + md.total_compressed_size] = b"\xff" * (md.total_compressed_size - 8)
    (tmp_path / "d.parquet").write_bytes(bytes(data))
    recs = read_all(DatasetConfig(name="d", format="parquet", path="d.parquet"), tmp_path)
    assert outcome(recs) == ["g0", "g1", "unreadable_file", "unreadable_file", "g4", "g5"]
    assert [r.locator for r in recs[2:4]] == ["d.parquet:row 2", "d.parquet:row 3"]
    assert recs[2].error.startswith("Parquet row group 1 unreadable from row 2: ")


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
