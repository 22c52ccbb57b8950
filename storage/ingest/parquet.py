"""Parquet sources: an image struct ``{bytes, path}`` column or an image-path column.

Sizes are checked on the Arrow buffers before a row becomes Python objects: a
row whose embedded image exceeds ``max_image_bytes``, or whose other columns
exceed ``max_record_bytes``, is quarantined with a preview that names the
oversized values (``<N bytes>``) instead of copying them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from magicvl.storage import fs
from magicvl.storage.fs import ObjectStoreOptions
from magicvl.storage.images import stable_error
from magicvl.storage.ingest.spec import Chunk, DatasetConfig, IngestOptions, RawRecord, bounded_json

BROKEN = -1  # Chunk.start of a file that cannot be opened at all
_BATCH_ROWS = 64


def plan(
    path: Path | str,
    dataset: str,
    fingerprint: str,
    chunk_records: int,
    first_index: int,
    store: ObjectStoreOptions | None = None,
) -> list[Chunk]:
    """One chunk per run of row groups holding about ``chunk_records`` rows."""
    try:
        md = pq.ParquetFile(fs.parquet_source(path, store)).metadata
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


def read(
    chunk: Chunk, cfg: DatasetConfig, options: IngestOptions, store: ObjectStoreOptions | None = None
) -> Iterator[RawRecord]:
    """Yield the rows of the chunk's row groups as records (embedded image bytes kept aside)."""
    name = fs.name(chunk.path)
    if chunk.start == BROKEN:
        yield RawRecord(f"{name}", 0, error_kind="unreadable_file", error="not a readable Parquet file")
        return
    ordinal = chunk.first_record
    try:
        pf = pq.ParquetFile(fs.parquet_source(chunk.path, store))
        batches = pf.iter_batches(batch_size=_BATCH_ROWS, row_groups=list(range(chunk.start, chunk.end)))
        for batch in batches:
            yield from _batch_records(batch, cfg, options, name, ordinal)
            ordinal += batch.num_rows
    except Exception as e:  # a corrupt page: the rest of the chunk is lost, say so once
        yield RawRecord(
            f"{name}:row {ordinal}+",
            ordinal,
            error_kind="unreadable_file",
            error=f"Parquet data unreadable from row {ordinal}: {stable_error(e)}",
        )


def value_sizes(arr: pa.Array) -> np.ndarray:
    """Bytes of each value of ``arr`` (strings/binaries by length, nested values summed), [n] int64."""
    t = arr.type
    n = len(arr)
    if pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        return np.asarray(pc.binary_length(arr).fill_null(0), dtype=np.int64)
    if pa.types.is_struct(t):
        return sum((value_sizes(child) for child in arr.flatten()), np.zeros(n, np.int64))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        parents = np.asarray(pc.list_parent_indices(arr), dtype=np.int64)
        child = value_sizes(pc.list_flatten(arr))
        return np.bincount(parents, weights=child, minlength=n).astype(np.int64)
    width = getattr(t, "bit_width", 64) if pa.types.is_primitive(t) else 64
    return np.full(n, max(1, width // 8), np.int64)


def _image_bytes_column(batch: pa.RecordBatch, image_field: str) -> pa.Array | None:
    if image_field not in batch.schema.names:
        return None
    col = batch.column(image_field)
    if pa.types.is_struct(col.type) and col.type.get_field_index("bytes") >= 0:
        return col.flatten()[col.type.get_field_index("bytes")]
    return None


def _batch_records(
    batch: pa.RecordBatch, cfg: DatasetConfig, options: IngestOptions, name: str, first: int
) -> Iterator[RawRecord]:
    """Records of one batch; oversized rows are refused before they are converted to Python."""
    image = _image_bytes_column(batch, cfg.image_field)
    image_size = value_sizes(image) if image is not None else np.zeros(batch.num_rows, np.int64)
    sizes = {c: value_sizes(batch.column(c)) for c in batch.schema.names}
    other = sum(sizes.values(), np.zeros(batch.num_rows, np.int64)) - image_size
    too_big = (image_size > options.max_image_bytes) | (other > options.max_record_bytes)
    good = np.flatnonzero(~too_big)
    rows = iter(batch.take(pa.array(good, pa.int64())).to_pylist()) if len(good) else iter(())
    preview = options.raw_preview_bytes
    for i in range(batch.num_rows):
        locator, ordinal = f"{name}:row {first + i}", first + i
        if not too_big[i]:
            yield _record(next(rows), cfg, locator, ordinal, preview)
            continue
        raw = _oversized_preview(batch, i, sizes, preview)
        if image_size[i] > options.max_image_bytes:
            kind, err = "image_too_large", f"embedded image is {image_size[i]} bytes (max {options.max_image_bytes})"
        else:
            kind, err = "record_too_large", f"row is {other[i]} bytes (max_record_bytes={options.max_record_bytes})"
        yield RawRecord(locator, ordinal, error_kind=kind, error=err, raw=raw)


def _shown(arr: pa.Array, i: int, size: int, preview: int) -> object:
    """Value ``i`` of ``arr`` if small; else ``<N bytes>`` (struct fields shown one by one)."""
    if size <= preview:
        return arr[i].as_py()
    if pa.types.is_struct(arr.type):
        kids = arr.flatten()
        return {f.name: _shown(k, i, int(value_sizes(k.slice(i, 1))[0]), preview) for f, k in zip(arr.type, kids)}
    return f"<{size} bytes>"


def _oversized_preview(batch: pa.RecordBatch, i: int, sizes: dict[str, np.ndarray], preview: int) -> str:
    """A row's columns, each shown whole only if small; large ones as ``<N bytes>``."""
    shown = {c: _shown(batch.column(c), i, int(sizes[c][i]), preview) for c in batch.schema.names}
    return bounded_json(shown, preview)


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
        except (json.JSONDecodeError, RecursionError):
            pass
    rec.raw = bounded_json(rec.obj, preview)
    return rec
