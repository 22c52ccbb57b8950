"""Embedded image bytes of a Parquet row group, read page by page without Arrow.

Arrow holds a page of embedded images about three to five times over (compressed,
decompressed, decoded, the batch, a dictionary's copy). This reader holds a page
at most twice (compressed, then decompressed; the compressed bytes are dropped
first) and hands out each value as a ``memoryview`` of the decompressed page,
never a copy (a value under half its page is copied instead, so that a small
value kept for writing never keeps a large page alive: what is kept is at most
twice what it holds). A page is refused from its header, unread:

* a data page of one value whose uncompressed size exceeds ``max_image_bytes``
  plus the few bytes of its length prefix and levels: that row is
  ``image_too_large``;
* any other page (a dictionary page, a page of several values) larger than
  ``max_parquet_page_bytes``: the rows whose value is in it are
  ``image_page_too_large``.

Values read but over ``max_image_bytes`` are refused by their length
(``image_too_large``) before anything is copied. So one embedded image costs at
most about 2 x (max_image_bytes + 64 bytes) when its page holds only it, and a
page of several values at most 2 x max_parquet_page_bytes.

Supported: a flat BYTE_ARRAY leaf (optional or required, inside optional
structs), data pages v1 and v2, PLAIN and RLE_DICTIONARY/PLAIN_DICTIONARY values,
RLE definition levels, codecs none, snappy, gzip, zstd, brotli and lz4_raw.
Anything else raises :class:`Unsupported` before a value is read.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from magicvl.storage import fs
from magicvl.storage.fs import ObjectStoreOptions
from magicvl.storage.ingest.parquet_pages import _header
from magicvl.storage.ingest.spec import IngestOptions

_DATA, _INDEX, _DICTIONARY, _DATA_V2 = 0, 1, 2, 3
_PLAIN, _PLAIN_DICT, _RLE, _RLE_DICT = 0, 2, 3, 8
_SLACK = 64  # length prefix + levels of a one-value page, at most
_CODECS = {
    "UNCOMPRESSED": None,
    "SNAPPY": "snappy",
    "GZIP": "gzip",
    "ZSTD": "zstd",
    "BROTLI": "brotli",
    "LZ4_RAW": "lz4_raw",
}


class Unsupported(ValueError):
    """A column chunk this reader does not decode (Arrow reads it, under the old page budget)."""


@dataclass(frozen=True)
class Refused:
    """A row's image value that is not handed out, and why."""

    kind: str  # image_too_large or image_page_too_large
    error: str
    size: int  # the value's length, or the size of the unread page


@dataclass(frozen=True)
class _Page:
    kind: int
    body: int  # file offset of the page data (after the header)
    uncompressed: int
    compressed: int
    header: dict


Value = memoryview | bytes | Refused | None  # one per row; None: a null image value


