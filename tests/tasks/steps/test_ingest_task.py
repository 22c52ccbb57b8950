"""Ingesting a chunk: outputs, quarantine, skipping by marker, fused signals equal the standalone ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from magicvl.scoring.signals import get_signal
from magicvl.storage.fingerprint import sha256_file
from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset
from magicvl.storage.layout import OutputLayout
from magicvl.storage.options import StorageOptions
from magicvl.tasks.steps.ingest.dedup import dedup_dataset
from magicvl.tasks.steps.ingest.units import fused_signals, ingest_chunk
from magicvl.tasks.steps.signals.units import SignalJob, SignalUnit


def score_shard(job, dataset, sh, out):
    return SignalUnit(job, dataset, sh, out, StorageOptions(), 10**8, 10**8).run()


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


def assert_fused_equals_standalone(out: Path, alt: Path, summaries: list[dict], job: SignalJob) -> None:
    """Each fused file equals the signal computed alone over the same shard; the signal step finds it done."""
    layout = OutputLayout(out)
    for summary in summaries:
        for sh in summary["shards"]:
            written = layout.signal_path(
                job.name, "d", Path(sh["path"]).name.removesuffix(".parquet"), job.key(sh["sha256"])
            )
            standalone = score_shard(job, "d", sh, str(alt))
            assert not standalone["cached"]
            a, b = pq.read_table(written), pq.read_table(standalone["path"])
            assert a.column("sample_id").equals(b.column("sample_id"))
            for c in job.columns:
                np.testing.assert_array_equal(
                    a.column(c).to_numpy(zero_copy_only=False), b.column(c).to_numpy(zero_copy_only=False)
                )
            assert score_shard(job, "d", sh, str(out))["cached"]


@pytest.mark.parametrize("name", ["image_entropy", "token_length", "type_token_ratio"])
def test_fused_signals_equal_the_standalone_signal(dataset, tmp_path, tokenizer_dir, name):
    s = get_signal(name)
    params = s.params(max_side=32) if name == "image_entropy" else s.params(tokenizer=str(tokenizer_dir))
    job = SignalJob.of(s, params)
    fused = fused_signals([(job.name, job.params)])
    assert [f.name for f in fused] == [name]
    out = tmp_path / "out"
    summaries = run_all(dataset, out, storage=StorageOptions(shard_max_rows=4), fused=fused)
    assert_fused_equals_standalone(out, tmp_path / "alt", summaries, job)


def _mean_luma(gray, params) -> dict[str, float]:
    return {"test_mean_luma": float(np.asarray(gray, dtype=np.float64).mean())}


def test_fused_image_signals_at_different_sides_equal_their_standalone_values(tmp_path, monkeypatch):
    """Two image signals at different max_side fused in one ingestion: each gets its own decode size."""
    from pydantic import Field

    from magicvl.scoring.signals import SIGNALS, Signal, SignalParams
    from magicvl.scoring.signals.base import map_images
    from tests.helpers import make_dataset

    class MeanParams(SignalParams):
        max_side: int = Field(default=16)

    mean = Signal(
        name="test_mean_luma", version="1", axis="image", description="mean luma (test only)", params=MeanParams,
        compute=lambda b, p, _=None: map_images(b, p.max_side, lambda g: _mean_luma(g, p), ("test_mean_luma",)),
        columns=("test_mean_luma",), reads="image", per_image=_mean_luma, image_side=lambda p: p.max_side,
    )  # fmt: skip
    monkeypatch.setitem(SIGNALS, mean.name, mean)
    make_dataset(tmp_path, n=24)
    for i in (1, 3):  # large JPEGs, where DCT-scaled decoding at the larger side would differ most
        rng = np.random.default_rng(i)
        img = (rng.random((300, 420, 3)) * 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / "images" / f"{i}.jpg", quality=90)
    jobs = [SignalJob.of(get_signal("image_entropy"), get_signal("image_entropy").params(max_side=256)),
            SignalJob.of(mean, MeanParams(max_side=16))]  # fmt: skip
    fused = fused_signals([(j.name, j.params) for j in jobs])
    assert [f.name for f in fused] == ["image_entropy", "test_mean_luma"]
    summaries = run_all(tmp_path, tmp_path / "out", fused=fused)
    for job in jobs:
        assert_fused_equals_standalone(tmp_path / "out", tmp_path / f"alt-{job.name}", summaries, job)


def test_dedup_quarantines_later_duplicates_without_touching_ingest(dataset, tmp_path):
    out = tmp_path / "out"
    summaries = run_all(dataset, out)
    shards = [sh for s in summaries for sh in s["shards"]]
    before = {sh["path"]: sha256_file(sh["path"]) for sh in shards}
    res = dedup_dataset("d", shards, str(out), StorageOptions())
    assert res["duplicates"] == 1 and not res["cached"]
    assert {p: sha256_file(p) for p in before} == before  # ingest's shards are left as they are
    q = [r for p in OutputLayout(out).quarantine_dir("d").glob("dedup-*.parquet") for r in pq.read_table(p).to_pylist()]
    assert len(q) == 1 and q[0]["source"] == "d.jsonl:line 25" and q[0]["error_kind"] == "duplicate_id"
    assert "first seen at d.jsonl:line 4" in q[0]["error"]
    again = run_all(dataset, out)  # ingest markers still match: nothing to redo
    assert all(s["cached"] for s in again) and sum(s["kept"] for s in again) == 25
    assert dedup_dataset("d", shards, str(out), StorageOptions())["cached"]


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


def test_ingestion_stores_the_dedup_hashes_of_each_image(dataset, tmp_path):
    """The hash columns come from ingestion's own decode and equal dedup's standalone hashing."""
    from magicvl.scoring.dedup import image_hash_columns

    summaries = run_all(dataset, tmp_path / "out")
    samples = [r for s in summaries for sh in s["shards"] for r in pq.read_table(sh["path"]).to_pylist()]
    with_image = [r for r in samples if r["image"] is not None]
    assert with_image and all(r["image_digest"] is not None for r in with_image)
    for r in with_image:
        expected = image_hash_columns(r["image"]["bytes"])
        assert {k: r[k] for k in expected} == expected
    assert all(r["image_digest"] is None and r["image_phash"] is None for r in samples if r["image"] is None)
