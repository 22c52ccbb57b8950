"""Outputs that lie: a damaged output is detected where reuse is decided, reported by path, and recomputed."""

from __future__ import annotations

import json
import logging
import os

import pytest

from magicvl.sample_data.hostile import jpeg_bytes
from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset
from magicvl.storage.options import StorageOptions
from magicvl.storage.verify import VERIFY_ENV, reusable_parquet
from magicvl.tasks.steps.ingest.units import fused_signals, ingest_chunk

TURNS = [{"from": "human", "value": "<image>\nwhat?"}, {"from": "gpt", "value": "a gradient"}]


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "src"
    (src / "img").mkdir(parents=True)
    (src / "img" / "a.jpg").write_bytes(jpeg_bytes(64, 48))
    recs = [{"id": f"r{i}", "image": "a.jpg" if i % 2 else None, "conversations": TURNS} for i in range(10)]
    for r in recs:
        if r["image"] is None:
            del r["image"]
            r["conversations"] = [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]
    (src / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return src


def run(src, out, fused=()):
    cfg = DatasetConfig(name="d", format="jsonl", path="d.jsonl", image_root="img")
    opts = IngestOptions()
    [chunk] = plan_dataset(cfg, src, opts)
    return ingest_chunk(chunk, cfg, opts, StorageOptions(), str(out), str(src), list(fused))


def corrupt_same_size(path, keep_mtime: bool) -> None:
    st = os.stat(path)
    data = bytearray(open(path, "rb").read())
    data[64] ^= 0xFF  # inside the first data page: the footer still parses
    open(path, "wb").write(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_truncated_shard_is_reported_and_recomputed(source, tmp_path, caplog):
    out = tmp_path / "out"
    shard = run(source, out)["shards"][0]["path"]
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) - 100)
    with caplog.at_level(logging.WARNING, "magicvl.storage"):
        again = run(source, out)
    assert not again["cached"] and again["kept"] == 10
    assert f"damaged output {shard}: " in caplog.text and "recorded" in caplog.text
    assert run(source, out)["cached"]  # and the recomputed one is reused


@pytest.mark.parametrize("keep_mtime,mode", [(False, None), (True, "sha256")])
def test_a_same_size_corruption_is_caught(source, tmp_path, caplog, monkeypatch, keep_mtime, mode):
    out = tmp_path / "out"
    first = run(source, out)["shards"][0]
    corrupt_same_size(first["path"], keep_mtime)
    if mode:
        monkeypatch.setenv(VERIFY_ENV, mode)
    with caplog.at_level(logging.WARNING, "magicvl.storage"):
        again = run(source, out)
    assert not again["cached"]
    assert again["shards"][0]["sha256"] == first["sha256"]  # recomputed byte for byte
    assert f"damaged output {first['path']}" in caplog.text


def test_same_size_corruption_with_mtime_put_back_needs_verify_mode(source, tmp_path):
    out = tmp_path / "out"
    first = run(source, out)["shards"][0]
    corrupt_same_size(first["path"], keep_mtime=True)
    assert run(source, out)["cached"]  # the quick check cannot see it: documented; MAGICVL_VERIFY=sha256 does


def test_a_truncated_signal_file_is_recomputed(source, tmp_path, caplog):
    """The signal file ingestion wrote (fused) is checked where its reuse is decided: the unit's marker."""
    from magicvl.scoring.signals import get_signal
    from magicvl.tasks.steps.signals.units import SignalUnit

    out = tmp_path / "out"
    s = get_signal("image_entropy")
    fused = fused_signals([("image_entropy", s.params())])
    shard = run(source, out, fused)["shards"][0]

    def unit() -> SignalUnit:
        return SignalUnit(fused[0], "d", shard, str(out), StorageOptions(), 10**8, 10**8)

    done = unit().finished()
    assert done is not None  # ingestion's fused file is the signal step's finished work
    path = done["outputs"][0]["path"]
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with caplog.at_level(logging.WARNING, "magicvl.storage"):
        assert unit().finished() is None
    assert f"damaged output {path}" in caplog.text
    again = unit().run()
    assert not again["cached"] and again["rows"] == 10
    assert reusable_parquet(path, again["key"]) and unit().finished() is not None
