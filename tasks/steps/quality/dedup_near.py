"""Cross-dataset duplicates: exact (text + image bytes), near-duplicate images, near-duplicate texts.

Map: ``shard_hashes(path, cfg)`` reads one samples shard (through
``storage.readers``) and returns fixed-width hashes per row: small, picklable,
fan-out friendly. Reduce: ``resolve(hashes, cfg)`` takes them in recipe order
(dataset order, then source order) and returns the duplicates table: one row per
dropped sample naming the sample it duplicates. ``find_duplicates`` runs both.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from magicvl.scoring.dedup import (
    HASH_COLUMNS,
    DedupConfig,
    MinHasher,
    exact_key,
    first_occurrence,
    hamming,
    image_hash_columns,
    lsh_pairs,
    near_pairs,
    normalize_text,
    resolve_pairs,
    shingles,
)
from magicvl.storage.images import read_image_bytes
from magicvl.storage.readers import column_names, iter_batches, read_rows

DUPLICATES_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # exact | near_image | near_text
        pa.field("kept_sample_id", pa.string(), nullable=False),
        pa.field("kept_dataset", pa.string(), nullable=False),
        pa.field("value", pa.float64()),  # Hamming distance for near_image
        pa.field("threshold", pa.float64()),
    ]
)
_COLUMNS = ["sample_id", "dataset", "conversations", "image.path"]  # image.path: whether a row has an image
_HASHES = ["image_digest", "image_phash", "image_dhash"]


@dataclass
class ShardHashes:
    """Hashes of one shard's rows, in row order."""

    sample_ids: list[str]
    datasets: list[str]
    exact: np.ndarray  # [n, 2] uint64: normalized text + image bytes
    text: np.ndarray  # [n] uint64: normalized text only
    image: np.ndarray  # [n] uint64 perceptual hash (0 without an image)
    has_image: np.ndarray  # [n] bool: an image that could be hashed
    bands: np.ndarray | None  # [n, B] uint64 MinHash LSH keys, when near_text is on
    errors: list[tuple[str, str]] = field(default_factory=list)  # (sample_id, why its image was not hashed)


def image_bytes_of(image: dict | None, max_bytes: int = 64 << 20) -> bytes | None:
    """The encoded image of a samples row's ``image`` struct (embedded bytes, or read from its path)."""
    if image is None:
        return None
    if image.get("bytes") is not None:
        return image["bytes"]
    return read_image_bytes(Path(image["path"]), max_bytes) if image.get("path") else None


def _hashed_rows(path: str, max_image_bytes: int) -> Iterator[tuple[dict, str | None]]:
    """Each row's small columns with its hash columns filled, and why its image could not be hashed.

    Ingestion fills the hash columns from the decode it makes anyway, so images are not read
    here; a row with an image but no hashes (a shard some other writer made) is hashed from
    its bytes with the same function (``image_hash_columns``), reading only its row group's images.
    """
    offset, present = 0, set(column_names(path))
    for batch in iter_batches(path, columns=_COLUMNS + [c for c in _HASHES if c in present]):
        rows = [{**dict.fromkeys(_HASHES), **r} for r in batch.to_pylist()]
        missing = [i for i, r in enumerate(rows) if r["image"] is not None and r["image_digest"] is None]
        images = read_rows(path, [offset + i for i in missing], ["image"])
        offset += len(rows)
        errors: dict[int, str] = {}
        for i, image in zip(missing, images):
            try:
                data = image_bytes_of(image["image"], max_image_bytes)
                rows[i].update(image_hash_columns(data) if data is not None else {})
            except Exception as e:  # noqa: BLE001 - one bad image never stops the shard
                errors[i] = f"{type(e).__name__}: {e}"
        for i, r in enumerate(rows):
            yield r, errors.get(i)


