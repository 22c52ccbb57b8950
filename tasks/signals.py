"""Compute one signal over one samples shard, at a path derived from its cache key.

Cache key = (samples shard SHA-256, signal name, version, parameters, model
identity). Same key → the file exists → skipped; ``force`` recomputes. This is
how a single scoring task is rerun.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals import Signal, SignalParams, get_signal
from magicvl.storage.fingerprint import cache_key, code_version, sha256_file
from magicvl.storage.images import ImageError, read_image_bytes
from magicvl.storage.layout import OutputLayout
from magicvl.storage.readers import file_metadata, iter_batches
from magicvl.storage.schema import signal_schema
from magicvl.storage.writer import write_table
from magicvl.tasks.backends import load_backend

_BATCH = 256


@dataclass(frozen=True)
class SignalJob:
    """A configured signal, as shipped to workers (picklable, no loaded model)."""

    name: str
    params: SignalParams
    model_id: str | None  # storage.fingerprint.model_identity of the model/tokenizer, computed once

    @classmethod
    def of(cls, signal: Signal, params: SignalParams) -> SignalJob:
        from magicvl.storage.fingerprint import model_identity

        return cls(signal.name, params, model_identity(signal.model_ref(params)))

    @property
    def signal(self) -> Signal:
        return get_signal(self.name)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.signal.columns

    @property
    def text_columns(self) -> tuple[str, ...]:
        return self.signal.text_columns

    @property
    def image_side(self) -> int:
        s = self.signal
        return s.image_side(self.params) if s.image_side else 0

    def keyed_params(self) -> dict[str, Any]:
        """Parameters as they enter the cache key: a local model is known by its content, not its path."""
        params = self.params.model_dump(mode="json", exclude=set(self.params.unkeyed))
        if self.model_id and self.model_id.startswith("local:"):
            for attr in ("model", "tokenizer"):
                if attr in params:
                    params[attr] = self.model_id
        return params

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.signal.version,
            "params": self.params.model_dump(mode="json"),
            "model": self.model_id,
            "model_is_tiny_random": self.tiny_random,
        }

    @property
    def tiny_random(self) -> bool:
        """True when the model/tokenizer is a tiny random checkpoint built locally (values are not meaningful)."""
        from magicvl.model.tiny import is_tiny

        ref = self.signal.model_ref(self.params)
        return bool(ref) and is_tiny(ref)

    def key(self, shard_sha: str) -> str:
        s = self.signal
        return cache_key(shard_sha, s.name, s.version, self.keyed_params(), self.model_id)

    def per_image(self, gray: Image.Image) -> dict[str, float]:
        return self.signal.per_image(gray, self.params)


FusedSignal = SignalJob  # a SignalJob that ingestion computes itself (see tasks.ingest.fused_signals)


def write_signal_file(
    layout: OutputLayout,
    job: SignalJob,
    dataset: str,
    shard_stem: str,
    shard_sha: str,
    ids: list[str],
    cols: dict[str, np.ndarray],
    errors: list[str | None],
) -> dict[str, Any]:
    """Write a signal's values for one shard at its keyed path; remove stale versions beside it."""
    key = job.key(shard_sha)
    path = layout.signal_path(job.name, dataset, shard_stem, key)
    schema = signal_schema(job.columns, job.text_columns)
    meta = {
        "cache_key": key,
        "signal": job.name,
        "version": job.signal.version,
        "params": job.params.model_dump_json(),
        "model": str(job.model_id),
        "model_is_tiny_random": str(job.tiny_random).lower(),
        "input_sha256": shard_sha,
        "code_version": code_version(),
    }
    arrays = [pa.array(ids, pa.string())] + [pa.array(cols[c], pa.float64(), from_pandas=True) for c in job.columns]
    arrays += [pa.array([v if isinstance(v, str) else None for v in cols[c]], pa.string()) for c in job.text_columns]
    arrays.append(pa.array(errors, pa.string()))
    table = pa.Table.from_arrays(arrays, schema=schema).replace_schema_metadata(
        {**{k.encode(): v.encode() for k, v in meta.items()}}
    )
    info = write_table(path, table)
    for stale in path.parent.glob(f"{shard_stem}-*.parquet"):
        if stale != path:
            stale.unlink(missing_ok=True)
    return {**info.to_dict(), "key": key, "errors": sum(e is not None for e in errors)}


