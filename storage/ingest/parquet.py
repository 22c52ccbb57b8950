"""Parquet sources: an image struct ``{bytes, path}`` column or an image-path column."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from magicvl.storage.ingest.spec import Chunk, DatasetConfig, RawRecord

BROKEN = -1  # Chunk.start of a file that cannot be opened at all


def plan(path: Path, dataset: str, fingerprint: str, chunk_records: int, first_index: int) -> list[Chunk]:
    """One chunk per run of row groups holding about ``chunk_records`` rows."""
    try:
        md = pq.ParquetFile(path).metadata
    except Exception:  # not a Parquet file, truncated footer, ...: one quarantined record, said by read()
        return [Chunk(dataset, "parquet", str(path), first_index, BROKEN, BROKEN, 0, fingerprint)]
    chunks: list[Chunk] = []
    start, rows, first = 0, 0, 0
    for rg in range(md.num_row_groups):
        rows += md.row_group(rg).num_rows
        if rows >= chunk_records or rg == md.num_row_groups - 1:
            chunks.append(
                Chunk(dataset, "parquet", str(path), first_index + len(chunks), start, rg + 1, first, fingerprint)
            )
            first += rows
            start, rows = rg + 1, 0
    return chunks or [Chunk(dataset, "parquet", str(path), first_index, 0, 0, 0, fingerprint)]


def read(chunk: Chunk, cfg: DatasetConfig, preview: int) -> Iterator[RawRecord]:
    """Yield the rows of the chunk's row groups as records (embedded image bytes kept aside)."""
    name = Path(chunk.path).name
    if chunk.start == BROKEN:
        yield RawRecord(f"{name}", 0, error_kind="unreadable_file", error="not a readable Parquet file")
        return
    ordinal = chunk.first_record
    try:
        pf = pq.ParquetFile(chunk.path)
        batches = pf.iter_batches(batch_size=256, row_groups=list(range(chunk.start, chunk.end)))
        for batch in batches:
            for row in batch.to_pylist():
                yield _record(row, cfg, f"{name}:row {ordinal}", ordinal, preview)
                ordinal += 1
    except Exception as e:  # a corrupt page: the rest of the chunk is lost, say so once
        yield RawRecord(
            f"{name}:row {ordinal}+",
            ordinal,
            error_kind="unreadable_file",
            error=f"Parquet data unreadable from row {ordinal}: {type(e).__name__}: {e}",
        )


def _record(row: dict, cfg: DatasetConfig, locator: str, ordinal: int, preview: int) -> RawRecord:
    image = row.get(cfg.image_field)
    rec = RawRecord(locator, ordinal, obj=row)
    if isinstance(image, dict):
        if image.get("bytes") is not None:
            rec.image_bytes = bytes(image["bytes"])
            rec.image_name = image.get("path")
            row = {k: v for k, v in row.items() if k != cfg.image_field}
            rec.obj = row
        elif image.get("path"):
            row = {**row, cfg.image_field: image["path"]}
            rec.obj = row
    conv = row.get(cfg.conversations_field)
    if isinstance(conv, str):  # conversations stored as a JSON string: decode, validation follows
        try:
            rec.obj = {**row, cfg.conversations_field: json.loads(conv)}
        except json.JSONDecodeError:
            pass
    rec.raw = json.dumps(rec.obj, default=repr, ensure_ascii=False)[:preview]
    return rec
