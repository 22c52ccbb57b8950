"""Compute one signal over one samples shard, at a path derived from its cache key.

Cache key = (samples shard SHA-256, signal name, version, parameters, model
identity), plus the dropped-row mask when the quality step dropped rows of the
shard (``tasks.steps.signals.rows``: those rows are skipped). ``SignalUnit`` is a
``tasks.unit.Unit``: same key → its marker matches → skipped; ``force``
recomputes. This is how a single scoring task is rerun.
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
from magicvl.storage.readers import iter_batches, read_table
from magicvl.storage.schema import signal_schema
from magicvl.tasks.backends import load_backend
from magicvl.tasks.steps.signals.rows import SKIPPED, Previous, dropped_mask, previous_values, skip_key
from magicvl.tasks.unit import NOT_LOADED, Outputs, Unit, UnitKey


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
        from magicvl.model.tiny import is_tiny
        from magicvl.storage.fingerprint import model_identity

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


FusedSignal = SignalJob  # a SignalJob that ingestion computes itself (see tasks.steps.ingest.units.fused_signals)


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
        verdicts: str | None = None,
    ) -> None:
        super().__init__(out_root, storage)
        self.job, self.dataset, self.shard = job, dataset, shard
        self.max_pixels, self.max_image_bytes, self.batch_size = max_pixels, max_image_bytes, batch_size
        self.stem = Path(shard["path"]).name.removesuffix(".parquet")
        self.verdicts = verdicts  # the shard's quality verdicts: dropped rows are skipped (tasks.steps.signals.rows)
        self.reuse = True  # reuse values of an earlier file of the same signal and shard (off when forced)

    @property
    def marker_name(self) -> str:
        return f"{self.job.name}/{self.dataset}/{self.stem}"

    def skip_mask(self) -> np.ndarray | None:
        """Bool [n] of the shard's rows the quality step dropped (read once), None when none is skipped."""
        if not hasattr(self, "_skip"):
            self._skip = dropped_mask(self.verdicts)
        return self._skip

    def key(self) -> UnitKey:
        return skip_key(self.job.unit_key(self.shard["sha256"]), self.skip_mask())

    def load_backend(self) -> Any:
        """The signal's backend, or None when every row to compute is skipped or reused (no model load)."""
        return load_backend(self.job.signal, self.job.params) if self.needs_model() else None

    def setup(self) -> Any:
        """An actor's backend for every unit of the pool (loaded whatever this unit needs)."""
        return load_backend(self.job.signal, self.job.params)

    def model_ref(self) -> str | None:
        return self.job.signal.model_ref(self.job.params)

    def needs_setup(self, force: bool = False) -> bool:
        """Forced, or some row to compute is neither skipped nor reused from an earlier file."""
        return force or self.needs_model()

    def run(self, force: bool = False, backend: Any = NOT_LOADED) -> dict[str, Any]:
        self.reuse = not force
        return super().run(force, backend)

    def plan(self) -> tuple[list[str], np.ndarray, Previous | None, np.ndarray]:
        """The shard's ids, the skipped rows, the previous file's values (if reused), the rows to compute."""
        names = list(self.job.columns + self.job.text_columns)
        ids = read_table(self.shard["path"], columns=["sample_id"]).column("sample_id").to_pylist()
        folder = self.layout.signal_dir(self.job.name, self.dataset)
        base_key = self.job.key(self.shard["sha256"])
        prev = previous_values(folder, self.stem, base_key, ids, names) if self.reuse else None
        skip = self.skip_mask() if self.skip_mask() is not None else np.zeros(len(ids), dtype=bool)
        todo = ~skip & (np.ones(len(ids), dtype=bool) if prev is None else ~prev.computed)
        return ids, skip, prev, todo

    def needs_model(self) -> bool:
        """True unless a previous file holds every row that is not skipped."""
        return bool(self.plan()[3].any())

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        s = self.job.signal
        columns = {"text": ["sample_id", "conversations"], "image": ["sample_id", "image"]}.get(
            s.reads, ["sample_id", "conversations", "image"]
        )
        names = list(s.columns + s.text_columns)
        ids, skip, prev, todo = self.plan()
        cols = {c: np.full(len(ids), np.nan) for c in s.columns}
        cols.update({c: np.full(len(ids), None, dtype=object) for c in s.text_columns})
        errors: list[str | None] = [SKIPPED if k else None for k in skip]
        reused = ~skip & ~todo
        if prev is not None:
            prev.fill(np.flatnonzero(reused), cols, errors, set(s.columns))
        offset = 0
        for rb in iter_batches(self.shard["path"], columns=columns, batch_size=self.batch_size):
            want = todo[offset : offset + rb.num_rows]
            if want.any():
                part = rb if want.all() else rb.filter(pa.array(want))
                vals, errs = compute_rows(self.job, _batch(part, s.reads, self.max_pixels, self.max_image_bytes),
                                          backend)  # fmt: skip
                rows = offset + np.flatnonzero(want)
                for c in names:
                    cols[c][rows] = np.asarray(vals[c], dtype=np.float64 if c in s.columns else object)
                for r, e in zip(rows, errs):
                    errors[r] = e
            offset += rb.num_rows
        summary = self.write(out, ids, cols, errors)
        return {**summary, "computed": int(todo.sum()), "skipped": int(skip.sum()), "reused": int(reused.sum()),
                "model_loaded": backend is not None}  # fmt: skip

    def write(self, out: Outputs, ids: list[str], cols: dict[str, np.ndarray], errors: list[str | None]) -> dict:
        """Write the values at the keyed path (the files of older keys beside it are stale)."""
        key = self.key().digest()
        path = self.layout.signal_path(self.job.name, self.dataset, self.stem, key)
        meta = {
            "cache_key": key,
            "base_key": self.job.key(self.shard["sha256"]),  # the key without the skipped rows (for reuse)
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
        arrays += [
            pa.array([v if isinstance(v, str) else None for v in cols[c]], pa.string()) for c in self.job.text_columns
        ]
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


def fused_signals(names_params: list[tuple[str, Any]]) -> list[FusedSignal]:
    """The configured signals ingestion computes itself: per-image model-free ones, and text
    signals that need at most a tokenizer. Model-backed signals run in their own step."""
    fused = []
    for name, params in names_params:
        s = get_signal(name)
        if s.per_image is not None or (s.reads == "text" and s.backend in (None, "tokenizer")):
            fused.append(FusedSignal.of(s, params))
    return fused


def skipping_jobs(names_params: list[tuple[str, object]]) -> set[str]:
    """Names of the configured signals that skip dropped rows: all but those ingestion computes."""
    fused = {f.name for f in fused_signals(names_params)}
    return {name for name, _ in names_params if name not in fused}
