"""Lazy, streaming readers over output folders (polars and pyarrow dataset).

Partition values (``dataset``, ``stage``) are columns inside every file and
folder names hold no ``key=value`` (``storage.layout``), so these readers and
any other (pandas, duckdb, ``datasets``) see one copy of them, with the
files' types.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq


def list_shards(folder: str | Path) -> list[Path]:
    """Every visible Parquet shard under ``folder``, sorted (temporaries and ``_``/``.`` files skipped)."""
    root = Path(folder)
    if not root.exists():
        return []
    return sorted(
        p for p in root.rglob("*.parquet") if not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    )


def arrow_dataset(folder: str | Path) -> pads.Dataset:
    """A pyarrow dataset over an output folder (lazy)."""
    files = [str(p) for p in list_shards(folder)]
    if not files:
        raise FileNotFoundError(f"no Parquet shards under {folder}")
    return pads.dataset(files, format="parquet")


def scan(folder: str | Path, columns: list[str] | None = None) -> pl.LazyFrame:
    """A polars LazyFrame over an output folder; streaming-friendly, reads only what is asked."""
    files = [str(p) for p in list_shards(folder)]
    if not files:
        raise FileNotFoundError(f"no Parquet shards under {folder}")
    lf = pl.scan_parquet(files, hive_partitioning=False)
    return lf.select(columns) if columns else lf


def read_table(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """Read one shard (optionally a subset of columns)."""
    return pq.read_table(path, columns=columns)


def iter_batches(path: str | Path, columns: list[str] | None = None, batch_size: int = 256) -> Iterator[pa.RecordBatch]:
    """Stream one shard in record batches of at most ``batch_size`` rows."""
    pf = pq.ParquetFile(path)
    yield from pf.iter_batches(batch_size=batch_size, columns=columns)


def file_metadata(path: str | Path) -> dict[str, str]:
    """The key-value metadata stored in a shard's footer."""
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k != b"huggingface"}
