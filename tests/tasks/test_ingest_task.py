"""Ingesting a chunk: outputs, quarantine, skipping by marker, fused signals equal the standalone ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from magicvl.scoring.signals import get_signal
from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset
from magicvl.storage.layout import OutputLayout
from magicvl.storage.options import StorageOptions
from magicvl.tasks.dedup import dedup_dataset
from magicvl.tasks.ingest import fused_signals, ingest_chunk
from magicvl.tasks.signals import SignalJob, score_shard

CFG = DatasetConfig(name="d", format="jsonl", path="d.jsonl", image_root="images", label_field="category")


def run_all(
    base: Path, out: Path, opts=IngestOptions(chunk_records=10), storage=StorageOptions(), fused=(), force=False
):
    chunks = plan_dataset(CFG, base, opts)
    return [ingest_chunk(c, CFG, opts, storage, str(out), str(base), list(fused), force) for c in chunks]


def test_ingest_writes_samples_and_quarantine(dataset, tmp_path):
    out = tmp_path / "out"
    summaries = run_all(dataset, out)
    assert sum(s["records_in"] for s in summaries) == 29
    assert sum(s["kept"] for s in summaries) == 25  # 24 good + the duplicate id (until dedup)
    kinds = {}
    for s in summaries:
        for k, n in s["quarantined"].items():
            kinds[k] = kinds.get(k, 0) + n
    assert kinds == {"wrong_type": 1, "path_outside_root": 1, "url_refused": 1, "invalid_json": 1}
    layout = OutputLayout(out)
    rows = [r for p in sorted(layout.quarantine_dir("d").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    by_kind = {r["error_kind"]: r for r in rows}
    assert by_kind["path_outside_root"]["source"] == "d.jsonl:line 27"
    assert "escapes the image root" in by_kind["path_outside_root"]["error"]
    assert by_kind["invalid_json"]["raw"].startswith("{broken json")
    samples = [r for s in summaries for sh in s["shards"] for r in pq.read_table(sh["path"]).to_pylist()]
    first = samples[0]
    assert first["source"] == "d.jsonl:line 1" and first["category"] == "vqa"
    assert first["image"]["bytes"] == (dataset / "images" / "0.png").read_bytes()  # embedded unchanged
    assert (first["width"], first["height"], first["image_format"]) == (50, 40, "PNG")
    text_only = next(r for r in samples if r["category"] == "text_only")
    assert text_only["image"] is None and text_only["width"] is None


def test_rerun_skips_and_force_recomputes(dataset, tmp_path):
    out = tmp_path / "out"
    first = run_all(dataset, out)
    again = run_all(dataset, out)
    assert all(s["cached"] for s in again) and not any(s["cached"] for s in first)
    assert [s["shards"] for s in again] == [s["shards"] for s in first]
    forced = run_all(dataset, out, force=True)
    assert not any(s["cached"] for s in forced)
    assert [sh["sha256"] for s in forced for sh in s["shards"]] == [sh["sha256"] for s in first for sh in s["shards"]]


def test_changed_options_invalidate_the_marker(dataset, tmp_path):
    out = tmp_path / "out"
    run_all(dataset, out)
    ref = run_all(dataset, out, opts=IngestOptions(chunk_records=10, images="reference"))
    assert not any(s["cached"] for s in ref)
    row = pq.read_table(ref[0]["shards"][0]["path"]).to_pylist()[0]
    assert row["image"]["bytes"] is None and Path(row["image"]["path"]) == (dataset / "images" / "0.png").resolve()


def test_shards_rotate_within_a_chunk(dataset, tmp_path):
    s = run_all(
        dataset, tmp_path / "out", opts=IngestOptions(chunk_records=100), storage=StorageOptions(shard_max_rows=4)
    )
    assert len(s) == 1 and [sh["rows"] for sh in s[0]["shards"]] == [4] * 6 + [1]


@pytest.mark.parametrize("name", ["image_entropy", "token_length", "type_token_ratio"])
def test_fused_signals_equal_the_standalone_signal(dataset, tmp_path, tokenizer_dir, name):
    s = get_signal(name)
    params = s.params(max_side=32) if name == "image_entropy" else s.params(tokenizer=str(tokenizer_dir))
    job = SignalJob.of(s, params)
    fused = fused_signals([(job.name, job.params)])
    assert [f.name for f in fused] == [name]
    out = tmp_path / "out"
    summaries = run_all(dataset, out, storage=StorageOptions(shard_max_rows=4), fused=fused)
    for summary in summaries:
        for sh, written in zip(summary["shards"], summary["signal_outputs"][name], strict=True):
            standalone = score_shard(job, "d", sh, str(tmp_path / "alt"), 10**8, 10**8)
            assert not standalone["cached"]
            a = pq.read_table(written["path"])
            b = pq.read_table(standalone["path"])
            assert a.column("sample_id").equals(b.column("sample_id"))
            np.testing.assert_array_equal(
                a.column(name).to_numpy(zero_copy_only=False), b.column(name).to_numpy(zero_copy_only=False)
            )
            # and the signal step over the same output root finds the fused file done
            assert score_shard(job, "d", sh, str(out), 10**8, 10**8)["cached"]


def test_dedup_moves_later_duplicates_to_quarantine_and_is_idempotent(dataset, tmp_path):
    out = tmp_path / "out"
    summaries = run_all(dataset, out)
    paths = [sh["path"] for s in summaries for sh in s["shards"]]
    res = dedup_dataset("d", paths, str(out))
    assert res["duplicates"] == 1
    ids = [i for p in paths for i in pq.read_table(p, columns=["sample_id"]).column("sample_id").to_pylist()]
    assert len(ids) == len(set(ids)) == 24
    q = [r for p in OutputLayout(out).quarantine_dir("d").glob("dedup-*.parquet") for r in pq.read_table(p).to_pylist()]
    assert len(q) == 1 and q[0]["source"] == "d.jsonl:line 25" and "first seen at d.jsonl:line 4" in q[0]["error"]
    again = run_all(dataset, out)  # markers were updated: nothing to redo, counts reflect dedup
    assert all(s["cached"] for s in again)
    assert sum(s["kept"] for s in again) == 24
    assert sum(s["quarantined"].get("duplicate_id", 0) for s in again) == 1
    assert dedup_dataset("d", paths, str(out))["duplicates"] == 0


@pytest.mark.parametrize("bad", ["truncated", "not_image"])
def test_broken_image_files_are_quarantined(tmp_path, bad):
    from tests.helpers import make_dataset

    make_dataset(tmp_path, n=3)
    img = tmp_path / "images" / "1.jpg"
    data = img.read_bytes()
    img.write_bytes(data[: len(data) * 2 // 3] if bad == "truncated" else b"<html>")
    s = run_all(tmp_path, tmp_path / "out")
    assert s[0]["kept"] == 2
    assert list(s[0]["quarantined"]) == ["decode_error" if bad == "truncated" else "not_an_image"]
