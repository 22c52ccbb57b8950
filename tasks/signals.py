"""Compute one signal over one samples shard, at a path derived from its cache key.

Cache key = (samples shard SHA-256, signal name, version, parameters, model
identity). ``SignalUnit`` is a ``tasks.unit.Unit``: same key → its marker
matches → skipped; ``force`` recomputes. This is how a single scoring task is rerun.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image

from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals import Signal, SignalParams, get_signal
from magicvl.storage.fingerprint import code_version
from magicvl.storage.images import ImageError, read_image_bytes
from magicvl.storage.options import StorageOptions
from magicvl.storage.readers import iter_batches
from magicvl.storage.schema import signal_schema
from magicvl.tasks.backends import load_backend
from magicvl.tasks.unit import Outputs, Unit, UnitKey


@dataclass(frozen=True)
class SignalJob:
    """A configured signal, as shipped to workers (picklable, no loaded model).

    It carries the ``Signal`` itself, so a worker needs no registry lookup (a
    signal registered at run time, e.g. in a test, works on Ray workers too).
    """

    signal: Signal
    params: SignalParams
    model_id: str | None  # storage.fingerprint.model_identity of the model/tokenizer, computed once
    instance: str | None = None  # e.g. "vlm_loss@7b": one configured instance of the signal
    tiny: bool = False  # the model/tokenizer is a tiny random local checkpoint (values are not meaningful)
    engine: str | None = None  # Signal.engine: package versions of a bundled model (e.g. rapidocr's PP-OCR)

    @classmethod
    def of(cls, signal: Signal, params: SignalParams, instance: str | None = None) -> SignalJob:
        from magicvl.storage.fingerprint import model_identity

        from magicvl.model.tiny import is_tiny

        ref = signal.model_ref(params)
        engine = signal.engine(params) if signal.engine else None
        return cls(signal, params, model_identity(ref), instance, bool(ref) and is_tiny(ref), engine)

    @classmethod
    def named(cls, name: str, params: SignalParams) -> SignalJob:
        """The job of a signal or of one of its instances (``vlm_loss@7b``: folder, marker and metric name)."""
        return cls.of(get_signal(name), params, name if name != get_signal(name).name else None)

    @property
    def name(self) -> str:
        return self.instance or self.signal.name

    @property
    def columns(self) -> tuple[str, ...]:
        return self.signal.columns

    @property
    def text_columns(self) -> tuple[str, ...]:
        return self.signal.text_columns

    @property
    def model_backed(self) -> bool:
        """Needs a loaded backend (tokenizer or model): runs on an actor pool, one load per actor."""
        return self.signal.backend is not None

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
            "engine": self.engine,
            "model_is_tiny_random": self.tiny_random,
        }

    @property
    def model_key(self) -> str | None:
        """The model part of the cache key: the model/tokenizer's identity, then the engine's packages."""
        if self.engine is None:
            return self.model_id
        return f"{self.model_id} | {self.engine}" if self.model_id else self.engine

    @property
    def tiny_random(self) -> bool:
        """True when the model/tokenizer is a tiny random checkpoint built locally (decided once, in ``of``)."""
        return self.tiny

    def unit_key(self, shard_sha: str) -> UnitKey:
        return UnitKey(shard_sha, self.name, self.signal.version, self.keyed_params(), self.model_key)

    def key(self, shard_sha: str) -> str:
        return self.unit_key(shard_sha).digest()

    def per_image(self, gray: Image.Image) -> dict[str, float]:
        return self.signal.per_image(gray, self.params)


FusedSignal = SignalJob  # a SignalJob that ingestion computes itself (see tasks.ingest.fused_signals)


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
    conversations = rb.column("conversations").to_pylist() if reads == "both" else [[] for _ in ids]
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
    return SampleBatch(ids, conversations, images, max_pixels)


class SignalUnit(Unit):
    """One signal over one samples shard; its file's path is derived from the cache key."""

    step = "signal"

    def __init__(
        self,
        job: SignalJob,
        dataset: str,
        shard: dict[str, Any],
        out_root: str,
        storage: StorageOptions,
        max_pixels: int,
        max_image_bytes: int,
        batch_size: int = 256,
    ) -> None:
        super().__init__(out_root, storage)
        self.job, self.dataset, self.shard = job, dataset, shard
        self.max_pixels, self.max_image_bytes, self.batch_size = max_pixels, max_image_bytes, batch_size
        self.stem = Path(shard["path"]).name.removesuffix(".parquet")

    @property
    def marker_name(self) -> str:
        return f"{self.job.name}/{self.dataset}/{self.stem}"

    def key(self) -> UnitKey:
        return self.job.unit_key(self.shard["sha256"])

    def load_backend(self) -> Any:
        return load_backend(self.job.signal, self.job.params)

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        s = self.job.signal
        columns = {"text": ["sample_id", "conversations"], "image": ["sample_id", "image"]}.get(
            s.reads, ["sample_id", "conversations", "image"]
        )
        ids: list[str] = []
        cols: dict[str, list[np.ndarray]] = {c: [] for c in s.columns + s.text_columns}
        errors: list[str | None] = []
        for rb in iter_batches(self.shard["path"], columns=columns, batch_size=self.batch_size):
            batch = _batch(rb, s.reads, self.max_pixels, self.max_image_bytes)
            vals, errs = compute_rows(self.job, batch, backend)
            ids += batch.sample_ids
            errors += errs
            for c in s.columns:
                cols[c].append(np.asarray(vals[c], dtype=np.float64))
            for c in s.text_columns:
                cols[c].append(np.asarray(vals[c], dtype=object))
        merged = {c: np.concatenate(v) if v else np.zeros(0) for c, v in cols.items()}
        return self.write(out, ids, merged, errors)

    def write(self, out: Outputs, ids: list[str], cols: dict[str, np.ndarray], errors: list[str | None]) -> dict:
        """Write the values at the keyed path (the files of older keys beside it are stale)."""
        key = self.key().digest()
        path = self.layout.signal_path(self.job.name, self.dataset, self.stem, key)
        meta = {
            "cache_key": key,
            "signal": self.job.name,
            "version": self.job.signal.version,
            "params": self.job.params.model_dump_json(),
            "model": str(self.job.model_id),
            "engine": str(self.job.engine),
            "model_is_tiny_random": str(self.job.tiny_random).lower(),
            "input_sha256": self.shard["sha256"],
            "code_version": code_version(),
        }
        arrays = [pa.array(ids, pa.string())]
        arrays += [pa.array(cols[c], pa.float64(), from_pandas=True) for c in self.job.columns]
        arrays += [pa.array([v if isinstance(v, str) else None for v in cols[c]], pa.string()) for c in self.job.text_columns]
        arrays.append(pa.array(errors, pa.string()))
        table = pa.Table.from_arrays(arrays, schema=signal_schema(self.job.columns, self.job.text_columns))
        table = table.replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})
        info = out.table(path, table, prefix=f"{self.stem}-")
        return {
            "signal": self.job.name,
            "dataset": self.dataset,
            "shard": self.stem,
            "path": info["path"],
            "rows": len(ids),
            "errors": sum(e is not None for e in errors),
        }


class FusedSignalUnit(SignalUnit):
    """A signal whose values ingestion measured while it had the data in memory: same key, same file."""

    def __init__(self, job: SignalJob, dataset: str, shard: dict[str, Any], out_root: str, storage: StorageOptions,
                 ids: list[str], values: dict[str, np.ndarray], errors: list[str | None]) -> None:  # fmt: skip
        super().__init__(job, dataset, shard, out_root, storage, 0, 0)
        self.ids, self.values, self.errors = ids, values, errors

    def load_backend(self) -> Any:
        return None

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        return self.write(out, self.ids, self.values, self.errors)
