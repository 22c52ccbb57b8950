"""Parquet page sizes, read from the page headers before any data.

Arrow reads a column chunk page by page, and a page is the least it can read:
a 50 MB value makes a page of at least 50 MB, which Arrow holds about three
times over (compressed, decompressed, decoded). Before a row group is read, the
size of every page of every column that could be large is taken from its
header (a few hundred bytes of Thrift each, at the offsets the footer gives),
so a row group with a page over its budget is refused before it costs memory.
Column chunks whose total size fits the budget are not walked at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow.parquet as pq

from magicvl.storage import fs
from magicvl.storage.fs import ObjectStoreOptions

_DATA, _DICTIONARY, _DATA_V2 = 0, 2, 3
_HEADER_READ = 1 << 10
_HEADER_MAX = 1 << 24  # a header longer than this is not believed


@dataclass(frozen=True)
class Page:
    """One page of a column chunk, as its header describes it."""

    kind: str  # "data", "dictionary" or "index"
    size: int  # bytes Arrow holds to read it: max(compressed, uncompressed)
    rows: tuple[int, int] | None  # first and last row (within the row group) of a data page, if known


@dataclass(frozen=True)
class Oversized:
    """A column chunk with a page over its read budget."""

    column: str  # dotted path of the leaf column
    page: Page | None  # None: the page headers could not be read (the chunk's total size is used)
    size: int
    budget: int
    limit: str  # the recipe field that sets the budget


class _Short(Exception):
    """The header runs past the bytes read so far."""


class _Compact:
    """Just enough of Thrift's compact protocol to read a PageHeader (binaries are skipped)."""

    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            raise _Short
        self.pos += 1
        return self.buf[self.pos - 1]

    def varint(self) -> int:
        out, shift = 0, 0
        while True:
            b = self.byte()
            out |= (b & 0x7F) << shift
            if b < 0x80:
                return out
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def skip(self, n: int) -> None:
        if self.pos + n > len(self.buf):
            raise _Short
        self.pos += n

    def struct(self) -> dict[int, object]:
        fields: dict[int, object] = {}
        last = 0
        while True:
            head = self.byte()
            if head == 0:
                return fields
            delta, kind = head >> 4, head & 0x0F
            last = last + delta if delta else self.zigzag()
            fields[last] = self.value(kind)

    def value(self, kind: int) -> object:
        if kind in (1, 2):  # booleans live in the field header
            return kind == 1
        if kind == 3:
            return self.byte()
        if kind in (4, 5, 6):
            return self.zigzag()
        if kind == 7:
            return self.skip(8)
        if kind == 8:
            return self.skip(self.varint())
        if kind in (9, 10):
            head = self.byte()
            size, elem = head >> 4, head & 0x0F
            size = self.varint() if size == 15 else size
            for _ in range(size):
                self.byte() if elem in (1, 2) else self.value(elem)
            return None
        if kind == 11:
            size = self.varint()
            kinds = self.byte() if size else 0
            for _ in range(size):
                self.value(kinds >> 4)
                self.value(kinds & 0x0F)
            return None
        if kind == 12:
            return self.struct()
        raise ValueError(f"unknown Thrift compact type {kind}")


def _header(f: BinaryIO, offset: int) -> tuple[dict[int, object], int]:
    """The PageHeader at ``offset`` and its length in bytes."""
    want = _HEADER_READ
    while True:
        f.seek(offset)
        c = _Compact(f.read(want))
        try:
            return c.struct(), c.pos
        except _Short:
            if want >= _HEADER_MAX or len(c.buf) < want:
                raise ValueError(
                    f"page header at byte {offset} is cut off or longer than {_HEADER_MAX} bytes"
                ) from None
            want *= 4


def column_pages(f: BinaryIO, column: pq.ColumnChunkMetaData, flat: bool) -> list[Page]:
    """Every page of a column chunk, walked header to header (no page data is read).

    Row ranges are known for data pages of non-repeated columns (a value is a row).
    """
    start = column.data_page_offset
    if column.has_dictionary_page and column.dictionary_page_offset is not None:
        start = min(start, column.dictionary_page_offset)
    end = start + column.total_compressed_size
    pages: list[Page] = []
    pos, row = start, 0
    while pos < end:
        h, length = _header(f, pos)
        kind, uncompressed, compressed = h.get(1), h.get(2), h.get(3)
        if not all(isinstance(x, int) and x >= 0 for x in (kind, uncompressed, compressed)):
            raise ValueError(f"page header at byte {pos} has no type or sizes")
        rows = None
        if kind in (_DATA, _DATA_V2):
            sub = h.get(5 if kind == _DATA else 8)
            n = sub.get(3 if kind == _DATA_V2 else 1) if isinstance(sub, dict) else None
            if isinstance(n, int) and row >= 0 and (flat or kind == _DATA_V2):
                rows, row = (row, row + n - 1), row + n
            else:
                row = -1  # rows of later pages are unknown
        name = {_DATA: "data", _DATA_V2: "data", _DICTIONARY: "dictionary"}.get(kind, "index")
        pages.append(Page(name, max(uncompressed, compressed), rows))
        pos += length + compressed
    return pages


def oversized_columns(
    path: str,
    pf: pq.ParquetFile,
    row_group: int,
    budget_of: Callable[[int], tuple[int, str]],
    store: ObjectStoreOptions | None = None,
) -> list[Oversized]:
    """Columns of a row group holding a page larger than ``budget_of(leaf index)`` (budget, field)."""
    md = pf.metadata.row_group(row_group)
    out: list[Oversized] = []
    with fs.open_binary(path, store) as f:
        for i in range(md.num_columns):
            cc = md.column(i)
            budget, limit = budget_of(i)
            if max(cc.total_uncompressed_size, cc.total_compressed_size) <= budget:
                continue
            try:
                pages = column_pages(f, cc, pf.schema.column(i).max_repetition_level == 0)
            except ValueError:
                out.append(Oversized(cc.path_in_schema, None, cc.total_uncompressed_size, budget, limit))
                continue
            worst = max(pages, key=lambda p: p.size, default=None)
            if worst is not None and worst.size > budget:
                out.append(Oversized(cc.path_in_schema, worst, worst.size, budget, limit))
    return out
