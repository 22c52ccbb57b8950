"""Image-only signals once per distinct image: the per-image value store and its two units.

A signal that reads only the image (``Signal.image_only``) has the same value
for every sample carrying the same image bytes (``image_digest``). Its values
live in a content-addressed store beside the per-sample tables:

    signals/<name>/_images/<image key[:16]>/<dataset>--<shard>-<assignment[:16]>.parquet
    (image_digest, the signal's columns, error)

The *image key* is the unit key without an input fingerprint: signal name,
version, keyed parameters and model identity. A changed parameter or model is
another key, so another folder, so every image is computed again.

* ``ImageValuesUnit`` (phase A): one piece of the distinct digests assigned to an
  owner samples shard (each decoded once; an owner's digests are split into
  pieces so the pool's workers stay busy to the end); one store file per piece
  (atomic write, then its marker: a killed run resumes exactly).
* ``ImageReuseUnit`` (phase B): the per-sample table of one samples shard, one
  row per sample, filled from the store by digest. Same key, path and marker as
  the standalone ``SignalUnit``, so readers, ``combine`` and fused tables do not
  change. It loads no model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from magicvl.storage.layout import OutputLayout
from magicvl.storage.options import StorageOptions
from magicvl.storage.readers import iter_batches, list_shards, read_table
from magicvl.tasks.backends import load_backend
from magicvl.tasks.steps.signals.rows import SKIPPED
from magicvl.tasks.steps.signals.units import SignalJob, SignalUnit, _batch, compute_rows
from magicvl.tasks.unit import Outputs, Unit, UnitKey

IMAGES = "_images"  # under signals/<name>/: invisible to list_shards, so to readers, combine and sweeps


def image_key(job: SignalJob) -> UnitKey:
    """What one image's value depends on: everything of the unit key but the shard."""
    return UnitKey("per-image", job.name, job.signal.version, job.keyed_params(), job.model_key)


def store_dir(layout: OutputLayout, job: SignalJob) -> Path:
    """The folder of ``job``'s per-image values (one folder per image key)."""
    return layout.signals / job.name / IMAGES / image_key(job).digest()[:16]


def assignment_digest(digests: list[bytes]) -> str:
    """A short hash of a list of image digests (an owner shard's assignment)."""
    h = hashlib.blake2b(digest_size=16)
    for d in sorted(digests):
        h.update(d)
    return h.hexdigest()


def store_schema(job: SignalJob) -> pa.Schema:
    fields = [pa.field("image_digest", pa.binary(), nullable=False)]
    fields += [pa.field(c, pa.float64()) for c in job.columns]
    fields += [pa.field(c, pa.string()) for c in job.text_columns]
    return pa.schema([*fields, pa.field("error", pa.string())])


def stored_digests(folder: Path) -> set[bytes]:
    """Every image digest the store holds a value for."""
    out: set[bytes] = set()
    for p in list_shards(folder):
        out.update(read_table(p, columns=["image_digest"]).column("image_digest").to_pylist())
    return out


def stored_values(folder: Path, digests: set[bytes], names: list[str]) -> dict[bytes, tuple[list, str | None]]:
    """digest → (values in ``names`` order, error) for the digests asked (the newest file wins a duplicate)."""
    found: dict[bytes, tuple[list, str | None]] = {}
    if not digests:
        return found
    wanted = pa.array(sorted(digests), pa.binary())
    for p in sorted(list_shards(folder), key=lambda q: q.stat().st_mtime):
        t = read_table(p)
        t = t.filter(pc.is_in(t.column("image_digest"), value_set=wanted))
        cols = [t.column(c).to_pylist() for c in names]
        for i, (d, e) in enumerate(zip(t.column("image_digest").to_pylist(), t.column("error").to_pylist())):
            found[d] = ([c[i] for c in cols], e)
    return found


