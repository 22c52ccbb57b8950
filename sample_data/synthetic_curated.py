"""Synthetic curated shards for training tests and benchmarks: small images, short chats, 4 stages.

As the pipeline writes them: images live in a samples shard (``SAMPLE_SCHEMA``)
and each curated row (``CURATED_SCHEMA``) references its image there by
``samples_shard`` (relative to the output root) and ``samples_row``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from magicvl.model.costs import CostModel
from magicvl.storage.layout import stage_folder
from magicvl.storage.schema import CURATED_SCHEMA, SAMPLE_SCHEMA

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


def write_stage_shard(root: Path, stage: int, rows: list[dict], name: str, costs: CostModel | None = None) -> Path:
    """One curated shard of ``stage`` under ``root/curated`` and the samples shard holding its images;
    with ``costs``, rows carry their packing costs as curation counts them (``model.costs``)."""
    samples = root / "samples" / "synthetic" / f"{name}-stage{stage}.parquet"
    samples.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pylist([{k: r.get(k) for k in SAMPLE_SCHEMA.names} for r in rows], schema=SAMPLE_SCHEMA), samples
    )
    ref = samples.relative_to(root).as_posix()
    curated = [
        {**{k: v for k, v in r.items() if k != "image"}, "samples_shard": ref, "samples_row": j}
        for j, r in enumerate(rows)
    ]
    if costs is not None:
        counted = costs.columns([r["conversations"] for r in rows], [(r["height"], r["width"]) for r in rows])
        for j, r in enumerate(curated):
            r.update({k: v[j] for k, v in counted.items()})
    folder = root / "curated" / stage_folder(stage)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.parquet"
    pq.write_table(pa.Table.from_pylist(curated, schema=CURATED_SCHEMA), path)
    return path


def write_curated(
    root: Path, n_per_stage: int = 16, seed: int = 0, shards_per_stage: int = 2, costs: CostModel | None = None
) -> Path:
    """``root/curated/stage-k/part-*.parquet`` for k = 1..4 (images in ``root/samples``); returns the curated folder."""
    for stage in (1, 2, 3, 4):
        rows = curated_rows(stage, n_per_stage, seed)
        step = -(-len(rows) // shards_per_stage)
        for k in range(shards_per_stage):
            write_stage_shard(root, stage, rows[k * step : (k + 1) * step], f"part-{k:05d}", costs)
    return root / "curated"


def write_eval_split(root: Path, n_per_stage: int = 6, seed: int = 7, stages: tuple[int, ...] = (3, 4)) -> Path:
    """``root/curated/eval/`` as curation carves it (the stage shards' schema, images by reference): ``n_per_stage``
    rows of each of ``stages`` (other rows than ``write_curated``'s with another seed); returns the folder."""
    folder = root / "curated" / "eval"
    folder.mkdir(parents=True, exist_ok=True)
    for stage in stages:
        shard = write_stage_shard(root, stage, curated_rows(stage, n_per_stage, seed), f"eval-{stage}")
        shard.rename(folder / shard.name)
    return folder
