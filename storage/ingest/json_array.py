"""LLaVA-style JSON sources: one JSON array of records, parsed as a stream.

The file is never loaded whole. A planning pass walks the array element by
element (``json.JSONDecoder.raw_decode`` on a sliding buffer) and records the
byte offset of every ``chunk_records``-th element, so chunks can be read in
parallel by seeking straight to their first element.

A malformed element does not stop the file: it becomes one quarantined record
covering the bytes up to the next position where a record parses again
(a ``{`` after a ``,`` that decodes to an object carrying the conversations or
id field and is followed by ``,`` or ``]``).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path

from magicvl.storage.ingest.spec import Chunk, RawRecord

_READ = 4 << 20
_WS = " \t\r\n"
_DECODER = json.JSONDecoder()


class _Scanner:
    """A decoded text window over a file with byte-offset bookkeeping."""

    def __init__(self, path: Path, start: int) -> None:
        self._f = open(path, "rb")
        self._f.seek(start)
        self._dec = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.buf = ""
        self.pos = 0
        self.base = start  # byte offset of buf[0]
        self.eof = False

    def close(self) -> None:
        self._f.close()

    def fill(self) -> bool:
        """Read more text; False at end of file."""
        if self.eof:
            return False
        data = self._f.read(_READ)
        if not data:
            self.eof = True
            self.buf += self._dec.decode(b"", final=True)
            return False
        self.buf += self._dec.decode(data)
        return True

    def compact(self) -> None:
        if self.pos > (1 << 20):
            self.base += len(self.buf[: self.pos].encode("utf-8", "surrogateescape"))
            self.buf = self.buf[self.pos :]
            self.pos = 0

    def byte_at(self, i: int) -> int:
        return self.base + len(self.buf[:i].encode("utf-8", "surrogateescape"))

    def skip_ws(self) -> str:
        """Advance past whitespace; return the next character ('' at end of file)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""


def _decode_at(sc: _Scanner, max_bytes: int) -> tuple[object, int] | None:
    """Decode one JSON value at sc.pos, reading more as needed; None if it is malformed."""
    while True:
        try:
            return _DECODER.raw_decode(sc.buf, sc.pos)
        except json.JSONDecodeError:
            if len(sc.buf) - sc.pos > max_bytes or not sc.fill():
                return None


def _resync(sc: _Scanner, max_bytes: int, keys: tuple[str, ...]) -> int:
    """Index of the next plausible record start after a malformed element (len(buf) if none)."""
    i = sc.pos + 1
    while True:
        j = sc.buf.find("{", i)
        if j < 0:
            if sc.fill():
                continue
            return len(sc.buf)
        k = j - 1
        while k > sc.pos and sc.buf[k] in _WS:
            k -= 1
        if sc.buf[k] == ",":
            try:
                obj, end = _DECODER.raw_decode(sc.buf, j)
            except json.JSONDecodeError:
                obj, end = None, j
                if len(sc.buf) - j < max_bytes and sc.fill():
                    continue  # maybe only cut off by the window: retry this '{' with more text
            if isinstance(obj, dict) and any(key in obj for key in keys):
                while len(sc.buf) < end + 64 and sc.fill():
                    pass
                rest = sc.buf[end : end + 64].lstrip(_WS)
                if rest[:1] in (",", "]"):
                    return j
        i = j + 1


def _elements(
    path: Path, start: int, end: int, first: int, max_bytes: int, keys: tuple[str, ...], preview: int
) -> Iterator[tuple[int, RawRecord]]:
    """Yield (byte offset, record) for elements starting in [start, end)."""
    name = path.name
    sc = _Scanner(path, start)
    try:
        ordinal = first
        if start == 0:
            ch = sc.skip_ws()
            if ch != "[":
                yield (
                    0,
                    RawRecord(
                        f"{name}:byte 0",
                        0,
                        error_kind="not_a_json_array",
                        error="file is not a JSON array of records (LLaVA format)",
                        raw=sc.buf[:preview],
                    ),
                )
                return
            sc.pos += 1
        while True:
            ch = sc.skip_ws()
            if ch == ",":
                sc.pos += 1
                ch = sc.skip_ws()
            if ch in ("]", ""):
                return
            offset = sc.byte_at(sc.pos)
            if end >= 0 and offset >= end:
                return
            locator = f"{name}:record {ordinal + 1} (byte {offset})"
            got = _decode_at(sc, max_bytes)
            if got is None:
                stop = _resync(sc, max_bytes, keys)
                skipped = sc.byte_at(stop) - offset
                yield (
                    offset,
                    RawRecord(
                        locator,
                        ordinal,
                        error_kind="invalid_json",
                        error=f"malformed JSON element; skipped {skipped} bytes to the next record",
                        raw=sc.buf[sc.pos : sc.pos + preview],
                    ),
                )
                sc.pos = stop
            else:
                obj, stop = got
                raw = sc.buf[sc.pos : min(stop, sc.pos + preview)]
                if stop - sc.pos > max_bytes:
                    rec = RawRecord(
                        locator,
                        ordinal,
                        error_kind="record_too_large",
                        error=f"record is longer than max_record_bytes={max_bytes}",
                        raw=raw,
                    )
                elif not isinstance(obj, dict):
                    rec = RawRecord(
                        locator,
                        ordinal,
                        error_kind="not_an_object",
                        error=f"expected a JSON object, got {type(obj).__name__}",
                        raw=raw,
                    )
                else:
                    rec = RawRecord(locator, ordinal, obj=obj, raw=raw)
                yield offset, rec
                sc.pos = stop
            ordinal += 1
            sc.compact()
    finally:
        sc.close()


def plan(
    path: Path,
    dataset: str,
    fingerprint: str,
    chunk_records: int,
    first_index: int,
    max_bytes: int,
    keys: tuple[str, ...],
) -> list[Chunk]:
    """Walk the array once and cut it into chunks of ``chunk_records`` elements."""
    marks: list[tuple[int, int]] = []
    for n, (offset, _rec) in enumerate(_elements(path, 0, -1, 0, max_bytes, keys, 0)):
        if n % chunk_records == 0:
            marks.append((offset, n))
    if not marks:
        marks = [(0, 0)]
    size = path.stat().st_size
    chunks = []
    for i, (off, n) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else size + 1
        start = 0 if i == 0 else off  # the first chunk parses the opening '['
        chunks.append(Chunk(dataset, "llava_json", str(path), first_index + i, start, end, n, fingerprint))
    return chunks


def read(chunk: Chunk, max_bytes: int, keys: tuple[str, ...], preview: int) -> Iterator[RawRecord]:
    """Yield the records of one chunk."""
    for _offset, rec in _elements(
        Path(chunk.path), chunk.start, chunk.end, chunk.first_record, max_bytes, keys, preview
    ):
        yield rec
