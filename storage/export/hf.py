"""Hugging Face ``datasets``: Parquet shards per stage (one split each) with an ``Image`` feature + a dataset card.

``datasets.load_dataset(<export>)`` reads the card's ``configs`` (split
``stage_<k>`` → ``data/stage_<k>/*.parquet``) and the feature types stored in
each shard's footer, so ``image`` decodes to a PIL image and the scores are
typed. The card (README.md) lists stages, categories, counts, token totals and
the recipe hash of the run that curated them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from magicvl.storage.export.base import ExportRecord, FormatWriter, StageSummary
from magicvl.storage.schema import CONVERSATIONS_TYPE, IMAGE_TYPE
from magicvl.storage.writer import _compression

_V = "Value"
_FEATURES = {
    "sample_id": {"dtype": "string", "_type": _V},
    "dataset": {"dtype": "string", "_type": _V},
    "category": {"dtype": "string", "_type": _V},
    "stage": {"dtype": "int8", "_type": _V},
    "S": {"dtype": "float64", "_type": _V},
    "s_text": {"dtype": "float64", "_type": _V},
    "s_image": {"dtype": "float64", "_type": _V},
    "s_task": {"dtype": "float64", "_type": _V},
    "conversations": {
        "feature": {"from": {"dtype": "string", "_type": _V}, "value": {"dtype": "string", "_type": _V}},
        "_type": "List",
    },
    "image": {"_type": "Image"},
    "width": {"dtype": "int32", "_type": _V},
    "height": {"dtype": "int32", "_type": _V},
    "text_tokens": {"dtype": "int32", "_type": _V},
    "visual_tokens": {"dtype": "int32", "_type": _V},
    "image_digest": {"dtype": "string", "_type": _V},
}
SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string()),
        pa.field("category", pa.string()),
        pa.field("stage", pa.int8()),
        pa.field("S", pa.float64()),
        pa.field("s_text", pa.float64()),
        pa.field("s_image", pa.float64()),
        pa.field("s_task", pa.float64()),
        pa.field("conversations", CONVERSATIONS_TYPE),
        pa.field("image", IMAGE_TYPE),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("text_tokens", pa.int32()),
        pa.field("visual_tokens", pa.int32()),
        pa.field("image_digest", pa.string()),
    ],
    metadata={b"huggingface": json.dumps({"info": {"features": _FEATURES}}).encode()},
)
_ROW_GROUP = 256
_CODECS = _compression(SCHEMA, "zstd")  # image bytes stored as they are (they do not compress), the rest zstd


def split_name(stage: int) -> str:
    return f"stage_{stage}"


class HFWriter(FormatWriter):
    name = "hf"

    def open_stage(self, stage: int) -> None:
        self._stage, self._files, self._rows = stage, [], []
        self._writer: pq.ParquetWriter | None = None

    def _open_shard(self) -> None:
        folder = self.out / "data" / split_name(self._stage)
        folder.mkdir(parents=True, exist_ok=True)
        self._path = folder / f"part-{len(self._files):05d}.parquet"
        self._tmp = self._path.with_name(f".{self._path.name}.tmp-{os.getpid()}")
        self._sink = open(self._tmp, "wb")
        self._writer = pq.ParquetWriter(self._sink, SCHEMA, compression=_CODECS)
        self._count = 0

    def _flush(self) -> None:
        if self._rows:
            if self._writer is None:
                self._open_shard()
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=SCHEMA))
            self._count += len(self._rows)
            self._rows = []
            if self._count >= self.options.shard_max_samples or self._sink.tell() >= self.options.shard_max_bytes:
                self._close_shard()

    def _close_shard(self) -> None:
        self._writer.close()
        self._sink.close()
        os.replace(self._tmp, self._path)
        self._files.append(self._path.relative_to(self.out).as_posix())
        self._writer = None

    def write(self, rec: ExportRecord, image_path: str | None) -> None:
        img = rec.image
        self._rows.append(
            {
                **rec.meta(),
                "conversations": rec.conversations,
                "image": None if img is None else {"bytes": img.data, "path": f"{img.digest}.{img.ext}"},
                "width": rec.width,
                "height": rec.height,
                "text_tokens": rec.text_tokens,
                "visual_tokens": rec.visual_tokens,
                "image_digest": None if img is None else img.digest,
            }
        )
        room = self.options.shard_max_samples - (self._count if self._writer is not None else 0)
        if len(self._rows) >= min(_ROW_GROUP, room):
            self._flush()

    def close_stage(self) -> list[str]:
        self._flush()
        if self._writer is not None:
            self._close_shard()
        return list(self._files)

    def abort(self) -> None:
        if getattr(self, "_writer", None) is not None:
            self._writer.close()
            self._sink.close()
            Path(self._tmp).unlink(missing_ok=True)

    def finish(self, stages: list[StageSummary], info: dict[str, Any]) -> list[str]:
        (self.out / "README.md").write_text(dataset_card(self.options.name, stages, info), encoding="utf-8")
        return ["README.md"]


def dataset_card(name: str, stages: list[StageSummary], info: dict[str, Any]) -> str:
    """README.md with the ``configs`` block ``datasets`` reads and a human summary of the curriculum."""
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for s in stages:
        lines += [f"  - split: {split_name(s.stage)}", f"    path: data/{split_name(s.stage)}/*.parquet"]
    lines += ["tags:", "- curriculum", "- magicvl", "---", "", f"# {name}: a MagicVL curriculum", ""]
    lines += [
        "Curated by the magicvl-curriculum pipeline; train the splits in stage order "
        "(stage_1 → stage_4), each stage starting from the previous stage's checkpoint.",
        "",
        f"- recipe hash: `{info.get('recipe_hash')}`",
        f"- run: `{info.get('run_id')}`",
        f"- source: `{info.get('curated')}`",
        "",
        "| split | samples | with image | text tokens | visual tokens | categories |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for s in stages:
        cats = ", ".join(f"{k} {v}" for k, v in sorted(s.categories.items()))
        lines.append(
            f"| {split_name(s.stage)} | {s.samples} | {s.with_image} | {s.text_tokens} | {s.visual_tokens} | {cats} |"
        )
    lines += [
        "",
        "Columns: `sample_id` (joins to the run's `scores/`), `category`, `stage`, `S` (combined complexity), "
        "`s_text`, `s_image`, `s_task`, `conversations` [{from, value}], `image` (Image; null for text-only "
        "samples), `width`, `height`, `text_tokens`, `visual_tokens`, `image_digest`.",
        "",
    ]
    return "\n".join(lines)