def compute_rows(job: SignalJob, batch: SampleBatch, backend: Any) -> tuple[dict[str, np.ndarray], list[str | None]]:
    """Compute a batch; if it raises, compute row by row so one bad row cannot sink the others."""
    s = job.signal
    try:
        out = s.compute(batch, job.params, backend)
        errors = list(out.pop("error", [None] * len(batch)))
        return out, errors
    except Exception:
        cols = {c: np.full(len(batch), np.nan) for c in s.columns}
        cols.update({c: np.full(len(batch), None, dtype=object) for c in s.text_columns})
        errors: list[str | None] = [None] * len(batch)
        for i in range(len(batch)):
            one = SampleBatch(
                [batch.sample_ids[i]],
                [batch.conversations[i]],
                [batch.images[i]] if batch.images else [],
                batch.max_pixels,
            )
            try:
                res = s.compute(one, job.params, backend)
                errors[i] = list(res.pop("error", [None]))[0]
                for c in s.columns + s.text_columns:
                    cols[c][i] = res[c][0]
            except Exception as e:
                errors[i] = f"{type(e).__name__}: {e}"
        return cols, errors


def _batch(rb: pa.RecordBatch, reads: str, max_pixels: int, max_image_bytes: int) -> SampleBatch:
    ids = rb.column("sample_id").to_pylist()
    if reads == "text":
        return SampleBatch(ids, rb.column("conversations").to_pylist())
    images: list[bytes | None] = []
    for img in rb.column("image").to_pylist():
        if img is None:
            images.append(None)
        elif img["bytes"] is not None:
            images.append(img["bytes"])
        else:  # referenced image: resolved and checked at ingestion
            try:
                images.append(read_image_bytes(Path(img["path"]), max_image_bytes))
            except (OSError, ImageError):
                images.append(b"")  # decodes to a per-row error, not a crash
    return SampleBatch(ids, [[] for _ in ids], images, max_pixels)


def score_shard(
    job: SignalJob,
    dataset: str,
    shard: dict[str, Any],
    out_root: str,
    max_pixels: int,
    max_image_bytes: int,
    force: bool = False,
) -> dict[str, Any]:
    """Compute ``job`` over one samples shard (``shard`` = ShardInfo dict); skip on a cache hit."""
    t0 = time.perf_counter()
    layout = OutputLayout(Path(out_root))
    stem = Path(shard["path"]).name.removesuffix(".parquet")
    key = job.key(shard["sha256"])
    path = layout.signal_path(job.name, dataset, stem, key)
    base = {"signal": job.name, "dataset": dataset, "shard": stem}
    if not force and path.is_file() and file_metadata(path).get("cache_key") == key:
        err = pq.read_table(path, columns=["error"]).column("error")
        rows, errors = len(err), len(err) - err.null_count
        return {
            **base,
            "path": str(path),
            "rows": rows,
            "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
            "key": key,
            "errors": errors,
            "cached": True,
            "seconds": 0.0,
        }
    s = job.signal
    backend = load_backend(s, job.params)
    columns = ["sample_id", "conversations"] if s.reads == "text" else ["sample_id", "image"]
    ids: list[str] = []
    cols: dict[str, list[np.ndarray]] = {c: [] for c in s.columns + s.text_columns}
    errors: list[str | None] = []
    for rb in iter_batches(shard["path"], columns=columns, batch_size=_BATCH):
        batch = _batch(rb, s.reads, max_pixels, max_image_bytes)
        out, errs = compute_rows(job, batch, backend)
        ids += batch.sample_ids
        errors += errs
        for c in s.columns:
            cols[c].append(np.asarray(out[c], dtype=np.float64))
        for c in s.text_columns:
            cols[c].append(np.asarray(out[c], dtype=object))
    merged = {c: np.concatenate(v) if v else np.zeros(0) for c, v in cols.items()}
    info = write_signal_file(layout, job, dataset, stem, shard["sha256"], ids, merged, errors)
    return {**base, **info, "cached": False, "seconds": round(time.perf_counter() - t0, 3)}
