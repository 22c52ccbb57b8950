"""LLaVA-style JSON sources: one JSON array of records, parsed as a stream.

The file is never loaded whole. A planning pass walks the array element by
element (``json.JSONDecoder.raw_decode`` on a sliding buffer) and records the
byte offset of every ``chunk_records``-th element, so chunks can be read in
parallel by seeking straight to their first element.

A malformed, too deeply nested or oversized element does not stop the file
and is never held whole in memory: an element that runs past the text window
is first measured on disk (:mod:`json_extent`, one block of memory) and read
only if it fits ``max_record_bytes``. A bad element becomes one quarantined
record covering its bytes (when its brackets balance) or the bytes up to the
next position where a record parses again (a ``{`` after a ``,`` that decodes
to an object carrying the conversations or id field and is followed by ``,``
or ``]``).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path

from magicvl.storage import fs
from magicvl.storage.fs import ObjectStoreOptions
from magicvl.storage.ingest.json_extent import NOT_A_VALUE, TOO_LARGE, measure
from magicvl.storage.ingest.spec import Chunk, RawRecord

_READ = 1 << 20
_WS = " \t\r\n"
_NON_WS = re.compile(r"[^ \t\r\n]")
_WS_RUN = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()
_KEEP = 1 << 20  # text kept behind the resync search point


def _utf8_len(text: str) -> int:
    """Bytes ``text`` came from (``isascii`` is a flag lookup: no copy for ASCII text)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))


class _Scanner:
    """A decoded text window over a file with byte-offset bookkeeping."""

    def __init__(self, path: Path | str, start: int, store: ObjectStoreOptions | None = None) -> None:
        self.path, self.store = path, store
        self._f = fs.open_binary(path, store)
        self._dec = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.seek(start)

    def close(self) -> None:
        self._f.close()

    def seek(self, offset: int) -> None:
        """Restart the window at byte ``offset`` (an empty window there)."""
        self._f.seek(offset)
        self._dec.reset()
        self.buf = ""
        self.pos = 0
        self.base = offset  # byte offset of buf[0]
        self._mark = (0, 0)  # (i, bytes of buf[:i]): byte_at counts on from here, not from buf[0]
        self.eof = False

    def read_since(self, offset: int) -> int:
        """Bytes read from the file since byte ``offset`` (what the window holds from there)."""
        return self._f.tell() - offset

    def fill_to(self, offset: int) -> None:
        """Read until every byte before ``offset`` is in the window (or the file ends)."""
        while self._f.tell() < offset + 4 and self.fill():  # +4: a character cut by the block is whole
            pass

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
        whole = n >= len(self.buf)
        self.base = self.byte_at(len(self.buf) if whole else n)
        self.buf = "" if whole else self.buf[n:]
        self.pos = max(0, self.pos - n)
        self._mark = (0, 0)

    def byte_at(self, i: int) -> int:
        """Byte offset of ``buf[i]``. Offsets are asked for in increasing order, so each call
        measures only the text since the last one (linear in the window, not quadratic)."""
        at, nbytes = self._mark
        if i < at:
            at, nbytes = 0, 0
        nbytes += _utf8_len(self.buf[at:i])
        self._mark = (i, nbytes)
        return self.base + nbytes

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


class _Bad:
    """Why the element at the window's position is not a record, and where it ends if known."""

    def __init__(self, why: str, end: int | None = None) -> None:
        self.why = why
        self.end = end  # byte offset just past the element (brackets balanced); None: resync


def _cut_off(e: json.JSONDecodeError, buf: str) -> bool:
    """Whether a decode failed only because the window ends inside the value."""
    return e.msg.startswith("Unterminated string") or e.pos >= len(buf) - 8


def _decode_at(sc: _Scanner, offset: int, max_bytes: int) -> tuple[object, int] | _Bad:
    """Decode the JSON value at sc.pos (byte ``offset``); else say why it is not a record.

    A value that runs past a read block of window is measured on disk first and
    read only if it ends within ``max_bytes``: an oversized one never enters the window.
    """
    measured = False
    while True:
        try:
            obj, end = _DECODER.raw_decode(sc.buf, sc.pos)
            if end < len(sc.buf) or sc.eof or measured:
                return obj, end
            # a number ending at the window's end may go on: read more, as for a cut-off value
        except RecursionError:
            size, _ = measure(sc.path, offset, max_bytes, sc.store)
            return _Bad("too_deeply_nested", offset + size if size >= 0 else None)
        except json.JSONDecodeError as e:
            if sc.eof or measured or not _cut_off(e, sc.buf):
                return _Bad("invalid_json")
        if sc.read_since(offset) <= _READ:
            sc.fill()
            continue
        size, _ = measure(sc.path, offset, max_bytes, sc.store)
        if size == TOO_LARGE:
            return _Bad("record_too_large")
        if size == NOT_A_VALUE:
            return _Bad("invalid_json")
        sc.fill_to(offset + size)
        measured = True


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


