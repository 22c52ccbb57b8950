"""Reading raw datasets: plan a source into chunks, read a chunk into raw records.

Formats: ``llava_json`` (a JSON array, streamed), ``jsonl`` (streamed),
``parquet`` (image struct or path column) and ``webdataset`` (img2dataset tars).
Sources are local files or ``s3://`` objects (``storage.fs``; ``store`` says how
to reach the object store).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from magicvl.storage.fingerprint import source_fingerprint
from magicvl.storage.fs import ObjectStoreOptions, is_uri
from magicvl.storage.ingest import json_array, jsonl, parquet, webdataset
from magicvl.storage.ingest.spec import Chunk, DatasetConfig, IngestOptions, RawRecord, source_files

__all__ = [
    "Chunk",
    "DatasetConfig",
    "IngestOptions",
    "RawRecord",
    "plan_dataset",
    "plan_file",
    "read_chunk",
    "source_files",
]


BAD_NAME = -2  # Chunk.start of a file whose name is not valid UTF-8 (never opened)


def display_path(path: Path | str) -> str:
    """``path`` as valid UTF-8 text: undecodable bytes of a file name shown as ``\\xNN``."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def plan_file(
    cfg: DatasetConfig,
    path: Path | str,
    options: IngestOptions,
    first_index: int,
    store: ObjectStoreOptions | None = None,
) -> list[Chunk]:
    """Chunks of one source file (a local path or an ``s3://`` URI), numbered from ``first_index``.

    A file whose name is not valid UTF-8 becomes one chunk holding one quarantined
    record that names it (with ``\\xNN`` escapes); its content is not read.
    """
    fp = source_fingerprint(path, store)
    shown = path if is_uri(path) else display_path(path)  # an object key is already text
    if shown != str(path):
        return [Chunk(cfg.name, cfg.format, shown, first_index, BAD_NAME, BAD_NAME, 0, fp)]
    n = options.chunk_records
    if cfg.format == "jsonl":
        return jsonl.plan(path, cfg.name, fp, n, first_index, store)
    if cfg.format == "llava_json":
        keys = (cfg.conversations_field, cfg.id_field)
        return json_array.plan(path, cfg.name, fp, n, first_index, options.max_record_bytes, keys, store)
    if cfg.format == "parquet":
        return parquet.plan(path, cfg.name, fp, n, first_index, store)
    return webdataset.plan(path, cfg.name, fp, first_index)


def plan_dataset(
    cfg: DatasetConfig, base: Path, options: IngestOptions, store: ObjectStoreOptions | None = None
) -> list[Chunk]:
    """Chunks of every file of a dataset (sequential; the flow plans files in parallel)."""
    chunks: list[Chunk] = []
    for path in source_files(cfg, base, store):
        chunks += plan_file(cfg, path, options, len(chunks), store)
    return chunks


def read_chunk(
    chunk: Chunk, cfg: DatasetConfig, options: IngestOptions, store: ObjectStoreOptions | None = None
) -> Iterator[RawRecord]:
    """Raw records of one chunk, in source order. Never raises for bad records."""
    preview = options.raw_preview_bytes
    if chunk.start == BAD_NAME:
        yield RawRecord(
            Path(chunk.path).name,
            0,
            error_kind="invalid_file_name",
            error=f"file name is not valid UTF-8: {chunk.path}; rename the file to ingest it",
        )
    elif chunk.format == "jsonl":
        yield from jsonl.read(chunk, options.max_record_bytes, preview, store)
    elif chunk.format == "llava_json":
        keys = (cfg.conversations_field, cfg.id_field)
        yield from json_array.read(chunk, options.max_record_bytes, keys, preview, store)
    elif chunk.format == "parquet":
        yield from parquet.read(chunk, cfg, options, store)
    elif chunk.format == "webdataset":
        yield from webdataset.read(
            chunk, options.max_image_bytes, options.max_record_bytes, options.caption_prompt, preview, store
        )
    else:
        raise ValueError(f"unknown format {chunk.format!r}")