class ImageColumn:
    """The embedded image leaf of one row group; ``values(f)`` yields one entry per row."""

    def __init__(
        self,
        f: BinaryIO,
        cc: pq.ColumnChunkMetaData,
        leaf: pq.ColumnSchema,
        max_image_bytes: int,
        max_page_bytes: int,
        where: str,
    ) -> None:
        if leaf.physical_type != "BYTE_ARRAY" or leaf.max_repetition_level != 0:
            raise Unsupported(f"{leaf.path} is {leaf.physical_type}, repetition {leaf.max_repetition_level}")
        if cc.compression not in _CODECS:
            raise Unsupported(f"codec {cc.compression}")
        self.codec = pa.Codec(_CODECS[cc.compression]) if _CODECS[cc.compression] else None
        self.max_def = leaf.max_definition_level
        self.max_image, self.max_page, self.where = max_image_bytes, max_page_bytes, where
        self.pages = _walk(f, cc)
        for p in self.pages:
            _check_page(p)
        rows = sum(_values(p) for p in self.pages if p.kind in (_DATA, _DATA_V2))
        if rows != cc.num_values or any(_values(p) < 0 for p in self.pages):
            raise ValueError(f"{where}: page headers count {rows} values, the column chunk {cc.num_values}")

    def values(self, f: BinaryIO) -> Iterator[Value]:
        """Every row's value, in row order (pages read one at a time, the previous one released)."""
        dictionary: list[Value] | Refused | None = None
        for p in self.pages:
            if p.kind == _DICTIONARY:
                dictionary = self._dictionary(f, p)
            elif p.kind in (_DATA, _DATA_V2):
                yield from self._data(f, p, dictionary)

    def _too_big(self, p: _Page, n: int) -> Refused | None:
        size = max(p.uncompressed, p.compressed)
        if n == 1 and p.kind != _DICTIONARY and size > self.max_image + _SLACK:
            return Refused(
                "image_too_large",
                f"embedded image is over {size - _SLACK} bytes (a page of {size} bytes holding one value; "
                f"max {self.max_image}); not read",
                size,
            )
        if size > self.max_page and (n != 1 or p.kind == _DICTIONARY):  # one value: held to max_image
            what = "dictionary page" if p.kind == _DICTIONARY else f"page of {n} values"
            return Refused(
                "image_page_too_large",
                f"{self.where}: embedded image bytes are in a {what} of {size} bytes, over "
                f"ingest.max_parquet_page_bytes={self.max_page}; not read. Rewrite the file with smaller "
                "pages (pyarrow.parquet.write_table(..., data_page_size=..., use_dictionary=False)) "
                "or raise ingest.max_parquet_page_bytes",
                size,
            )
        return None

    def _read(self, f: BinaryIO, p: _Page, skip: int = 0) -> tuple[bytes, memoryview]:
        """(the first ``skip`` bytes, stored uncompressed: v2 levels; the rest of the page, decompressed)."""
        f.seek(p.body)
        raw = f.read(p.compressed)
        if len(raw) != p.compressed:
            raise ValueError(f"{self.where}: page at byte {p.body} is cut off")
        compressed = p.header.get(8, {}).get(7, True) if p.kind == _DATA_V2 else True
        head = raw[:skip]
        if self.codec is None or not compressed:
            return head, memoryview(raw)[skip:]
        out = self.codec.decompress(memoryview(raw)[skip:], decompressed_size=p.uncompressed - skip)
        del raw  # the compressed page goes before the values are handed out
        return head, memoryview(out).cast("B")  # Arrow exports signed bytes

    def _dictionary(self, f: BinaryIO, p: _Page) -> list[Value] | Refused:
        n = p.header[7].get(1, 0)
        refused = self._too_big(p, n)
        if refused is not None:
            return refused
        data = self._read(f, p)[1]
        return [self._checked(v, len(data)) for v in _plain(data, 0, n, self.where)[0]]

    def _checked(self, v: memoryview, page: int) -> Value:
        """The value, refused if over max_image_bytes; a view only if it is at least half its page
        (a kept small value must not keep a large page alive), else a copy."""
        if len(v) > self.max_image:
            return Refused("image_too_large", f"embedded image is {len(v)} bytes (max {self.max_image})", len(v))
        return v if 2 * len(v) >= page else bytes(v)

    def _data(self, f: BinaryIO, p: _Page, dictionary: list[Value] | Refused | None) -> Iterator[Value]:
        h = p.header[5] if p.kind == _DATA else p.header[8]
        n = h[1]
        refused = self._too_big(p, n)
        if refused is not None:
            yield from itertools.repeat(refused, n)
            return
        if p.kind == _DATA:
            data = self._read(f, p)[1]
            levels, pos = self._levels_v1(data, n, h.get(3, _RLE))
        else:
            head, data = self._read(f, p, h.get(5, 0) + h.get(6, 0))
            levels = _hybrid(memoryview(head)[h.get(6, 0) :], self.max_def.bit_length(), n) if self.max_def else None
            pos = 0
        present = n if levels is None else int(np.count_nonzero(levels == self.max_def))
        values = self._decode(data, pos, present, h[2] if p.kind == _DATA else h[4], dictionary)
        del data
        it = iter(values)
        for i in range(n):
            yield next(it) if levels is None or levels[i] == self.max_def else None

    def _levels_v1(self, data: memoryview, n: int, encoding: int) -> tuple[np.ndarray | None, int]:
        if not self.max_def:
            return None, 0
        if encoding != _RLE:
            raise ValueError(f"{self.where}: definition levels in encoding {encoding} (only RLE is read)")
        length = int.from_bytes(data[:4], "little")
        return _hybrid(data[4 : 4 + length], self.max_def.bit_length(), n), 4 + length

    def _decode(
        self, data: memoryview, pos: int, n: int, encoding: int, dictionary: list[Value] | Refused | None
    ) -> list[Value]:
        if encoding == _PLAIN:
            return [self._checked(v, len(data)) for v in _plain(data, pos, n, self.where)[0]]
        if dictionary is None:
            raise ValueError(f"{self.where}: dictionary-encoded page without a dictionary page")
        if isinstance(dictionary, Refused):
            return [dictionary] * n
        width = data[pos] if n else 0
        idx = _hybrid(data[pos + 1 :], width, n)
        if n and (idx.min() < 0 or idx.max() >= len(dictionary)):
            raise ValueError(f"{self.where}: dictionary index out of range")
        return [dictionary[i] for i in idx.tolist()]


def image_leaf(pf: pq.ParquetFile, image_field: str) -> int | None:
    """Leaf index of the embedded image bytes (``<image_field>.bytes``, binary), if the file has one."""
    for i in range(len(pf.schema)):
        col = pf.schema.column(i)
        if col.path == f"{image_field}.bytes" and col.physical_type == "BYTE_ARRAY":
            return i if col.logical_type.type != "STRING" else None
    return None