def _resync(sc: _Scanner, max_bytes: int, keys: tuple[str, ...]) -> int:
    """Index of the next plausible record start after a bad element (len(buf) if none).

    Text already searched is dropped as the search moves on, so memory stays
    bounded by ``max_bytes`` plus a read block, whatever the bad element's size.
    """
    i = sc.pos + 1
    prev = sc.buf[sc.pos]  # last non-whitespace character before buf[0] once text is dropped
    looked_to = -1  # byte offset up to which a failed measurement already looked
    while True:
        if i > _KEEP:
            prev = _last_char(sc.buf, i, prev)
            sc.drop(i)
            i = 0
        j = sc.buf.find("{", i)
        if j < 0:
            prev = _last_char(sc.buf, len(sc.buf), prev)
            sc.drop(len(sc.buf))  # nothing here starts a record: keep none of it
            i = 0
            if sc.fill():
                continue
            return 0
        if _last_char(sc.buf, j, prev) == ",":
            try:
                obj, end = _DECODER.raw_decode(sc.buf, j)
            except RecursionError:
                obj, end = None, j
            except json.JSONDecodeError as e:
                obj, end = None, j
                if not sc.eof and _cut_off(e, sc.buf):  # maybe only cut off by the window
                    at = sc.byte_at(j)
                    if sc.read_since(at) <= _READ:
                        sc.fill()
                        continue  # retry this '{' with more text
                    if at >= looked_to:  # measured on disk, read only if it fits max_bytes
                        size, scanned = measure(sc.path, at, max_bytes, sc.store)
                        looked_to = at + scanned
                        if size >= 0:
                            sc.fill_to(at + size)
                            continue
            if isinstance(obj, dict) and any(key in obj for key in keys):
                while len(sc.buf) < end + 64 and sc.fill():
                    pass
                rest = sc.buf[end : end + 64].lstrip(_WS)
                if rest[:1] in (",", "]"):
                    return j
        i = j + 1


def _skip_bad(
    sc: _Scanner, bad: _Bad, offset: int, max_bytes: int, keys: tuple[str, ...], rec: RawRecord, preview: int
) -> RawRecord:
    """Move the window past a bad element (to its end if known, else to the next record) and
    fill in ``rec``'s error, naming how many bytes were skipped."""
    rec.raw = sc.buf[sc.pos : sc.pos + preview]
    if bad.end is not None:
        skipped = bad.end - offset
        sc.seek(bad.end)
    else:
        stop = _resync(sc, max_bytes, keys)
        skipped = sc.byte_at(stop) - offset
        sc.pos = stop
    why = _WHY[bad.why].format(max_bytes=max_bytes)
    rec.error_kind, rec.error = bad.why, f"{why}; skipped {skipped} bytes to the next record"
    return rec


def _record(obj: object, length: int, rec: RawRecord, max_bytes: int) -> RawRecord:
    """``rec`` holding a decoded element of ``length`` characters, or the reason it cannot."""
    if length > max_bytes:
        rec.error_kind, rec.error = "record_too_large", f"record is longer than max_record_bytes={max_bytes}"
    elif not isinstance(obj, dict):
        rec.error_kind, rec.error = "not_an_object", f"expected a JSON object, got {type(obj).__name__}"
    else:
        rec.obj = obj
    return rec


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
            got = _decode_at(sc, offset, max_bytes)
            if isinstance(got, _Bad):
                yield offset, _skip_bad(sc, got, offset, max_bytes, keys, RawRecord(locator, ordinal), preview)
            else:
                obj, stop = got
                raw = sc.buf[sc.pos : min(stop, sc.pos + preview)]
                yield offset, _record(obj, stop - sc.pos, RawRecord(locator, ordinal, raw=raw), max_bytes)
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
