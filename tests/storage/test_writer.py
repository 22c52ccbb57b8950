"""Shard writer: rotation, atomicity, checksums, manifests."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from magicvl.storage.layout import OutputLayout, find_root, folder_manifest_path
from magicvl.storage.manifest import (
    read_folder_manifest,
    read_marker,
    verify_folder_manifest,
    write_folder_manifest,
    write_marker,
)
from magicvl.storage.writer import ShardWriter, remove_outputs, write_table

SCHEMA = pa.schema([("i", pa.int64()), ("blob", pa.binary())])


def rows(n, size=10, start=0):
    return [{"i": start + k, "blob": bytes([k % 251]) * size} for k in range(n)]


def test_rotation_by_rows(tmp_path):
    with ShardWriter(tmp_path, "part-000001", SCHEMA, max_rows=4) as w:
        w.write_rows(rows(3))
        w.write_rows(rows(7, start=3))
        infos = w.close()
    assert [i.rows for i in infos] == [4, 4, 2]
    assert [p.name for p in sorted(tmp_path.iterdir())] == [f"part-000001-00{k}.parquet" for k in range(3)]
    back = pa.concat_tables(pq.read_table(i.path) for i in infos)
    assert back.column("i").to_pylist() == list(range(10))  # order kept across shards


def test_rotation_by_bytes(tmp_path):
    import os

    with ShardWriter(tmp_path, "s", SCHEMA, max_rows=10_000, max_bytes=50_000) as w:
        for k in range(10):  # incompressible 20 kB blobs, one row group per write
            w.write(pa.table({"i": [k], "blob": [os.urandom(20_000)]}, schema=SCHEMA))
        infos = w.close()
    assert len(infos) > 1
    assert all(i.bytes < 50_000 + 25_000 for i in infos)  # may exceed by at most one write
    assert sum(i.rows for i in infos) == 10


def test_checksums_and_sizes_match_files(tmp_path):
    with ShardWriter(tmp_path, "s", SCHEMA, max_rows=3) as w:
        w.write_rows(rows(7))
        infos = w.close()
    for i in infos:
        data = open(i.path, "rb").read()
        assert hashlib.sha256(data).hexdigest() == i.sha256 and len(data) == i.bytes


def test_nothing_appears_when_writing_fails(tmp_path):
    with pytest.raises(RuntimeError), ShardWriter(tmp_path, "s", SCHEMA, max_rows=2) as w:
        w.write_rows(rows(5))
        raise RuntimeError("killed mid-way")
    assert list(tmp_path.iterdir()) == []


def test_unclosed_writer_leaves_only_hidden_temporaries(tmp_path):
    w = ShardWriter(tmp_path, "s", SCHEMA, max_rows=2)
    w.write_rows(rows(5))  # two shards finished, one open: none renamed yet
    names = [p.name for p in tmp_path.iterdir()]
    assert names and all(n.startswith(".") for n in names)
    assert remove_outputs(tmp_path, "s") == len(names)
    assert list(tmp_path.iterdir()) == []


def test_write_table_is_atomic_and_overwrites(tmp_path):
    p = tmp_path / "x.parquet"
    write_table(p, pa.table({"a": [1]}))
    info = write_table(p, pa.table({"a": [1, 2]}))
    assert pq.read_table(p).num_rows == 2 and info.rows == 2
    assert [q.name for q in tmp_path.iterdir()] == ["x.parquet"]


def test_folder_manifest_and_verification(tmp_path):
    folder = OutputLayout(tmp_path).stage_dir(1)
    with ShardWriter(folder, "s", SCHEMA, max_rows=3) as w:
        w.write_rows(rows(5))
        infos = w.close()
    path = write_folder_manifest(folder, [i.to_dict() for i in infos], "recipe123")
    # the manifest sits outside the folder readers scan: only data there
    assert path == tmp_path / "_state" / "manifests" / "curated" / "stage-1.json"
    assert sorted(p.name for p in folder.iterdir()) == ["s-000.parquet", "s-001.parquet"]
    assert read_folder_manifest(folder)["rows"] == 5
    assert verify_folder_manifest(folder) == []
    with open(infos[0].path, "r+b") as f:
        f.seek(10)
        f.write(b"X")
    assert verify_folder_manifest(folder) == ["s-000.parquet: checksum mismatch"]


def test_find_root_of_table_folders(tmp_path):
    layout = OutputLayout(tmp_path / "out")
    (layout.root / "_state").mkdir(parents=True)
    for folder in (layout.curated, layout.stage_dir(2), layout.signal_dir("token_length", "d"), layout.scores):
        assert find_root(folder) == layout.root
        assert folder_manifest_path(folder) == layout.folder_manifest(folder)
    # a dataset named like a table still resolves to the root that holds _state
    assert find_root(layout.samples_dir("scores")) == layout.root


def test_marker_is_invalid_when_key_or_outputs_change(tmp_path):
    out = tmp_path / "o.parquet"
    info = write_table(out, pa.table({"a": [1]}))
    m = tmp_path / "m.json"
    write_marker(m, "k1", [info.to_dict()], {"n": 1, "shards": [info.to_dict()]}, tmp_path)
    assert read_marker(m, "k1", tmp_path)["summary"]["n"] == 1
    assert read_marker(m, "k2", tmp_path) is None
    assert '"path": "o.parquet"' in m.read_text()  # stored relative to the output root
    write_table(out, pa.table({"a": [1, 2, 3]}))
    assert read_marker(m, "k1", tmp_path) is None  # output replaced behind the marker's back


def test_marker_survives_moving_the_output_root(tmp_path):
    import shutil

    root = tmp_path / "a"
    info = write_table(root / "x" / "o.parquet", pa.table({"a": [1]}))
    write_marker(root / "_state" / "m.json", "k", [info.to_dict()], {"shards": [info.to_dict()]}, root)
    shutil.move(root, tmp_path / "b")
    back = read_marker(tmp_path / "b" / "_state" / "m.json", "k", tmp_path / "b")
    assert back is not None and back["summary"]["shards"][0]["path"] == str(tmp_path / "b" / "x" / "o.parquet")
