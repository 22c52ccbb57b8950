"""Ingest one chunk of a raw source into samples shards (+ quarantine): ``IngestUnit``.

Images are decoded once for the integrity check, at ``scoring.dedup.HASH_SIDE``
(luma, ``gray_for_signals``), and that decode gives the row's dedup hash columns
(``image_digest``, ``image_phash``, ``image_dhash``), so dedup never decodes an
image again; model-free image signals listed as ``fused`` are computed on a decode at their own ``max_side`` (the
same ``storage.images.gray_for_signals`` call the standalone signal makes, so
fused values equal standalone values by construction; signals sharing a side
share the decode). Cheap text signals (model-free or tokenizer-only) are
computed on the texts already in memory. Each fused signal is written by its
own ``FusedSignalUnit`` (same key, file and marker as the signal step's), so
the signal step finds it done and makes no second pass over the data.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.dedup import HASH_SIDE, hash_columns
from magicvl.storage.fs import ObjectStoreOptions
from magicvl.storage.images import (
    ImageError,
    gray_for_signals,
    read_image_bytes,
    resolve_image_path,
    stable_error,
)
from magicvl.storage.ingest import Chunk, DatasetConfig, IngestOptions, RawRecord, read_chunk
from magicvl.storage.ingest.records import RecordError, parse_record
from magicvl.storage.ingest.spec import resolved_image_root
from magicvl.storage.options import StorageOptions
from magicvl.storage.schema import QUARANTINE_SCHEMA, SAMPLE_SCHEMA
from magicvl.tasks.backends import load_backend
from magicvl.tasks.steps.signals.units import (
    FusedSignal,
    FusedSignalUnit,
    compute_rows,
    fused_signals,  # noqa: F401  (re-exported: its old home)
)
from magicvl.tasks.unit import Outputs, Unit, UnitKey

INGEST_VERSION = "4"  # 2: dedup no longer rewrites ingest outputs; 3: image hash columns; 4: hashes from hash_thumb
_BATCH = 256


def quarantine_row(
    dataset: str, raw: RawRecord, step: str, kind: str, error: str, sample_id: str | None, preview: int
) -> dict[str, Any]:
    text = raw.raw or ""
    return {
        "dataset": dataset,
        "source": raw.locator,
        "sample_id": sample_id,
        "step": step,
        "error_kind": kind,
        "error": error,
        "raw": text[:preview],
        "raw_truncated": len(text) > preview,
    }


def chunk_key(chunk: Chunk, cfg: DatasetConfig, options: IngestOptions, storage: StorageOptions) -> UnitKey:
    """Key of a chunk's samples and quarantine shards. Fused signals are not part of it: their
    files have keys (and markers) of their own, and a signal changed later is computed by the signal step."""
    bounds = (chunk.path, chunk.start, chunk.end, chunk.first_record, chunk.index)
    params = {"cfg": cfg.model_dump(mode="json"), "ingest": options.params(), "storage": storage.model_dump()}
    return UnitKey(f"{chunk.fingerprint}:{bounds}", "ingest", INGEST_VERSION, params)


class _ImageStep:
    """Reads, checks and (optionally) measures the image of one record."""

    def __init__(
        self,
        cfg: DatasetConfig,
        options: IngestOptions,
        base: Path,
        fused: list[FusedSignal],
        store: ObjectStoreOptions | None = None,
    ) -> None:
        self.root = resolved_image_root(cfg, base)
        self.store = store
        self.options = options
        self.fused = [f for f in fused if f.signal.per_image is not None]
        self.sides = sorted({f.image_side for f in self.fused} | {HASH_SIDE})  # one decode per distinct side
        self.budget = options.decode_budget()  # per-image and per-task decode time limits

    def __call__(self, raw: RawRecord, ref: str | None) -> tuple[dict[str, Any], dict[str, float]]:
        if raw.image_bytes is not None:
            data, path = raw.image_bytes, raw.image_name
        else:
            if self.root is None:
                raise ImageError("no_image_root", f"record references image {ref!r} but the dataset has no image_root")
            resolved = resolve_image_path(ref, self.root, self.store)
            data, path = read_image_bytes(resolved, self.options.max_image_bytes, self.store), str(resolved)
        values: dict[str, float] = {}
        hashes: dict[str, Any] = {}
        for side in self.sides:  # exactly the decode the standalone signal makes at this side
            info, gray = gray_for_signals(data, self.options.max_pixels, side, self.budget)
            if side == HASH_SIDE:  # dedup's hashes come from this decode (scoring.dedup.hash_columns)
                hashes = hash_columns(data, gray)
            for f in self.fused:
                if f.image_side == side:
                    values.update(f.per_image(gray))
        embed = self.options.images == "embed"
        image = {"bytes": data if embed else None, "path": path}
        facts = {"width": info.width, "height": info.height, "image_format": info.format}
        return {"image": image, **facts, **hashes}, values


class IngestUnit(Unit):
    """Read, validate and write one chunk (kept rows → samples, bad ones → quarantine)."""

    step = "ingest"

    def __init__(
        self,
        chunk: Chunk,
        cfg: DatasetConfig,
        options: IngestOptions,
        storage: StorageOptions,
        out_root: str,
        base_dir: str,
        fused: list[FusedSignal],
        batch_size: int = _BATCH,
    ) -> None:
        super().__init__(out_root, storage)
        self.chunk, self.cfg, self.options, self.base_dir = chunk, cfg, options, base_dir
        self.fused, self.batch_size = list(fused), batch_size

    @property
    def marker_name(self) -> str:
        return f"{self.cfg.name}/{self.chunk.stem}"

    def key(self) -> UnitKey:
        return chunk_key(self.chunk, self.cfg, self.options, self.storage)

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        chunk, cfg, options = self.chunk, self.cfg, self.options
        store = self.storage.s3
        image_step = _ImageStep(cfg, options, Path(self.base_dir), self.fused, store)
        writer = out.writer(self.layout.samples_dir(cfg.name), chunk.stem, SAMPLE_SCHEMA)
        qwriter = out.writer(self.layout.quarantine_dir(cfg.name), f"ingest-{chunk.stem}", QUARANTINE_SCHEMA)
        counts: Counter[str] = Counter()
        values: dict[str, list[float]] = {c: [] for f in image_step.fused for c in f.columns}
        ids: list[str] = []
        texts: list[list[dict[str, str]]] = []  # conversations of kept rows, for fused text signals
        rows: list[dict[str, Any]] = []
        qrows: list[dict[str, Any]] = []
        n_in = 0
        for raw in read_chunk(chunk, cfg, options, store):
            n_in += 1
            row, vals, problem = _process(raw, cfg, image_step)
            if problem is not None:
                kind, err, sid = problem
                counts[kind] += 1
                qrows.append(quarantine_row(cfg.name, raw, "ingest", kind, err, sid, options.raw_preview_bytes))
            else:
                rows.append(row)
                ids.append(row["sample_id"])
                texts.append(row["conversations"])
                for c in values:
                    values[c].append(vals.get(c, np.nan))
            if len(rows) >= self.batch_size:
                writer.write_rows(rows)
                rows = []
            if len(qrows) >= self.batch_size:
                qwriter.write_rows(qrows)
                qrows = []
        writer.write_rows(rows)
        qwriter.write_rows(qrows)
        shards = out.close(writer)
        qshards = out.close(qwriter)
        self._write_fused(shards, ids, texts, values)
        return {
            "dataset": cfg.name,
            "chunk": chunk.index,
            "source": chunk.path,
            "records_in": n_in,
            "kept": len(ids),
            "quarantined": dict(counts),
            "shards": shards,
            "quarantine_shards": qshards,
        }

    def _write_fused(
        self, shards: list[dict], ids: list[str], texts: list[list[dict[str, str]]], values: dict[str, list[float]]
    ) -> None:
        """Each fused signal's keyed file (and marker) per samples shard (rows split in shard order)."""
        start = 0
        for shard in shards:
            stop = start + shard["rows"]
            for f in self.fused:
                if f.signal.per_image is not None:  # measured during the decode
                    cols = {c: np.asarray(values[c][start:stop], dtype=np.float64) for c in f.columns}
                    errors: list[str | None] = [None] * (stop - start)
                else:  # text signal over the conversations in memory
                    batch = SampleBatch(ids[start:stop], texts[start:stop])
                    cols, errors = compute_rows(f, batch, load_backend(f.signal, f.params))
                unit = FusedSignalUnit(
                    f, self.cfg.name, shard, str(self.layout.root), self.storage, ids[start:stop], cols, errors
                )
                unit.run(force=True)
            start = stop


