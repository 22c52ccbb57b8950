"""Parquet sources: an image struct ``{bytes, path}`` column or an image-path column.

Memory is bounded in two steps. Before a row group is read, the sizes of its
pages are taken from the page headers (:mod:`parquet_pages`): a page is the
least Arrow can read, so a row group with a page of a non-image column over
``max_record_bytes`` is not read; each of its rows is quarantined
(``row_group_too_large``, naming the file, row group, column and page size),
with a preview of the columns that could be read. Embedded image bytes in a page
over ``max_record_bytes`` are read apart, page by page, as views of the page
(:mod:`parquet_image`: pages over ``max_image_bytes`` or
``max_parquet_page_bytes`` refused unread, for their rows only); other columns
are read by Arrow page by page (no pre-buffering of whole column chunks) in
batches of at most about ``max_record_bytes``. Then sizes are checked before a
row becomes Python objects: a row whose embedded image exceeds
``max_image_bytes``, or whose other columns exceed ``max_record_bytes``, is
quarantined with a preview that names the oversized values (``<N bytes>``)
instead of copying them. A row group that fails to decode has its remaining
rows quarantined one by one; the next row group is still read.
"""

from __future__ import annotations

import dataclasses
import itertools
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
from magicvl.storage.ingest.parquet_image import ImageColumn, Refused, Value, image_column, image_leaf
from magicvl.storage.ingest.parquet_pages import Oversized, oversized_columns
from magicvl.storage.ingest.spec import Chunk, DatasetConfig, IngestOptions, RawRecord, bounded_json

BROKEN = -1  # Chunk.start of a file that cannot be opened at all
_BATCH_ROWS = 64
_BUFFER = 1 << 20  # Arrow reads column chunks through a buffer of this size, page by page


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
    try:
        pf = pq.ParquetFile(fs.parquet_source(chunk.path, store), buffer_size=_BUFFER, pre_buffer=False)
    except Exception as e:
        yield RawRecord(f"{name}", chunk.first_record, error_kind="unreadable_file", error=stable_error(e))
        return
    budgets = _budgets(pf, cfg, options)
    leaf = image_leaf(pf, cfg.image_field)
    first = chunk.first_record
    for rg in range(chunk.start, chunk.end):
        rows = pf.metadata.row_group(rg).num_rows
        done = 0
        try:
            records = _row_group(pf, rg, chunk.path, store, budgets, leaf, cfg, options, name, first)
            for rec in records:
                yield rec
                done += 1
        except Exception as e:  # a corrupt page: the rest of this row group is lost, row by row
            error = f"Parquet row group {rg} unreadable from row {first + done}: {stable_error(e)}"
            for i in range(first + done, first + rows):
                yield RawRecord(f"{name}:row {i}", i, error_kind="unreadable_file", error=error)
        first += rows


def _row_group(
    pf: pq.ParquetFile,
    rg: int,
    path: str,
    store: ObjectStoreOptions | None,
    budgets: list[tuple[int, str]],
    leaf: int | None,
    cfg: DatasetConfig,
    options: IngestOptions,
    name: str,
    first: int,
) -> Iterator[RawRecord]:
    """One row group's records. Embedded image bytes in a page over ``max_record_bytes`` are read by
    :class:`ImageColumn` (page by page, values as views); the rest by Arrow within its page budgets."""
    record_budget = (options.max_record_bytes, "max_record_bytes")
    bad = oversized_columns(path, pf, rg, lambda i: record_budget if i == leaf else budgets[i], store)
    image_path = pf.schema.column(leaf).path if leaf is not None else None
    image_bad = [b for b in bad if b.column == image_path]
    other_bad = [b for b in bad if b.column != image_path]
    if other_bad:  # the image column is not read either, not even for the preview
        return _refused(pf, rg, other_bad, cfg, options, name, first, image_bad)
    if image_bad:
        column = image_column(pf, rg, leaf, path, store, options, f"{name} row group {rg}")
        if column is not None:
            return _rows(pf, rg, cfg, options, name, first, (leaf, column, path, store))
        budget, limit = budgets[leaf]  # a chunk it cannot decode: Arrow reads pages up to max_parquet_page_bytes
        over = [dataclasses.replace(b, budget=budget, limit=limit) for b in image_bad if b.size > budget]
        if over:
            return _refused(pf, rg, over, cfg, options, name, first)
    return _rows(pf, rg, cfg, options, name, first)


def _budgets(pf: pq.ParquetFile, cfg: DatasetConfig, options: IngestOptions) -> list[tuple[int, str]]:
    """(largest page read, recipe field that sets it) per leaf column: embedded image bytes get
    ``max_parquet_page_bytes``, the rest ``max_record_bytes``."""
    image = (options.max_parquet_page_bytes, "max_parquet_page_bytes")
    text = (options.max_record_bytes, "max_record_bytes")
    out = []
    for i, owner in enumerate(_leaf_owners(pf.schema_arrow)):
        leaf = pf.schema.column(i)
        out.append(image if owner == cfg.image_field and leaf.logical_type.type != "STRING" else text)
    return out