def shard_hashes(path: str, cfg: DedupConfig, max_image_bytes: int = 64 << 20) -> ShardHashes:
    """Hashes of every row of one samples shard (a bad image is reported, never raised)."""
    hasher = MinHasher.of(cfg) if cfg.near_text else None
    column = HASH_COLUMNS[cfg.image_hash]
    ids, dss, exact, text, img, has, bands, errors = [], [], [], [], [], [], [], []
    for row, err in _hashed_rows(path, max_image_bytes):
        norm = normalize_text(row["conversations"])
        ids.append(row["sample_id"])
        dss.append(sys.intern(row["dataset"]))
        if err is not None:
            errors.append((row["sample_id"], err))
        digest = row["image_digest"] if cfg.exact or cfg.near_image else None
        h = row[column] if digest is not None and cfg.near_image else None
        exact.append(np.frombuffer(exact_key(norm, digest), dtype=np.uint64))
        text.append(np.frombuffer(exact_key(norm, None)[:8], dtype=np.uint64)[0])
        img.append(h or 0)
        has.append(h is not None)
        if hasher is not None:
            bands.append(hasher.band_keys(shingles(norm, cfg.shingle)))
    n = len(ids)
    return ShardHashes(
        ids,
        dss,
        np.array(exact, dtype=np.uint64).reshape(n, 2),
        np.array(text, dtype=np.uint64),
        np.array(img, dtype=np.uint64),
        np.array(has, dtype=bool),
        np.array(bands, dtype=np.uint64).reshape(n, -1) if hasher is not None else None,
        errors,
    )


def _rows(kept_by: np.ndarray, kind: str, ids: list[str], dss: list[str], value=None, threshold=None) -> list:
    """(position, duplicates row) for every item with a keeper."""
    out = []
    for j in np.flatnonzero(kept_by >= 0):
        i = int(kept_by[j])
        v = float(value(i, j)) if value is not None else None
        row = {"sample_id": ids[j], "dataset": dss[j], "kind": kind, "kept_sample_id": ids[i], "kept_dataset": dss[i]}
        out.append((int(j), {**row, "value": v, "threshold": threshold}))
    return out


def resolve(hashes: list[ShardHashes], cfg: DedupConfig) -> pa.Table:
    """The duplicates table for shards given in recipe order; the earliest copy is always kept."""
    ids = [s for h in hashes for s in h.sample_ids]
    dss = [d for h in hashes for d in h.datasets]
    n = len(ids)
    rows: list[tuple[int, dict]] = []
    gone = np.zeros(n, dtype=bool)
    if cfg.exact and n:
        first = first_occurrence(np.concatenate([h.exact for h in hashes]))
        kept_by = np.where(first != np.arange(n), first, -1)
        rows += _rows(kept_by, "exact", ids, dss)
        gone |= kept_by >= 0
    if cfg.near_image and n:
        img = np.concatenate([h.image for h in hashes])
        has = np.concatenate([h.has_image for h in hashes])
        idx = np.flatnonzero(has & ~gone)
        groups = np.concatenate([h.text for h in hashes])[idx] if cfg.near_image_same_text else None
        i, j = near_pairs(img[idx], cfg.max_hamming, groups)
        kept_sub = resolve_pairs(len(idx), i, j)
        kept_by = np.full(n, -1, dtype=np.int64)
        kept_by[idx[kept_sub >= 0]] = idx[kept_sub[kept_sub >= 0]]
        rows += _rows(kept_by, "near_image", ids, dss, lambda a, b: hamming(img[a], img[b]), float(cfg.max_hamming))
        gone |= kept_by >= 0
    if cfg.near_text and n:
        i, j = lsh_pairs(np.concatenate([h.bands for h in hashes]))
        rows += _rows(resolve_pairs(n, i, j, gone), "near_text", ids, dss)
    rows.sort(key=lambda r: r[0])
    return pa.Table.from_pylist([r for _, r in rows], schema=DUPLICATES_SCHEMA)


def find_duplicates(shards: list[str], cfg: DedupConfig, max_image_bytes: int = 64 << 20) -> tuple[pa.Table, list]:
    """Duplicates across ``shards`` (paths in recipe order) and the per-row image hashing errors."""
    hashes = [shard_hashes(p, cfg, max_image_bytes) for p in shards]
    return resolve(hashes, cfg), [e for h in hashes for e in h.errors]
