"""Lazy, streaming readers over output folders (polars and pyarrow dataset).

Partition values (``dataset``, ``stage``) are columns inside every file and
folder names hold no ``key=value`` (``storage.layout``), so these readers and
any other (pandas, duckdb, ``datasets``) see one copy of them, with the
files' types.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from magicvl.storage.outfs import S3Path, as_path, parquet_source

if TYPE_CHECKING:  # imported where used: workers that only read shards skip polars and pyarrow.dataset (~0.5 s)
    import polars as pl
    import pyarrow.dataset as pads


def list_shards(folder: str | Path) -> list[Path]:
    """Every visible Parquet shard under ``folder``, sorted (temporaries and ``_``/``.`` files skipped)."""
    root = as_path(folder)
    if not root.exists():
        return []
    return sorted(
        p for p in root.rglob("*.parquet") if not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    )


def arrow_dataset(folder: str | Path) -> pads.Dataset:
    """A pyarrow dataset over an output folder (lazy)."""
    import pyarrow.dataset as pads

    shards = list_shards(folder)
    if not shards:
        raise FileNotFoundError(f"no Parquet shards under {folder}")
    if isinstance(shards[0], S3Path):
        return pads.dataset([p.key for p in shards], format="parquet", filesystem=shards[0]._fs())
    return pads.dataset([str(p) for p in shards], format="parquet")


def scan(folder: str | Path, columns: list[str] | None = None) -> pl.LazyFrame:
    """A polars LazyFrame over an output folder; streaming-friendly, reads only what is asked."""
    import polars as pl

    files = [str(p) for p in list_shards(folder)]
    if not files:
        raise FileNotFoundError(f"no Parquet shards under {folder}")
    if isinstance(as_path(folder), S3Path):  # through the seam's filesystem (endpoint, credentials)
        lf = pl.scan_pyarrow_dataset(arrow_dataset(folder))
        return lf.select(columns) if columns else lf
    lf = pl.scan_parquet(files, hive_partitioning=False)
    return lf.select(columns) if columns else lf


def read_table(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """Read one shard (optionally a subset of columns)."""
    return pq.read_table(parquet_source(path), columns=columns)


def iter_batches(path: str | Path, columns: list[str] | None = None, batch_size: int = 256) -> Iterator[pa.RecordBatch]:
    """Stream one shard in record batches of at most ``batch_size`` rows."""
    pf = pq.ParquetFile(parquet_source(path))
    yield from pf.iter_batches(batch_size=batch_size, columns=columns)


def file_metadata(path: str | Path) -> dict[str, str]:
    """The key-value metadata stored in a shard's footer."""
    meta = pq.read_schema(parquet_source(path)).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k != b"huggingface"}


def column_names(path: str | Path) -> list[str]:
    """The top-level column names of one shard (footer only)."""
    return pq.read_schema(parquet_source(path)).names


def num_rows(path: str | Path) -> int:
    """Row count of one shard, from its footer (no data read)."""
    return pq.ParquetFile(parquet_source(path)).metadata.num_rows


def read_rows(path: str | Path, rows: list[int], columns: list[str] | None = None) -> list[dict]:
    """The given rows (0-based, in the order asked) of one shard, as dicts.

    Only the row groups holding them are read (a few thumbnails never load a shard of images)."""
    if not rows:
        return []
    pf = pq.ParquetFile(parquet_source(path))
    md = pf.metadata
    starts = [0]
    for g in range(md.num_row_groups):
        starts.append(starts[-1] + md.row_group(g).num_rows)
    bad = [r for r in rows if not 0 <= r < starts[-1]]
    if bad:
        raise IndexError(f"{path}: rows {bad[:5]} out of range (0..{starts[-1] - 1})")
    by_group: dict[int, list[int]] = {}
    for r in sorted(set(rows)):
        by_group.setdefault(bisect.bisect_right(starts, r) - 1, []).append(r)
    found: dict[int, dict] = {}
    for g, in_group in by_group.items():
        t = pf.read_row_group(g, columns=columns)
        picked = t.take(pa.array([x - starts[g] for x in in_group], pa.int64())).to_pylist()
        found.update(zip(in_group, picked))
    return [found[r] for r in rows]


def find_rows(paths: list[Path], column: str, values: set) -> dict[Path, list[int]]:
    """Per shard, the rows whose ``column`` is one of ``values`` (only that column is read)."""
    out: dict[Path, list[int]] = {}
    wanted = pa.array(sorted(values))
    for p in paths:
        col = pq.read_table(parquet_source(p), columns=[column]).column(column)
        hits = pc.indices_nonzero(pc.fill_null(pc.is_in(col, value_set=wanted), False))
        if len(hits):
            out[p] = hits.to_pylist()
    return out


def column_values(paths: list[str | Path], column: str) -> list:
    """One column of several shards, concatenated in the order given."""
    return [v for p in paths for v in pq.read_table(parquet_source(p), columns=[column]).column(column).to_pylist()]


def duplicate_rows(paths: list[str | Path]) -> dict[int, list[tuple[int, str]]]:
    """Later occurrences of a ``sample_id`` across ``paths`` (in order), per shard index:
    [(row, ``source`` of the first occurrence)]. Reads only ``sample_id`` and ``source``."""
    if not paths:
        return {}
    import polars as pl

    frames = [
        _ids(p).select("sample_id", "source").with_row_index("row").with_columns(pl.lit(i).alias("shard"))
        for i, p in enumerate(paths)
    ]
    df = pl.concat(frames).filter(pl.col("sample_id").is_duplicated()).collect().sort(["shard", "row"])
    first: dict[str, str] = {}
    out: dict[int, list[tuple[int, str]]] = {}
    for sid, source, row, shard in df.select("sample_id", "source", "row", "shard").iter_rows():
        if sid not in first:
            first[sid] = source
        else:
            out.setdefault(int(shard), []).append((int(row), first[sid]))
    return out


def _ids(path: str | Path) -> pl.LazyFrame:
    """``sample_id`` and ``source`` of one shard (read through the seam for an object)."""
    import polars as pl

    if isinstance(as_path(path), S3Path):
        return pl.from_arrow(read_table(path, ["sample_id", "source"])).lazy()
    return pl.scan_parquet(str(path))
