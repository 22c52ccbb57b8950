"""Synthetic curated shards (CURATED_SCHEMA) for training tests and benchmarks: small images, short chats, 4 stages."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from magicvl.storage.layout import stage_folder
from magicvl.storage.schema import CURATED_SCHEMA

WORDS = ["cat", "table", "coffee", "chart", "revenue", "sign", "stop", "button", "invoice", "total", "red", "car"]
CATEGORIES = {1: ["caption"], 2: ["caption"], 3: ["vqa", "ocr", "text_only"], 4: ["chart", "gui", "reasoning"]}


def _png(rng: np.random.Generator, h: int, w: int) -> bytes:
    arr = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def curated_rows(stage: int, n: int, seed: int = 0) -> list[dict]:
    """``n`` rows of one stage; answers repeat a per-row pattern so a model can learn them."""
    rng = np.random.default_rng([seed, stage])
    rows = []
    for i in range(n):
        cat = CATEGORIES[stage][i % len(CATEGORIES[stage])]
        answer = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(3 + int(rng.integers(0, 12))))
        conv = [
            {"from": "human", "value": "Describe the image." if cat != "text_only" else "Say it."},
            {"from": "gpt", "value": answer},
        ]
        h, w = (int(rng.integers(40, 400)), int(rng.integers(40, 400))) if cat != "text_only" else (None, None)
        rows.append(
            {
                "sample_id": f"s{stage}-{i:04d}",
                "dataset": "synthetic",
                "source_key": f"{stage}:{i}",
                "source": f"synthetic:{stage}:{i}",
                "category": cat,
                "conversations": conv,
                "image": None if h is None else {"bytes": _png(rng, h, w), "path": f"{stage}-{i}.png"},
                "width": w,
                "height": h,
                "image_format": None if h is None else "png",
                "stage": stage,
                "complexity": float(stage) / 4,
                "s_text": 0.5,
                "s_image": 0.5,
                "s_task": 0.5,
            }
        )
    return rows


def write_curated(root: Path, n_per_stage: int = 16, seed: int = 0, shards_per_stage: int = 2) -> Path:
    """``root/curated/stage-k/part-*.parquet`` for k = 1..4; returns the curated folder."""
    curated = root / "curated"
    for stage in (1, 2, 3, 4):
        rows = curated_rows(stage, n_per_stage, seed)
        folder = curated / stage_folder(stage)
        folder.mkdir(parents=True, exist_ok=True)
        step = -(-len(rows) // shards_per_stage)
        for k in range(shards_per_stage):
            part = rows[k * step : (k + 1) * step]
            pq.write_table(pa.Table.from_pylist(part, schema=CURATED_SCHEMA), folder / f"part-{k:05d}.parquet")
    return curated