def _leaf_owners(schema: pa.Schema) -> list[str]:
    """The top-level field of each leaf column, in Parquet's leaf order."""

    def leaves(t: pa.DataType) -> int:
        if pa.types.is_struct(t):
            return sum(leaves(t.field(k).type) for k in range(t.num_fields))
        if pa.types.is_map(t):
            return leaves(t.key_type) + leaves(t.item_type)
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            return leaves(t.value_type)
        return 1

    return [f.name for f in schema for _ in range(leaves(f.type))]


def _batch_rows(pf: pq.ParquetFile, rg: int, options: IngestOptions, skip: int | None = None) -> int:
    """Rows per batch: at most 64, fewer when rows are large (a batch holds about max_record_bytes);
    leaf ``skip`` (read apart) does not count."""
    md = pf.metadata.row_group(rg)
    size = md.total_byte_size - (md.column(skip).total_uncompressed_size if skip is not None else 0)
    row_bytes = size // max(1, md.num_rows)
    return max(1, min(_BATCH_ROWS, options.max_record_bytes // max(1, row_bytes)))


_Paged = tuple[int, ImageColumn, str, "ObjectStoreOptions | None"]  # image leaf, its reader, file, store


def _rows(
    pf: pq.ParquetFile,
    rg: int,
    cfg: DatasetConfig,
    options: IngestOptions,
    name: str,
    first: int,
    paged: _Paged | None = None,
) -> Iterator[RawRecord]:
    """Records of a row group read by Arrow, but for the image leaf when ``paged`` reads it apart."""
    if paged is None:
        for batch in pf.iter_batches(batch_size=_batch_rows(pf, rg, options), row_groups=[rg]):
            yield from _batch_records(batch, cfg, options, name, first)
            first += batch.num_rows
        return
    leaf, column, path, store = paged
    size = _batch_rows(pf, rg, options, leaf)
    columns = [pf.schema.column(i).path for i in range(len(pf.schema)) if i != leaf]
    rows = pf.metadata.row_group(rg).num_rows
    struct = pf.schema_arrow.field(cfg.image_field).type
    with fs.open_binary(path, store) as f:
        images = column.values(f)
        batches = pf.iter_batches(batch_size=size, row_groups=[rg], columns=columns) if columns else None
        while rows > 0:
            batch = next(batches) if batches is not None else pa.record_batch({"_": pa.nulls(min(size, rows))})
            values = list(itertools.islice(images, batch.num_rows))
            if len(values) != batch.num_rows:
                raise ValueError(f"image column has fewer values than the row group has rows ({name} row group {rg})")
            if batches is None:
                batch = batch.drop_columns(["_"])
            yield from _batch_records(batch, cfg, options, name, first, (values, struct), batch.num_rows)
            first, rows = first + len(values), rows - len(values)


def _refused(
    pf: pq.ParquetFile,
    rg: int,
    bad: list[Oversized],
    cfg: DatasetConfig,
    options: IngestOptions,
    name: str,
    first: int,
    unread: list[Oversized] | None = None,
) -> Iterator[RawRecord]:
    """Every row of a row group with an oversized page, quarantined; the columns without one
    (nor one in ``unread``) are read (bounded, like any row group) to name and preview the rows."""
    error = _refusal(name, rg, bad)
    owners = dict(zip((pf.schema.column(i).path for i in range(len(pf.schema))), _leaf_owners(pf.schema_arrow)))
    shown = {
        owners[b.column]: f"<not read: {b.page.kind if b.page else 'column'} page of {b.size} bytes>"
        for b in [*(unread or []), *bad]
    }
    kept = [f.name for f in pf.schema_arrow if f.name not in shown]
    rows = pf.metadata.row_group(rg).num_rows
    batches = pf.iter_batches(batch_size=_batch_rows(pf, rg, options), row_groups=[rg], columns=kept) if kept else None
    i = 0
    while i < rows:
        values = next(batches).to_pylist() if batches is not None else [{}] * min(_BATCH_ROWS, rows - i)
        for row in values:
            raw = bounded_json({**row, **shown}, options.raw_preview_bytes)
            yield RawRecord(
                f"{name}:row {first + i}", first + i, error_kind="row_group_too_large", error=error, raw=raw
            )
            i += 1


def _refusal(name: str, rg: int, bad: list[Oversized]) -> str:
    """Why a row group is not read and how to fix it, naming its largest oversized page."""
    b = max(bad, key=lambda o: o.size)
    what = (
        f"a {b.page.kind} page of {b.size} bytes" if b.page else f"{b.size} bytes in pages whose headers cannot be read"
    )
    rows = f" (rows {b.page.rows[0]}-{b.page.rows[1]} of the row group)" if b.page and b.page.rows else ""
    more = f" (and {len(bad) - 1} more column(s))" if len(bad) > 1 else ""
    return (
        f"{name} row group {rg} not read: column {b.column!r} has {what}{rows}{more}, over "
        f"ingest.{b.limit}={b.budget}; Parquet reads at least a whole page, so every row of this row group is "
        "quarantined. Rewrite the file with smaller row groups or pages (pyarrow.parquet.write_table(..., "
        f"row_group_size=..., data_page_size=...)) or raise ingest.{b.limit}"
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


_Images = tuple[list[Value], pa.DataType]  # image values of a batch read apart, and the image field's type


def _batch_records(
    batch: pa.RecordBatch,
    cfg: DatasetConfig,
    options: IngestOptions,
    name: str,
    first: int,
    images: _Images | None = None,
    n: int | None = None,
) -> Iterator[RawRecord]:
    """Records of one batch; oversized rows are refused before they are converted to Python.
    With ``images``, the image bytes come from there (views, refusals or None), not from ``batch``."""
    n = batch.num_rows if n is None else n
    sizes = {c: value_sizes(batch.column(c)) for c in batch.schema.names}
    other = sum(sizes.values(), np.zeros(n, np.int64))
    if images is None:
        image = _image_bytes_column(batch, cfg.image_field)
        image_size = value_sizes(image) if image is not None else np.zeros(n, np.int64)
        other -= image_size
        refused: list[Refused | None] = [None] * n
    else:
        image_size = np.array([_value_size(v) for v in images[0]], np.int64)
        refused = [v if isinstance(v, Refused) else None for v in images[0]]
    too_big = (image_size > options.max_image_bytes) | (other > options.max_record_bytes)
    too_big |= np.array([r is not None for r in refused], bool)
    good = np.flatnonzero(~too_big)
    rows = iter(batch.take(pa.array(good, pa.int64())).to_pylist()) if len(good) else iter(())
    preview = options.raw_preview_bytes
    for i in range(n):
        locator, ordinal = f"{name}:row {first + i}", first + i
        if not too_big[i]:
            row = next(rows)
            if images is not None:
                row = _with_image(row, cfg.image_field, images[1], images[0][i])
            yield _record(row, cfg, locator, ordinal, preview)
            continue
        raw = _oversized_preview(batch, i, sizes, preview, cfg.image_field, refused[i] or image_size[i])
        if refused[i] is not None:
            kind, err = refused[i].kind, refused[i].error
        elif image_size[i] > options.max_image_bytes:
            kind, err = "image_too_large", f"embedded image is {image_size[i]} bytes (max {options.max_image_bytes})"
        else:
            kind, err = "record_too_large", f"row is {other[i]} bytes (max_record_bytes={options.max_record_bytes})"
        yield RawRecord(locator, ordinal, error_kind=kind, error=err, raw=raw)


def _value_size(v: Value) -> int:
    return v.size if isinstance(v, Refused) else 0 if v is None else len(v)


def _with_image(row: dict, field: str, struct: pa.DataType, value: Value) -> dict:
    """``row`` with the image struct rebuilt from its Arrow-read fields and the bytes read apart
    (a null struct, or null bytes in a struct of bytes alone, is a null image)."""
    parts = row.get(field)
    if value is None and (parts is None or struct.num_fields == 1):
        return {**row, field: None}
    parts = parts or {}
    return {**row, field: {f.name: value if f.name == "bytes" else parts.get(f.name) for f in struct}}


def _shown(arr: pa.Array, i: int, size: int, preview: int) -> object:
    """Value ``i`` of ``arr`` if small; else ``<N bytes>`` (struct fields shown one by one)."""
    if size <= preview:
        return arr[i].as_py()
    if pa.types.is_struct(arr.type):
        kids = arr.flatten()
        return {f.name: _shown(k, i, int(value_sizes(k.slice(i, 1))[0]), preview) for f, k in zip(arr.type, kids)}
    return f"<{size} bytes>"


def _oversized_preview(
    batch: pa.RecordBatch, i: int, sizes: dict[str, np.ndarray], preview: int, field: str, image: Refused | int
) -> str:
    """A row's columns, each shown whole only if small; large ones as ``<N bytes>``; image bytes
    read apart (``image`` a refusal) as ``<N bytes>`` or ``<not read: ...>``."""
    shown = {c: _shown(batch.column(c), i, int(sizes[c][i]), preview) for c in batch.schema.names}
    if isinstance(image, Refused):
        parts = shown.get(field)
        what = f"<{image.size} bytes>" if "not read" not in image.error else f"<not read: page of {image.size} bytes>"
        shown[field] = {"bytes": what, **(parts if isinstance(parts, dict) else {})}
    return bounded_json(shown, preview)


def _record(row: dict, cfg: DatasetConfig, locator: str, ordinal: int, preview: int) -> RawRecord:
    image = row.get(cfg.image_field)
    rec = RawRecord(locator, ordinal, obj=row)
    if isinstance(image, dict):
        if image.get("bytes") is not None:  # bytes, or a view of a page read apart (not copied)
            data = image["bytes"]
            rec.image_bytes = data if isinstance(data, (bytes, memoryview)) else bytes(data)
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