def ingest_chunk(
    chunk: Chunk,
    cfg: DatasetConfig,
    options: IngestOptions,
    storage: StorageOptions,
    out_root: str,
    base_dir: str,
    fused: list[FusedSignal],
    force: bool = False,
) -> dict[str, Any]:
    """Run the ``IngestUnit`` of one chunk (skipped if already done); returns its summary."""
    return IngestUnit(chunk, cfg, options, storage, out_root, base_dir, fused).run(force)


def _process(raw: RawRecord, cfg: DatasetConfig, image_step: _ImageStep):
    """One record → (sample row, fused values, None) or (None, None, (kind, error, sample_id))."""
    if raw.error_kind is not None:
        return None, None, (raw.error_kind, raw.error or raw.error_kind, None)
    sid = None
    try:
        parsed = parse_record(raw, cfg)
        sid = parsed.sample_id
        image: dict[str, Any] = {"image": None, "width": None, "height": None, "image_format": None}
        vals: dict[str, float] = {}
        if parsed.has_image:
            image, vals = image_step(raw, parsed.image_ref)
    except (RecordError, ImageError) as e:
        return None, None, (e.kind, str(e), sid)
    except Exception as e:  # never let one record stop the chunk
        return None, None, ("internal_error", stable_error(e), sid)
    row = {
        "sample_id": parsed.sample_id,
        "dataset": cfg.name,
        "source_key": parsed.source_key,
        "source": raw.locator,
        "category": parsed.category,
        "conversations": parsed.conversations,
        **image,
    }
    return row, vals, None
