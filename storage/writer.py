"""Atomic Parquet shard writer with rotation by rows and bytes.

Every shard is written under a hidden temporary name in its final folder and
renamed into place only when the writer is closed without error, so a shard
exists whole or not at all. On object storage (an ``S3Path`` folder) a shard is
spooled locally and put at its final key in one ``PutObject`` (atomic) when it
is finished; an aborted writer deletes the shards it had put. The SHA-256 of each file is computed while it is
written (no second read), and every data page carries a CRC (``write_page_checksum``)
that a verifying read checks. A write that runs out of space raises
``DiskFullError`` (naming the path, device and mount point) and every
temporary is removed: aborting needs no free space.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from magicvl.storage.diskfull import translate
from magicvl.storage.outfs import S3Path, as_path

# Already-compressed payloads: compressing them again costs CPU for nothing.
_UNCOMPRESSED_COLUMNS = ("image.bytes",)


@dataclass(frozen=True)
class ShardInfo:
    """One finished shard: where it is, how many rows, its size and checksum."""

    path: str
    rows: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def stem(self) -> str:
        return as_path(self.path).name.removesuffix(".parquet")


class _HashingSink:
    """A write-only file object that hashes what passes through it; no-space errors name the path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._f = open(path, "wb")
        except OSError as e:
            raise translate(e, path) from None
        self._h = hashlib.sha256()
        self._n = 0
        self.closed = False

    def write(self, data: Any) -> int:
        b = data if isinstance(data, bytes) else bytes(data)
        self._h.update(b)
        self._n += len(b)
        try:
            return self._f.write(b)
        except OSError as e:
            raise translate(e, self.path) from None

    def tell(self) -> int:
        return self._n

    def flush(self) -> None:
        try:
            self._f.flush()
        except OSError as e:
            raise translate(e, self.path) from None

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if not self.closed:
            try:
                self._f.flush()
                os.fsync(self._f.fileno())
            except OSError as e:
                self.discard()
                raise translate(e, self.path) from None
            self._f.close()
            self.closed = True

    def discard(self) -> None:
        """Close without caring whether buffered bytes reach the disk, and remove the file."""
        try:
            self._f.close()  # may fail to flush (disk full): the descriptor is closed anyway
        except OSError:
            pass
        self.closed = True
        self.path.unlink(missing_ok=True)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


class _ObjectSink(_HashingSink):
    """A ``_HashingSink`` for an object key: bytes are spooled (memory, then a local temporary
    file) and put in one ``PutObject`` at ``close``; ``discard`` puts nothing."""

    def __init__(self, path: S3Path) -> None:
        self.path = path
        self._f = tempfile.SpooledTemporaryFile(max_size=64 << 20)
        self._h = hashlib.sha256()
        self._n = 0
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            try:
                self._f.seek(0)
                self.path.write_bytes(self._f)
            finally:
                self._f.close()
                self.closed = True

    def discard(self) -> None:
        self._f.close()
        self.closed = True


def _sink(path: Path | S3Path) -> _HashingSink:
    return _ObjectSink(path) if isinstance(path, S3Path) else _HashingSink(path)