class ImageValuesUnit(Unit):
    """Phase A: the values of the distinct images assigned to one owner samples shard."""

    step = "signal_images"

    def __init__(
        self,
        job: SignalJob,
        dataset: str,
        shard: dict[str, Any],
        digests: list[bytes],
        out_root: str,
        storage: StorageOptions,
        max_pixels: int,
        max_image_bytes: int,
        batch_size: int = 256,
    ) -> None:
        super().__init__(out_root, storage)
        self.job, self.dataset, self.shard, self.digests = job, dataset, shard, sorted(digests)
        self.max_pixels, self.max_image_bytes, self.batch_size = max_pixels, max_image_bytes, batch_size
        self.stem = Path(shard["path"]).name.removesuffix(".parquet")
        self.assignment = assignment_digest(self.digests)

    @property
    def marker_name(self) -> str:
        return f"{self.job.name}/{self.dataset}/{self.stem}-{self.assignment[:16]}"  # an owner runs ≥ 1 pieces

    def key(self) -> UnitKey:
        base = image_key(self.job)
        return UnitKey(f"{self.shard['sha256']}:{self.assignment}", base.step, base.version, base.params, base.model)

    def load_backend(self) -> Any:
        return load_backend(self.job.signal, self.job.params) if self.job.model_backed else None

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        names = list(self.job.columns + self.job.text_columns)
        want, seen = set(self.digests), set()
        digests: list[bytes] = []
        vals: dict[str, list] = {c: [] for c in names}
        errors: list[str | None] = []
        cols = ["sample_id", "image", "image_digest"]
        for rb in iter_batches(self.shard["path"], columns=cols, batch_size=self.batch_size):
            first = []  # rows of this batch that hold an assigned image not seen before
            for i, d in enumerate(rb.column("image_digest").to_pylist()):
                if d in want and d not in seen:
                    seen.add(d)
                    first.append(i)
            if not first:
                continue
            part = rb.take(pa.array(first, pa.int64()))
            batch = _batch(part, "image", self.max_pixels, self.max_image_bytes)
            v, errs = compute_rows(self.job, batch, backend)
            digests += part.column("image_digest").to_pylist()
            for c in names:
                vals[c] += list(v[c])
            errors += errs
        lost = want - seen
        if lost:  # the shard changed since the plan was made: a clear error, the rerun replans
            raise RuntimeError(f"{self.shard['path']}: {len(lost)} assigned images are not in the shard")
        self.write(out, digests, vals, errors)
        return {"signal": self.job.name, "dataset": self.dataset, "shard": self.stem,
                "images": len(digests), "errors": sum(e is not None for e in errors)}  # fmt: skip

    def write(self, out: Outputs, digests: list[bytes], vals: dict[str, list], errors: list[str | None]) -> None:
        arrays = [pa.array(digests, pa.binary())]
        arrays += [
            pa.array(np.asarray(vals[c], dtype=np.float64), pa.float64(), from_pandas=True) for c in self.job.columns
        ]
        arrays += [
            pa.array([v if isinstance(v, str) else None for v in vals[c]], pa.string()) for c in self.job.text_columns
        ]
        arrays.append(pa.array(errors, pa.string()))
        table = pa.Table.from_arrays(arrays, schema=store_schema(self.job))
        meta = {"cache_key": self.key().digest(), "image_key": image_key(self.job).digest(),
                "identity": str(self.job.identity())}  # fmt: skip
        table = table.replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})
        name = f"{self.dataset}--{self.stem}-{self.assignment[:16]}"
        out.table(store_dir(self.layout, self.job) / f"{name}.parquet", table, prefix=name)


class ImageReuseUnit(SignalUnit):
    """Phase B: one row per sample of a shard, each filled from the store by its image digest."""

    def load_backend(self) -> Any:
        return None

    def needs_model(self) -> bool:
        return False

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        s = self.job.signal
        names = list(s.columns + s.text_columns)
        t = read_table(self.shard["path"], columns=["sample_id", "image_digest"])
        ids, digests = t.column("sample_id").to_pylist(), t.column("image_digest").to_pylist()
        skip = self.skip_mask() if self.skip_mask() is not None else np.zeros(len(ids), dtype=bool)
        need = {d for d, k in zip(digests, skip) if d is not None and not k}
        found = stored_values(store_dir(self.layout, self.job), need, names)
        missing = need - set(found)
        if missing:  # phase A did not run or failed for these: never write a table with holes
            raise RuntimeError(f"{self.job.name}: {len(missing)} images of {self.shard['path']} have no stored value")
        cols = {c: np.full(len(ids), np.nan) for c in s.columns}
        cols.update({c: np.full(len(ids), None, dtype=object) for c in s.text_columns})
        errors: list[str | None] = [SKIPPED if k else None for k in skip]
        for i, d in enumerate(digests):
            if skip[i] or d is None:  # skipped, or no image (NaN, as the standalone signal gives)
                continue
            values, errors[i] = found[d]
            for c, v in zip(names, values):
                cols[c][i] = np.nan if v is None and c in s.columns else v
        summary = self.write(out, ids, cols, errors)
        return {**summary, "computed": 0, "skipped": int(skip.sum()), "reused": int(len(ids) - skip.sum()),
                "images": len(need), "model_loaded": False}  # fmt: skip
