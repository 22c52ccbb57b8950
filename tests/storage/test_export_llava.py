"""LLaVA export → this project's own `llava_json` ingest → the same ids, texts and image bytes."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from magicvl.storage.export.base import image_placed_first
from magicvl.storage.export.run import export_curated
from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset
from magicvl.storage.options import StorageOptions
from magicvl.tasks.steps.ingest.units import ingest_chunk
from tests.export_data import BROKEN, LATE_TOKEN, MISSING_ROW, MISSING_SHARD, SYSTEM, curated_rows, write_export_curated


def test_llava_export_round_trips_through_llava_json_ingest(tmp_path):
    curated = write_export_curated(tmp_path / "run")
    source = curated_rows(curated)
    out = tmp_path / "llava"
    manifest = export_curated(curated, "llava", out)
    errors = {
        e["sample_id"]: e["kind"] for e in map(json.loads, (out / "export_errors.jsonl").read_text().splitlines())
    }
    assert errors == {
        SYSTEM: "unsupported_by_format",  # LLaVA's templates have no system turn
        BROKEN: "broken_image",
        MISSING_SHARD: "missing_image",
        MISSING_ROW: "missing_image",
    }
    back = {}
    for st in manifest["stages"]:
        cfg = DatasetConfig(
            name=f"s{st['stage']}", format="llava_json", path=st["files"][0], image_root=".", label_field="category"
        )
        opts = IngestOptions(chunk_records=7)
        for chunk in plan_dataset(cfg, out, opts):
            summary = ingest_chunk(chunk, cfg, opts, StorageOptions(), str(tmp_path / "ingested"), str(out), [])
            assert not summary["quarantined"], summary
            for sh in summary["shards"]:
                for r in pq.read_table(sh["path"]).to_pylist():
                    back[r["source_key"]] = (st["stage"], r)
    assert set(back) == set(source) - set(errors)
    for sid, (stage, r) in back.items():
        row = source[sid]
        assert stage == row["stage"] and r["category"] == row["category"]
        has_image = row["image_bytes"] is not None
        assert r["conversations"] == image_placed_first(row["conversations"], has_image)
        assert (r["image"]["bytes"] if r["image"] else None) == row["image_bytes"]
    late = back[LATE_TOKEN][1]["conversations"][0]["value"]
    assert late == "<image>\nDescribe this: "  # LLaVA's placement: first thing in the first human turn
