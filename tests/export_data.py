"""A small curated folder for the export tests: synthetic stages plus the awkward cases.

Stages 1-4 come from ``sample_data.synthetic_curated`` (PNG images, text-only
rows, no stored digests or token counts). One more stage-3 shard adds: a JPEG
shared by two samples (digest stored, as ingestion does), a sample whose
``<image>`` sits at the end of its question, a system-turn text-only chat,
broken image bytes, a row whose samples shard is gone and one whose samples
row is out of range.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from magicvl.sample_data.synthetic_curated import write_curated
from magicvl.storage.export.source import image_digest
from magicvl.storage.schema import CURATED_SCHEMA, SAMPLE_SCHEMA

BROKEN = "x-broken"
MISSING_SHARD = "x-missing-shard"
MISSING_ROW = "x-missing-row"
SYSTEM = "x-system"
SHARED = ("x-shared-a", "x-shared-b")
LATE_TOKEN = "x-late-token"


def _jpeg() -> bytes:
    arr = (np.random.default_rng(7).random((48, 64, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def _row(sid: str, conv: list[tuple[str, str]], image: bytes | None, cat: str, tokens: tuple[int, int]) -> dict:
    w, h = (64, 48) if image is not None else (None, None)
    return {
        "sample_id": sid,
        "dataset": "extra",
        "source_key": sid,
        "source": f"extra:{sid}",
        "category": cat,
        "conversations": [{"from": f, "value": v} for f, v in conv],
        "image": None if image is None else {"bytes": image, "path": f"{sid}.jpg"},
        "image_digest": None if image is None else bytes.fromhex(image_digest(image)),
        "width": w,
        "height": h,
        "image_format": None if image is None else "JPEG",
        "stage": 3,
        "complexity": 0.5,
        "s_text": 0.25,
        "s_image": 0.75,
        "s_task": None,
        "text_tokens": tokens[0],
        "visual_tokens": tokens[1],
    }


def extra_rows() -> list[dict]:
    jpg = _jpeg()
    q = [("human", "<image>\nWhat is in the picture?"), ("gpt", "Noise.")]
    return [
        _row(SHARED[0], q, jpg, "vqa", (20, 12)),
        _row(SHARED[1], [("human", "<image>\nName a colour."), ("gpt", "Grey.")], jpg, "vqa", (18, 12)),
        _row(LATE_TOKEN, [("human", "Describe this: <image>"), ("gpt", "Random pixels.")], jpg, "caption", (17, 12)),
        _row(SYSTEM, [("system", "Be brief."), ("human", "Say hi."), ("gpt", "Hi.")], None, "text_only", (15, 0)),
        _row(BROKEN, q, b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "vqa", (20, 12)),
        _row(MISSING_SHARD, q, jpg, "vqa", (20, 12)),
        _row(MISSING_ROW, q, jpg, "vqa", (20, 12)),
    ]


def write_export_curated(root: Path, n_per_stage: int = 8) -> Path:
    """``root/curated`` (+ ``root/samples``) for the export tests; returns the curated folder."""
    curated = write_curated(root, n_per_stage=n_per_stage, shards_per_stage=2)
    rows = extra_rows()
    samples = root / "samples" / "extra" / "part-000000-000.parquet"
    samples.parent.mkdir(parents=True, exist_ok=True)
    kept = [r for r in rows if r["sample_id"] not in (MISSING_SHARD, MISSING_ROW)]
    pq.write_table(
        pa.Table.from_pylist([{k: r.get(k) for k in SAMPLE_SCHEMA.names} for r in kept], SAMPLE_SCHEMA), samples
    )
    ref = samples.relative_to(root).as_posix()
    out = []
    for j, r in enumerate(kept):
        out.append({**r, "samples_shard": ref, "samples_row": j})
    rows_by_id = {r["sample_id"]: r for r in rows}
    out.append({**rows_by_id[MISSING_SHARD], "samples_shard": "samples/extra/gone.parquet", "samples_row": 0})
    out.append({**rows_by_id[MISSING_ROW], "samples_shard": ref, "samples_row": 99})
    table = pa.Table.from_pylist([{k: r.get(k) for k in CURATED_SCHEMA.names} for r in out], CURATED_SCHEMA)
    pq.write_table(table, curated / "stage-3" / "extra-part-000000.parquet")
    return curated


def curated_rows(curated: Path) -> dict[str, dict]:
    """Every curated row by sample_id, with its image bytes (None: text-only or unavailable)."""
    root = curated.parent
    out = {}
    for shard in sorted(curated.rglob("*.parquet")):
        for r in pq.read_table(shard).to_pylist():
            img = None
            src = root / r["samples_shard"]
            if src.exists():
                t = pq.read_table(src, columns=["image"]).column("image").to_pylist()
                if r["samples_row"] < len(t) and t[r["samples_row"]] is not None:
                    img = t[r["samples_row"]]["bytes"]
            out[r["sample_id"]] = {**r, "image_bytes": img}
    return out
