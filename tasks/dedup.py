"""Duplicate sample ids within a dataset: the first occurrence (source order) stays, later ones go to quarantine.

Runs after every chunk of the dataset is ingested, reading only the
``sample_id`` column. Affected shards are rewritten atomically and the owning
chunk's completion marker is updated to describe the deduplicated state, so a
rerun finds nothing to do and a re-ingested chunk is deduplicated again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import load_marker, save_marker
from magicvl.storage.readers import read_table
from magicvl.storage.schema import QUARANTINE_SCHEMA
from magicvl.storage.writer import ShardWriter, write_table


def find_duplicates(paths: list[str]) -> dict[str, list[tuple[int, str]]]:
    """Per shard index: (row, first-seen shard/row description) of every later occurrence of an id."""
    frames = [
        pl.scan_parquet(p).select("sample_id", "source").with_row_index("row").with_columns(pl.lit(i).alias("shard"))
        for i, p in enumerate(paths)
    ]
    if not frames:
        return {}
    df = pl.concat(frames).filter(pl.col("sample_id").is_duplicated()).collect()
    df = df.sort(["shard", "row"])
    first: dict[str, str] = {}
    out: dict[str, list[tuple[int, str]]] = {}
    for sid, source, row, shard in df.select("sample_id", "source", "row", "shard").iter_rows():
        if sid not in first:
            first[sid] = source
        else:
            out.setdefault(str(shard), []).append((row, first[sid]))
    return out


def dedup_dataset(dataset: str, shard_paths: list[str], out_root: str, compression: str = "zstd") -> dict[str, Any]:
    """Remove later duplicates from the dataset's shards; returns {dataset, duplicates, rewritten}."""
    layout = OutputLayout(Path(out_root))
    paths = sorted(shard_paths)
    dups = find_duplicates(paths)
    total = 0
    for shard_idx, rows in sorted(dups.items(), key=lambda kv: int(kv[0])):
        path = Path(paths[int(shard_idx)])
        total += len(rows)
        _rewrite(layout, dataset, path, rows, compression)
    return {"dataset": dataset, "duplicates": total, "rewritten": len(dups)}


def _rewrite(layout: OutputLayout, dataset: str, path: Path, rows: list[tuple[int, str]], compression: str) -> None:
    table = read_table(path)
    drop = {r for r, _ in rows}
    keep_mask = pa.array([i not in drop for i in range(table.num_rows)])
    qrows = []
    for r, first in rows:
        rec = table.slice(r, 1).to_pylist()[0]
        raw = json.dumps({"source_key": rec["source_key"], "conversations": rec["conversations"]}, ensure_ascii=False)
        qrows.append(
            {
                "dataset": dataset,
                "source": rec["source"],
                "sample_id": rec["sample_id"],
                "step": "dedup",
                "error_kind": "duplicate_id",
                "error": f"duplicate sample_id {rec['sample_id']} (record key {rec['source_key']!r}); "
                f"first seen at {first}",
                "raw": raw[:4096],
                "raw_truncated": len(raw) > 4096,
            }
        )
    shard_stem = path.name.removesuffix(".parquet")
    chunk_stem = shard_stem.rsplit("-", 1)[0]
    new = write_table(path, table.filter(keep_mask), compression)
    qwriter = ShardWriter(
        layout.quarantine_dir(dataset), f"dedup-{shard_stem}", QUARANTINE_SCHEMA, compression=compression
    )
    with qwriter:
        qwriter.write_rows(qrows)
        qinfo = qwriter.close()
    marker = layout.marker("ingest", f"{dataset}/{chunk_stem}")
    _update_marker(marker, layout.root, new.to_dict(), [q.to_dict() for q in qinfo], len(rows))


def _update_marker(marker: Path, root: Path, shard: dict[str, Any], qshards: list[dict[str, Any]], n: int) -> None:
    """Make the chunk's marker describe the deduplicated shard (same key: the chunk's inputs did not change)."""
    m = load_marker(marker, root) if marker.is_file() else None
    if m is None:
        return

    def replace(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [shard if o["path"] == shard["path"] else o for o in items]

    m["outputs"] = replace(m["outputs"]) + qshards
    s = m["summary"]
    s["shards"] = replace(s["shards"])
    s["quarantine_shards"] = s["quarantine_shards"] + qshards
    s["kept"] -= n
    s["quarantined"]["duplicate_id"] = s["quarantined"].get("duplicate_id", 0) + n
    # fused signal files of the old shard content are stale now; the signal step recomputes them
    stem = Path(shard["path"]).name.removesuffix(".parquet")
    for name, outs in s.get("signal_outputs", {}).items():
        s["signal_outputs"][name] = [o for o in outs if not Path(o["path"]).name.startswith(f"{stem}-")]
    save_marker(marker, root, m)