def _temporary(final: Path | S3Path) -> Path | S3Path:
    """Where a file is written before it is final: a hidden sibling locally, the final key itself on S3."""
    if isinstance(final, S3Path):
        return final
    return final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _compression(schema: pa.Schema, codec: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for field in schema:
        if pa.types.is_struct(field.type):
            for child in field.type:
                path = f"{field.name}.{child.name}"
                out[path] = "NONE" if path in _UNCOMPRESSED_COLUMNS else codec
        elif pa.types.is_list(field.type) and pa.types.is_struct(field.type.value_type):
            for child in field.type.value_type:
                out[f"{field.name}.list.element.{child.name}"] = codec
        else:
            out[field.name] = codec
    return out


class ShardWriter:
    """Writes tables into ``<directory>/<stem>-<n:03d>.parquet`` shards.

    A new shard starts when the current one holds ``max_rows`` rows or its file
    has reached ``max_bytes`` (checked after each written row group, so a shard
    may exceed it by one write). Use as a context manager: on an exception the
    temporary files are removed and nothing appears.
    """

    def __init__(
        self,
        directory: str | Path,
        stem: str,
        schema: pa.Schema,
        max_rows: int = 10_000,
        max_bytes: int = 512 << 20,
        compression: str = "zstd",
        metadata: dict[str, str] | None = None,
    ) -> None:
        if max_rows < 1 or max_bytes < 1:
            raise ValueError("max_rows and max_bytes must be positive")
        self.directory = as_path(directory)
        self.stem = stem
        self.schema = schema.with_metadata({**(schema.metadata or {}), **_encode(metadata or {})})
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._compression = _compression(schema, compression)
        self._pending: list[tuple[Path, Path, int, int, str]] = []  # tmp, final, rows, bytes, sha
        self._writer: pq.ParquetWriter | None = None
        self._sink: _HashingSink | None = None
        self._rows = 0
        self._tmp: Path | None = None
        self._final: Path | None = None

    # -- writing --------------------------------------------------------------
    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        """Append rows (cast to the writer's schema), rotating shards as needed."""
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        table = table.select(self.schema.names).cast(self.schema)
        offset = 0
        while offset < table.num_rows:
            if self._writer is None:
                self._open()
            take = min(table.num_rows - offset, self.max_rows - self._rows)
            self._writer.write_table(table.slice(offset, take))
            self._rows += take
            offset += take
            if self._rows >= self.max_rows or self._sink.tell() >= self.max_bytes:
                self._finish()

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        """Append a list of row dicts (missing keys are null); built column by column, which is fast."""
        if rows:
            cols = [pa.array([r.get(f.name) for r in rows], type=f.type) for f in self.schema]
            self.write(pa.Table.from_arrays(cols, schema=self.schema))

    def close(self) -> list[ShardInfo]:
        """Finish the last shard and move every shard into place."""
        if self._writer is not None:
            self._finish()
        infos = []
        for tmp, final, rows, size, sha in self._pending:
            if tmp != final:
                os.replace(tmp, final)
            infos.append(ShardInfo(str(final), rows, size, sha))
        self._pending = []
        return infos

    def abort(self) -> None:
        """Drop everything written so far (needs no free space: nothing more is written)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # e.g. the footer does not fit on a full disk
                pass
            self._sink.discard()
            self._writer = None
            self._sink = None
        for tmp, *_ in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending = []

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    # -- internals ------------------------------------------------------------
    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        n = len(self._pending)
        final = self.directory / f"{self.stem}-{n:03d}.parquet"
        self._tmp = _temporary(final)
        self._sink = _sink(self._tmp)
        self._writer = pq.ParquetWriter(
            self._sink, self.schema, compression=self._compression, write_page_checksum=True
        )
        self._rows = 0
        self._final = final

    def _finish(self) -> None:
        try:
            self._writer.close()
        except OSError as e:
            raise translate(e, self._tmp) from None
        self._sink.close()
        self._pending.append((self._tmp, self._final, self._rows, self._sink.tell(), self._sink.hexdigest()))
        self._writer = None
        self._sink = None


def _encode(meta: dict[str, str]) -> dict[bytes, bytes]:
    return {k.encode(): v.encode() for k, v in meta.items()}


def write_table(path: str | Path, table: pa.Table, compression: str = "zstd") -> ShardInfo:
    """Write one small table atomically to exactly ``path`` (no rotation)."""
    path = as_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    sink = _sink(tmp)
    try:
        pq.write_table(table, sink, compression=_compression(table.schema, compression), write_page_checksum=True)
        sink.close()
        if tmp != path:
            os.replace(tmp, path)
    except BaseException as e:
        sink.discard()
        raise translate(e, tmp) from None
    return ShardInfo(str(path), table.num_rows, sink.tell(), sink.hexdigest())


def remove_outputs(directory: str | Path, stem: str) -> int:
    """Remove shards (and stale temporaries) a previous attempt at ``stem`` left behind."""
    d = as_path(directory)
    if not d.is_dir():
        return 0
    n = 0
    for p in d.iterdir():
        if p.name.startswith(f"{stem}-") or p.name.startswith(f".{stem}-"):
            p.unlink(missing_ok=True)
            n += 1
    return n
