"""`magicvl inspect` on table folders."""

from __future__ import annotations

import pyarrow as pa

from magicvl.flows.report.inspect import inspect_folder
from magicvl.storage.schema import QUARANTINE_SCHEMA
from magicvl.storage.writer import ShardWriter


def test_inspect_quarantine_folder(tmp_path):
    folder = tmp_path / "quarantine" / "d"
    rows = [
        {
            "dataset": "d",
            "source": f"d.jsonl:line {i}",
            "sample_id": None,
            "step": "ingest",
            "error_kind": "invalid_json" if i % 2 else "url_refused",
            "error": "bad",
            "raw": "{x",
            "raw_truncated": False,
        }
        for i in range(5)
    ]
    with ShardWriter(folder, "ingest-part-000000", QUARANTINE_SCHEMA) as w:
        w.write_rows(rows)
        w.close()
    text = inspect_folder(tmp_path / "quarantine", rows=1)
    assert "1 shard(s), 5 row(s)" in text
    assert "error_kind: String" in text
    assert "invalid_json: 2" in text and "url_refused: 3" in text
    assert "source: d.jsonl:line 0" in text


def test_inspect_numeric_and_stage_tables(tmp_path):
    schema = pa.schema([("category", pa.string()), ("stage", pa.int8()), ("complexity", pa.float64())])
    for stage in (1, 3):
        with ShardWriter(tmp_path / f"stage-{stage}", "p", schema) as w:
            w.write(
                pa.table(
                    {
                        "category": ["caption" if stage == 1 else "ocr"] * 2,
                        "stage": [stage] * 2,
                        "complexity": [0.25, 0.75],
                    },
                    schema=schema,
                )
            )
            w.close()
    text = inspect_folder(tmp_path, rows=0)
    assert "rows per category × stage:" in text
    assert "caption" in text and "ocr" in text
    assert "complexity" in text and "0.5" in text  # mean
    assert "first" not in text


def test_inspect_empty_folder(tmp_path):
    assert "no Parquet shards" in inspect_folder(tmp_path)
