"""Combine, per samples shard: gather statistics, score, and write the curated stages.

No model runs here: only signal tables and sample metadata are read, except in
the final write, which copies each kept sample (image bytes included) into
``curated/stage-<k>/``.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from magicvl.scoring.combine import CombineConfig
from magicvl.scoring.score import Decision, gather_stats, score_rows, split_histograms
from magicvl.storage.fingerprint import cache_key, stable_hash
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import read_marker, write_marker
from magicvl.storage.options import StorageOptions
from magicvl.storage.readers import read_table
from magicvl.storage.schema import CURATED_SCHEMA, DROPPED_SCHEMA, QUARANTINE_SCHEMA, scores_schema
from magicvl.storage.writer import ShardWriter, remove_outputs

COMBINE_VERSION = "1"
_META = ["sample_id", "dataset", "category", "source"]


@dataclass(frozen=True)
class ShardInputs:
    """One samples shard and, per metric, the signal file holding it."""

    dataset: str
    path: str
    sha256: str
    signal_paths: dict[str, str]  # metric → signal file
    signal_keys: dict[str, str]  # metric → cache key (for the write marker)

    @property
    def stem(self) -> str:
        return Path(self.path).name.removesuffix(".parquet")


@dataclass
class ShardColumns:
    sample_ids: list[str]
    datasets: list[str]
    categories: list[str | None]
    sources: list[str]
    metrics: dict[str, np.ndarray]
    errors: list[list[str]]


def load_columns(inp: ShardInputs) -> ShardColumns:
    """Sample metadata joined with every signal by sample_id (errors gathered per row)."""
    meta = read_table(inp.path, columns=_META).to_pydict()
    ids = meta["sample_id"]
    pos = {sid: i for i, sid in enumerate(ids)}
    errors: list[list[str]] = [[] for _ in ids]
    metrics = {}
    for metric, path in inp.signal_paths.items():
        t = read_table(path, columns=["sample_id", metric, "error"]).to_pydict()
        values = np.full(len(ids), np.nan)
        seen = np.zeros(len(ids), dtype=bool)
        for sid, v, err in zip(t["sample_id"], t[metric], t["error"]):
            i = pos.get(sid)
            if i is None:
                continue
            seen[i] = True
            values[i] = np.nan if v is None else v
            if err is not None:
                errors[i].append(f"{metric}: {err}")
        for i in np.flatnonzero(~seen):
            errors[i].append(f"{metric}: no value computed for this sample")
        metrics[metric] = values
    return ShardColumns(ids, meta["dataset"], meta["category"], meta["source"], metrics, errors)


def shard_stats(inp: ShardInputs, cfg: CombineConfig) -> dict[str, Any]:
    """Pass 1: mergeable statistics of one shard."""
    c = load_columns(inp)
    return gather_stats(c.datasets, c.categories, c.metrics, c.errors, cfg).to_dict()


def shard_histograms(inp: ShardInputs, cfg: CombineConfig, decision: dict[str, Any]) -> dict[str, np.ndarray]:
    """Pass 2 (sample granularity): histograms of S per split unit."""
    c = load_columns(inp)
    rows = score_rows(c.datasets, c.categories, c.metrics, c.errors, cfg, _decision(decision))
    return split_histograms(c.categories, rows, cfg.stages)  # int64 arrays: compact to ship and to add


def _decision(d: dict[str, Any]) -> Decision:
    from magicvl.scoring.normalize import Moments

    return Decision(
        d["granularity"],
        d["metric_axes"],
        {m: Moments.from_dict(v) for m, v in d["moments"].items()},
        dict(d["cutoffs"]),
        d["units"],
        list(d["absent_axes"]),
    )


def write_shard(
    inp: ShardInputs,
    cfg: CombineConfig,
    decision: dict[str, Any],
    storage: StorageOptions,
    out_root: str,
    force: bool = False,
) -> dict[str, Any]:
    """Pass 3: scores ledger, dropped, quarantined and curated rows of one shard (skipped if done)."""
    t0 = time.perf_counter()
    layout = OutputLayout(Path(out_root))
    stem = f"{inp.dataset}-{inp.stem}"
    key = cache_key(
        inp.sha256,
        "combine",
        COMBINE_VERSION,
        {
            "cfg": cfg.model_dump(mode="json"),
            "decision": stable_hash(decision),
            "signals": inp.signal_keys,
            "storage": storage.model_dump(),
        },
    )
    marker_path = layout.marker("combine", f"{inp.dataset}/{inp.stem}")
    if not force and (done := read_marker(marker_path, key, layout.root)):
        return {**done["summary"], "cached": True}
    c = load_columns(inp)
    rows = score_rows(c.datasets, c.categories, c.metrics, c.errors, cfg, _decision(decision))
    dirs = [layout.scores_dir(inp.dataset), layout.dropped_dir(inp.dataset), layout.quarantine_dir(inp.dataset)]
    dirs += [layout.stage_dir(k) for k in (1, 2, 3, 4)]
    for d in dirs:
        remove_outputs(d, stem if d != layout.quarantine_dir(inp.dataset) else f"combine-{stem}")
    outputs = _write_ledger(layout, inp, stem, c, rows, storage)
    outputs += _write_curated(layout, inp, stem, rows, storage)
    kept = Counter(f"{rows.stage[i]}|{c.categories[i]}" for i, f in enumerate(rows.fate) if f == "kept")
    summary = {
        "dataset": inp.dataset,
        "shard": inp.stem,
        "rows": len(c.sample_ids),
        "kept": dict(kept),
        "dropped": dict(Counter(r for f, r in zip(rows.fate, rows.reason) if f == "dropped")),
        "quarantined": sum(f == "quarantined" for f in rows.fate),
        "outputs": [o for o in outputs],
        "seconds": round(time.perf_counter() - t0, 3),
    }
    write_marker(marker_path, key, outputs, summary, layout.root)
    return {**summary, "cached": False}


def _writer(directory: Path, stem: str, schema: pa.Schema, storage: StorageOptions) -> ShardWriter:
    return ShardWriter(directory, stem, schema, storage.shard_max_rows, storage.shard_max_bytes, storage.compression)


def _write_ledger(layout: OutputLayout, inp: ShardInputs, stem: str, c: ShardColumns, rows, storage) -> list[dict]:
    metrics = tuple(c.metrics)
    ledger = {
        "sample_id": c.sample_ids,
        "dataset": c.datasets,
        "category": c.categories,
        "fate": rows.fate,
        "reason": rows.reason,
        "stage": [int(s) if s else None for s in rows.stage],
        "complexity": _opt(rows.complexity),
        "s_text": _opt(rows.axes["text"]),
        "s_image": _opt(rows.axes["image"]),
        "s_task": _opt(rows.axes["task"]),
    }
    for m in metrics:
        ledger[m] = _opt(c.metrics[m])
        ledger[f"{m}_norm"] = _opt(rows.normalized[m])
    out = []
    with _writer(layout.scores_dir(inp.dataset), stem, scores_schema(metrics), storage) as w:
        w.write(pa.table(ledger, schema=scores_schema(metrics)))
        out += w.close()
    dropped = [
        {
            "sample_id": c.sample_ids[i],
            "dataset": c.datasets[i],
            "source": c.sources[i],
            "category": c.categories[i],
            "step": "combine",
            "reason": rows.reason[i],
        }
        for i, f in enumerate(rows.fate)
        if f == "dropped"
    ]
    quarantined = [
        {
            "dataset": c.datasets[i],
            "source": c.sources[i],
            "sample_id": c.sample_ids[i],
            "step": "signal",
            "error_kind": "signal_error",
            "error": rows.reason[i],
            "raw": None,
            "raw_truncated": False,
        }
        for i, f in enumerate(rows.fate)
        if f == "quarantined"
    ]
    for directory, prefix, schema, data in (
        (layout.dropped_dir(inp.dataset), stem, DROPPED_SCHEMA, dropped),
        (layout.quarantine_dir(inp.dataset), f"combine-{stem}", QUARANTINE_SCHEMA, quarantined),
    ):
        if data:
            with _writer(directory, prefix, schema, storage) as w:
                w.write_rows(data)
                out += w.close()
    return [o.to_dict() for o in out]


def _opt(a: np.ndarray) -> list[float | None]:
    return [None if np.isnan(x) else float(x) for x in a]


def _write_curated(layout: OutputLayout, inp: ShardInputs, stem: str, rows, storage) -> list[dict]:
    """Copy kept samples into their stage folders, in shard order (streamed in batches)."""
    from magicvl.storage.readers import iter_batches

    writers: dict[int, ShardWriter] = {}
    infos = []
    offset = 0
    try:
        for rb in iter_batches(inp.path, batch_size=256):
            n = rb.num_rows
            stage = rows.stage[offset : offset + n]
            extra = {
                "stage": pa.array(stage, pa.int8()),
                "complexity": pa.array(rows.complexity[offset : offset + n], pa.float64(), from_pandas=True),
                **{
                    f"s_{a}": pa.array(rows.axes[a][offset : offset + n], pa.float64(), from_pandas=True)
                    for a in ("text", "image", "task")
                },
            }
            table = pa.Table.from_batches([rb])
            for name, arr in extra.items():
                table = table.append_column(name, arr)
            for k in (1, 2, 3, 4):
                mask = stage == k
                if mask.any():
                    if k not in writers:
                        writers[k] = _writer(layout.stage_dir(k), stem, CURATED_SCHEMA, storage)
                    writers[k].write(table.filter(pa.array(mask)))
            offset += n
        for w in writers.values():
            infos += w.close()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    return [i.to_dict() for i in infos]
