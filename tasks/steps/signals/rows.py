"""Which rows of a samples shard a signal computes: the quality step's dropped rows are skipped.

Rule (one place, used by the signals step and by combine to find the file):

* A signal computed in the signals step (every signal that ingestion does not
  compute itself, i.e. the model-backed ones) skips the rows whose quality
  verdict is drop. Its file still has one row per shard row, in shard order;
  a skipped row has null values and the error ``SKIPPED``.
* The cache key gains ``skip_dropped`` = a hash of the dropped-row mask only
  when some row is dropped: with no drop the key (and file) is what it was.
  A filter-threshold edit that changes which rows are dropped changes the key;
  the new unit then reuses every value the previous file of the same signal,
  parameters, model and shard already holds and computes only the rows it
  lacks (``previous_values``). A threshold edit that drops the same rows
  changes nothing.
* Signals fused into ingestion were computed on every row before the quality
  step ran: they keep their all-rows key.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from magicvl.storage.images import stable_error
from magicvl.storage.outfs import parquet_source
from magicvl.storage.readers import list_shards, read_table
from magicvl.tasks.unit import UnitKey

log = logging.getLogger("magicvl.storage")

SKIPPED = "skipped: dropped by the quality step"


def dropped_mask(verdict_path: str | None) -> np.ndarray | None:
    """Bool [n] of rows whose verdict is drop; None without verdicts or when nothing is dropped."""
    if verdict_path is None:
        return None
    keep = read_table(verdict_path, columns=["keep"]).column("keep").to_numpy(zero_copy_only=False)
    dropped = ~keep.astype(bool)
    return dropped if dropped.any() else None


def mask_digest(mask: np.ndarray) -> str:
    """A short hash of a row mask (its length and bits)."""
    blob = len(mask).to_bytes(8, "little") + np.packbits(mask.astype(bool)).tobytes()
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def skip_key(base: UnitKey, mask: np.ndarray | None) -> UnitKey:
    """A signal unit's key (``base``: its all-rows key) when the rows in ``mask`` are skipped."""
    return base if mask is None else replace(base, params={**base.params, "skip_dropped": mask_digest(mask)})


@dataclass(frozen=True)
class Previous:
    """Values a previous file of the same signal, parameters, model and shard holds."""

    path: str
    values: dict[str, np.ndarray]  # column → [n] float64 or object (text columns)
    errors: list[str | None]
    computed: np.ndarray  # bool [n]: rows computed there (not skipped)

    def fill(self, rows: np.ndarray, cols: dict[str, np.ndarray], errors: list[str | None], floats: set[str]) -> None:
        """Copy the values and errors of ``rows`` into ``cols``/``errors`` (null floats become NaN)."""
        for i in rows:
            errors[i] = self.errors[i]
            for c, arr in cols.items():
                v = self.values[c][i]
                arr[i] = np.nan if c in floats and v is None else v


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed since it was listed
        return -1.0


def previous_values(folder: Path, stem: str, base_key: str, ids: list[str], columns: list[str]) -> Previous | None:
    """The newest earlier file for this shard whose ``base_key`` matches and whose rows follow ``ids``."""
    mine = [p for p in list_shards(folder) if p.name.startswith(f"{stem}-")]  # others' may be swept meanwhile
    for p in sorted(mine, key=_mtime, reverse=True):
        try:
            meta = pq.read_schema(parquet_source(p)).metadata or {}
            if meta.get(b"base_key", b"").decode() != base_key:
                continue
            t = read_table(p)
        except (OSError, pa.ArrowInvalid) as e:  # a damaged earlier file is no source of values
            log.warning("ignoring unreadable earlier signal file %s: %s", p, stable_error(e))
            continue
        if t.column("sample_id").to_pylist() != ids:
            continue
        errors = t.column("error").to_pylist()
        computed = np.array([e is None or not e.startswith(SKIPPED) for e in errors], dtype=bool)
        values = {c: np.array(t.column(c).to_pylist(), dtype=object) for c in columns}
        return Previous(str(p), values, errors, computed)
    return None
