"""JSON Lines sources: streamed line by line, split into line-aligned byte ranges."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from magicvl.storage import fs
from magicvl.storage.fs import ObjectStoreOptions
from magicvl.storage.ingest.spec import Chunk, RawRecord

_BLOCK = 8 << 20


def _line_starts(path: Path | str, every: int, store: ObjectStoreOptions | None) -> Iterator[tuple[int, int]]:
    """Yield (byte offset, line index) of lines 0, every, 2*every, ... (vectorised newline scan)."""
    yield 0, 0
    next_mark = every
    seen = 0  # newlines before the current block
    offset = 0
    with fs.open_binary(path, store) as f:
        while block := f.read(_BLOCK):
            newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
            while next_mark <= seen + len(newlines):
                # line `next_mark` starts right after the `next_mark`-th newline of the file
                yield offset + int(newlines[next_mark - seen - 1]) + 1, next_mark
                next_mark += every
            seen += len(newlines)
            offset += len(block)


def plan(
    path: Path | str,
    dataset: str,
    fingerprint: str,
    chunk_records: int,
    first_index: int,
    store: ObjectStoreOptions | None = None,
) -> list[Chunk]:
    """Cut ``path`` into chunks of ``chunk_records`` lines (one pass over the bytes, no parsing)."""
    size = fs.size(path, store)
    starts = [(o, ln) for o, ln in _line_starts(path, chunk_records, store) if o < size] or [(0, 0)]
    chunks = []
    for i, (off, ln) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else size
        chunks.append(Chunk(dataset, "jsonl", str(path), first_index + i, off, end, ln, fingerprint))
    return chunks


def read(
    chunk: Chunk, max_record_bytes: int, preview: int, store: ObjectStoreOptions | None = None
) -> Iterator[RawRecord]:
    """Yield the chunk's records; blank lines are skipped, bad lines become error records."""
    name = fs.name(chunk.path)
    with fs.open_binary(chunk.path, store) as f:
        f.seek(chunk.start)
        line_no = chunk.first_record
        pos = chunk.start
        while pos < chunk.end:
            raw = f.readline(max_record_bytes + 1)
            if not raw:
                break
            too_long = len(raw) > max_record_bytes and not raw.endswith(b"\n")
            if too_long:  # consume the rest of the line without holding it
                rest = len(raw)
                while (more := f.readline(1 << 20)) and not more.endswith(b"\n"):
                    rest += len(more)
                rest += len(more)
                pos += rest
            else:
                pos += len(raw)
            locator = f"{name}:line {line_no + 1}"
            ordinal = line_no
            line_no += 1
            if too_long:
                yield RawRecord(
                    locator,
                    ordinal,
                    error_kind="record_too_large",
                    error=f"line is longer than max_record_bytes={max_record_bytes}",
                    raw=repr(raw[:preview]),
                )
                continue
            if not raw.strip():
                continue
            yield parse_line(raw, locator, ordinal, preview)


def parse_line(raw: bytes, locator: str, ordinal: int, preview: int) -> RawRecord:
    """Decode one JSON line strictly (UTF-8, an object)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return RawRecord(
            locator,
            ordinal,
            error_kind="invalid_utf8",
            error=f"line is not valid UTF-8 ({e.reason} at byte {e.start})",
            raw=repr(raw[:preview]),
        )
    try:
        obj = json.loads(text)
    except RecursionError:
        return RawRecord(
            locator,
            ordinal,
            error_kind="too_deeply_nested",
            error="JSON nests deeper than the parser allows",
            raw=text[:preview],
        )
    except json.JSONDecodeError as e:
        return RawRecord(
            locator,
            ordinal,
            error_kind="invalid_json",
            error=f"invalid JSON: {e.msg} at column {e.colno}",
            raw=text[:preview],
        )
    if not isinstance(obj, dict):
        return RawRecord(
            locator,
            ordinal,
            error_kind="not_an_object",
            error=f"expected a JSON object, got {type(obj).__name__}",
            raw=text[:preview],
        )
    return RawRecord(locator, ordinal, obj=obj, raw=text[:preview])