def image_column(
    pf: pq.ParquetFile,
    rg: int,
    leaf: int,
    path: str,
    store: ObjectStoreOptions | None,
    options: IngestOptions,
    where: str,
) -> ImageColumn | None:
    """The page reader of the image leaf, or None where it cannot decode the column chunk."""
    try:
        with fs.open_binary(path, store) as f:
            cc, schema = pf.metadata.row_group(rg).column(leaf), pf.schema.column(leaf)
            return ImageColumn(f, cc, schema, options.max_image_bytes, options.max_parquet_page_bytes, where)
    except Unsupported:
        return None


def _walk(f: BinaryIO, cc: pq.ColumnChunkMetaData) -> list[_Page]:
    start = cc.data_page_offset
    if cc.has_dictionary_page and cc.dictionary_page_offset is not None:
        start = min(start, cc.dictionary_page_offset)
    end, pos, pages = start + cc.total_compressed_size, start, []
    while pos < end:
        h, length = _header(f, pos)
        kind, uncompressed, compressed = h.get(1), h.get(2), h.get(3)
        if not all(isinstance(x, int) and x >= 0 for x in (kind, uncompressed, compressed)):
            raise Unsupported(f"page header at byte {pos} has no type or sizes")
        pages.append(_Page(kind, pos + length, uncompressed, compressed, h))
        pos += length + compressed
    return pages


def _values(p: _Page) -> int:
    """Values a page holds, from its header."""
    return p.header[{_DATA: 5, _DICTIONARY: 7, _DATA_V2: 8}[p.kind]][1] if p.kind != _INDEX else 0


def _check_page(p: _Page) -> None:
    """Unsupported unless this reader can decode the page (checked for every page before reading)."""
    if p.kind == _INDEX:
        return
    sub = {_DATA: 5, _DICTIONARY: 7, _DATA_V2: 8}.get(p.kind)
    h = p.header.get(sub) if sub else None
    if not isinstance(h, dict) or not isinstance(h.get(1), int):
        raise Unsupported(f"page of type {p.kind} without its header")
    encoding = h.get({_DATA: 2, _DICTIONARY: 2, _DATA_V2: 4}[p.kind])
    allowed = (_PLAIN, _PLAIN_DICT) if p.kind == _DICTIONARY else (_PLAIN, _PLAIN_DICT, _RLE_DICT)
    if encoding not in allowed:
        raise Unsupported(f"values in encoding {encoding}")
    if p.kind == _DATA and h.get(3, _RLE) != _RLE:
        raise Unsupported(f"definition levels in encoding {h.get(3)}")


def _plain(data: memoryview, pos: int, n: int, where: str) -> tuple[list[memoryview], int]:
    """``n`` PLAIN BYTE_ARRAY values from ``pos``: views of ``data``, not copies."""
    out = []
    for _ in range(n):
        if pos + 4 > len(data):
            raise ValueError(f"{where}: a value runs past the end of its page")
        size = int.from_bytes(data[pos : pos + 4], "little")
        pos += 4
        if pos + size > len(data):
            raise ValueError(f"{where}: a value runs past the end of its page")
        out.append(data[pos : pos + size])
        pos += size
    return out, pos


def _uleb(data: memoryview, pos: int) -> tuple[int, int]:
    out, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ValueError("RLE run header runs past the end of its data")
        b = data[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if b < 0x80:
            return out, pos
        shift += 7


def _hybrid(data: memoryview, width: int, n: int) -> np.ndarray:
    """``n`` values of Parquet's RLE / bit-packed hybrid encoding at ``width`` bits, [n] int64."""
    out = np.zeros(n, np.int64)
    i, pos, nbytes = 0, 0, (width + 7) // 8
    weights = 1 << np.arange(width, dtype=np.int64)
    if width > 32:
        raise ValueError(f"RLE bit width {width} is over 32")
    while i < n:
        header, pos = _uleb(data, pos)
        if header & 1:  # bit-packed: groups of 8 values
            size = (header >> 1) * width
            if pos + size > len(data) or header >> 1 == 0:
                raise ValueError("bit-packed run runs past the end of its data")
            bits = np.unpackbits(np.frombuffer(data[pos : pos + size], np.uint8), bitorder="little")
            vals = bits.reshape(-1, width) @ weights if width else np.zeros((header >> 1) * 8, np.int64)
            take = min(len(vals), n - i)
            out[i : i + take] = vals[:take]
            pos += size
        else:  # a run of one value
            if header >> 1 == 0 or pos + nbytes > len(data):
                raise ValueError("RLE run is empty or runs past the end of its data")
            take = min(header >> 1, n - i)
            out[i : i + take] = int.from_bytes(data[pos : pos + nbytes], "little")
            pos += nbytes
        i += take
    return out
