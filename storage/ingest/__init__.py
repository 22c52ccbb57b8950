"""Reading raw datasets: plan a source into chunks, read a chunk into raw records.

Formats: ``llava_json`` (a JSON array, streamed), ``jsonl`` (streamed),
``parquet`` (image struct or path column) and ``webdataset`` (img2dataset tars).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from magicvl.storage.fingerprint import source_fingerprint
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


def plan_file(cfg: DatasetConfig, path: Path, options: IngestOptions, first_index: int) -> list[Chunk]:
    """Chunks of one source file, numbered from ``first_index``.

    A file whose name is not valid UTF-8 becomes one chunk holding one quarantined
    record that names it (with ``\\xNN`` escapes); its content is not read.
    """
    fp = source_fingerprint(path)
    shown = display_path(path)
    if shown != str(path):
        return [Chunk(cfg.name, cfg.format, shown, first_index, BAD_NAME, BAD_NAME, 0, fp)]
    n = options.chunk_records
    if cfg.format == "jsonl":
        return jsonl.plan(path, cfg.name, fp, n, first_index)
    if cfg.format == "llava_json":
        keys = (cfg.conversations_field, cfg.id_field)
        return json_array.plan(path, cfg.name, fp, n, first_index, options.max_record_bytes, keys)
    if cfg.format == "parquet":
        return parquet.plan(path, cfg.name, fp, n, first_index)
    return webdataset.plan(path, cfg.name, fp, first_index)


def plan_dataset(cfg: DatasetConfig, base: Path, options: IngestOptions) -> list[Chunk]:
    """Chunks of every file of a dataset (sequential; the flow plans files in parallel)."""
    chunks: list[Chunk] = []
    for path in source_files(cfg, base):
        chunks += plan_file(cfg, path, options, len(chunks))
    return chunks


def read_chunk(chunk: Chunk, cfg: DatasetConfig, options: IngestOptions) -> Iterator[RawRecord]:
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
        yield from jsonl.read(chunk, options.max_record_bytes, preview)
    elif chunk.format == "llava_json":
        keys = (cfg.conversations_field, cfg.id_field)
        yield from json_array.read(chunk, options.max_record_bytes, keys, preview)
    elif chunk.format == "parquet":
        yield from parquet.read(chunk, cfg, options)
    elif chunk.format == "webdataset":
        yield from webdataset.read(
            chunk, options.max_image_bytes, options.max_record_bytes, options.caption_prompt, preview
        )
    else:
        raise ValueError(f"unknown format {chunk.format!r}")
