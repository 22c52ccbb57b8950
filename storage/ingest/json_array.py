"""LLaVA-style JSON sources: one JSON array of records, parsed as a stream.

The file is never loaded whole. A planning pass walks the array element by
element (``json.JSONDecoder.raw_decode`` on a sliding buffer) and records the
byte offset of every ``chunk_records``-th element, so chunks can be read in
parallel by seeking straight to their first element.

A malformed, too deeply nested or oversized element does not stop the file
and is never held whole in memory: it becomes one quarantined record
covering the bytes up to the next position where a record parses again
(a ``{`` after a ``,`` that decodes to an object carrying the conversations or
id field and is followed by ``,`` or ``]``).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path

from magicvl.storage import fs
from magicvl.storage.fs import ObjectStoreOptions
from magicvl.storage.ingest.spec import Chunk, RawRecord

_READ = 1 << 20
_WS = " \t\r\n"
_NON_WS = re.compile(r"[^ \t\r\n]")
_WS_RUN = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()
_KEEP = 1 << 20  # text kept behind the resync search point


class _Scanner:
    """A decoded text window over a file with byte-offset bookkeeping."""

    def __init__(self, path: Path | str, start: int, store: ObjectStoreOptions | None = None) -> None:
        self._f = fs.open_binary(path, store)
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
            self.drop(self.pos)

    def drop(self, n: int) -> None:
        """Forget the first ``n`` characters of the window (byte offsets stay right)."""
        self.base += len(self.buf[:n].encode("utf-8", "surrogateescape"))
        self.buf = self.buf[n:]
        self.pos = max(0, self.pos - n)

    def byte_at(self, i: int) -> int:
        return self.base + len(self.buf[:i].encode("utf-8", "surrogateescape"))

    def skip_ws(self) -> str:
        """Advance past whitespace; return the next character ('' at end of file)."""
        while True:
            self.pos = _WS_RUN.match(self.buf, self.pos).end()  # faster than searching for a non-blank
            m = _NON_WS.search(self.buf, self.pos, self.pos + 1)
            if m is not None:
                self.pos = m.start()
                return self.buf[self.pos]
            self.pos = len(self.buf)
            self.drop(self.pos)  # a run of whitespace never accumulates
            if not self.fill():
                return ""


def _decode_at(sc: _Scanner, max_bytes: int) -> tuple[object, int] | str:
    """Decode one JSON value at sc.pos, reading more as needed; else why it is not a record."""
    while True:
        try:
            return _DECODER.raw_decode(sc.buf, sc.pos)
        except RecursionError:
            return "too_deeply_nested"
        except json.JSONDecodeError:
            if len(sc.buf) - sc.pos > max_bytes:
                return "record_too_large"
            if not sc.fill():
                return "invalid_json"


_WHY = {
    "too_deeply_nested": "JSON element nests deeper than the parser allows",
    "record_too_large": "JSON element does not end within max_record_bytes={max_bytes}",
    "invalid_json": "malformed JSON element",
}


def _last_char(buf: str, end: int, default: str) -> str:
    """The last non-whitespace character of buf[:end] (``default`` if there is none)."""
    k = end - 1
    while k >= 0 and buf[k] in _WS:
        k -= 1
    return buf[k] if k >= 0 else default


_TOKEN = re.compile(r'["\[\]{}]')
_STRING_END = re.compile(r'["\\]')


def _skip_value(sc: _Scanner, max_bytes: int) -> int | None:
    """Index just past the bracket-balanced value at sc.pos (strings respected), found without
    recursion, or None if it does not close within ``max_bytes`` or is not followed by ``,``/``]``."""
    depth, i, in_string = 0, sc.pos, False
    while True:
        if i - sc.pos > max_bytes:
            return None
        m = (_STRING_END if in_string else _TOKEN).search(sc.buf, i)
        if m is None or (m.group() == "\\" and m.end() >= len(sc.buf)):
            i = len(sc.buf) if m is None else m.start()
            if not sc.fill():
                return None
            continue
        c, i = m.group(), m.end()
        if c == "\\":
            i += 1  # the escaped character
        elif c == '"':
            in_string = not in_string
        elif c in "[{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                break
    while len(sc.buf) < i + 64 and sc.fill():
        pass
    return i if sc.buf[i : i + 64].lstrip(_WS)[:1] in (",", "]") else None


def _resync(sc: _Scanner, max_bytes: int, keys: tuple[str, ...]) -> int:
    """Index of the next plausible record start after a bad element (len(buf) if none).

    Text already searched is dropped as the search moves on, so memory stays
    bounded by ``max_bytes`` plus a read block, whatever the bad element's size.
    """
    i = sc.pos + 1
    prev = sc.buf[sc.pos]  # last non-whitespace character before buf[0] once text is dropped
    while True:
        if i > _KEEP:
            prev = _last_char(sc.buf, i, prev)
            sc.drop(i)
            i = 0
        j = sc.buf.find("{", i)
        if j < 0:
            i = len(sc.buf)
            if sc.fill():
                continue
            return len(sc.buf)
        if _last_char(sc.buf, j, prev) == ",":
            try:
                obj, end = _DECODER.raw_decode(sc.buf, j)
            except RecursionError:
                obj, end = None, j
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
    path: Path | str,
    start: int,
    end: int,
    first: int,
    max_bytes: int,
    keys: tuple[str, ...],
    preview: int,
    store: ObjectStoreOptions | None = None,
) -> Iterator[tuple[int, RawRecord]]:
    """Yield (byte offset, record) for elements starting in [start, end)."""
    name = fs.name(path)
    sc = _Scanner(path, start, store)
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
            if isinstance(got, str):
                raw = sc.buf[sc.pos : sc.pos + preview]
                stop = _skip_value(sc, max_bytes) if got == "too_deeply_nested" else None
                stop = _resync(sc, max_bytes, keys) if stop is None else stop
                skipped = sc.byte_at(stop) - offset
                why = _WHY[got].format(max_bytes=max_bytes)
                yield (
                    offset,
                    RawRecord(
                        locator,
                        ordinal,
                        error_kind=got,
                        error=f"{why}; skipped {skipped} bytes to the next record",
                        raw=raw,
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
    path: Path | str,
    dataset: str,
    fingerprint: str,
    chunk_records: int,
    first_index: int,
    max_bytes: int,
    keys: tuple[str, ...],
    store: ObjectStoreOptions | None = None,
) -> list[Chunk]:
    """Walk the array once and cut it into chunks of ``chunk_records`` elements."""
    marks: list[tuple[int, int]] = []
    for n, (offset, _rec) in enumerate(_elements(path, 0, -1, 0, max_bytes, keys, 0, store)):
        if n % chunk_records == 0:
            marks.append((offset, n))
    if not marks:
        marks = [(0, 0)]
    size = fs.size(path, store)
    chunks = []
    for i, (off, n) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else size + 1
        start = 0 if i == 0 else off  # the first chunk parses the opening '['
        chunks.append(Chunk(dataset, "llava_json", str(path), first_index + i, start, end, n, fingerprint))
    return chunks


def read(
    chunk: Chunk, max_bytes: int, keys: tuple[str, ...], preview: int, store: ObjectStoreOptions | None = None
) -> Iterator[RawRecord]:
    """Yield the records of one chunk."""
    path = chunk.path if fs.is_uri(chunk.path) else Path(chunk.path)
    for _offset, rec in _elements(path, chunk.start, chunk.end, chunk.first_record, max_bytes, keys, preview, store):
        yield rec
