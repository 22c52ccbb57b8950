"""One unit of work: the skeleton every step shares (datatrove-style: the base owns the loop).

``Unit.run`` does, in order: input fingerprint → cache key → skip when the
completion marker matches → compute (the one hook a step fills) → atomic
writes through ``Outputs`` → completion marker → removal of the unit's stale
outputs. ``sweep`` is the one place that decides what is stale: a file in a
folder a unit (or a step) owns that the current run did not produce.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from magicvl.storage.fingerprint import cache_key
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import read_marker, write_marker
from magicvl.storage.options import StorageOptions
from magicvl.storage.outfs import S3Path, as_path
from magicvl.storage.readers import list_shards
from magicvl.storage.writer import ShardWriter, write_table

NOT_LOADED = object()  # ``run(backend=...)`` default: the unit loads its backend itself on a cache miss


@dataclass(frozen=True)
class UnitKey:
    """What a unit's output depends on; equal keys → the finished work is reused."""

    fingerprint: str  # content of the inputs (a shard's SHA-256, a source's size+mtime, ...)
    step: str
    version: str
    params: dict[str, Any]
    model: str | None = None  # storage.fingerprint.model_identity of the model, if any

    def digest(self) -> str:
        return cache_key(self.fingerprint, self.step, self.version, self.params, self.model)


@dataclass
class Outputs:
    """The files one unit writes: every write is atomic, every file is remembered for the marker."""

    storage: StorageOptions
    owned: list[tuple[Path, str]] = field(default_factory=list)  # (folder, name prefix) this unit owns
    files: list[dict[str, Any]] = field(default_factory=list)
    _open: list[ShardWriter] = field(default_factory=list)

    def own(self, folder: Path, prefix: str) -> None:
        """Declare that files ``folder/prefix*`` belong to this unit (stale ones are removed)."""
        if (as_path(folder), prefix) not in self.owned:
            self.owned.append((as_path(folder), prefix))

    def writer(self, folder: Path, stem: str, schema: pa.Schema, metadata: dict[str, str] | None = None) -> ShardWriter:
        """A rotating shard writer ``folder/stem-NNN.parquet`` (moved into place at ``close``)."""
        s = self.storage
        w = ShardWriter(folder, stem, schema, s.shard_max_rows, s.shard_max_bytes, s.compression, metadata)
        self.own(folder, f"{stem}-")
        self._open.append(w)
        return w

    def close(self, w: ShardWriter) -> list[dict[str, Any]]:
        """Finish a writer now (its shards are needed before the unit ends); returns their infos."""
        infos = [i.to_dict() for i in w.close()]
        self._open.remove(w)
        self.files += infos
        return infos

    def table(self, path: Path, table: pa.Table, prefix: str) -> dict[str, Any]:
        """Write one table to exactly ``path``; ``prefix`` names the sibling files it replaces."""
        self.own(path.parent, prefix)
        info = write_table(path, table, self.storage.compression).to_dict()
        self.files.append(info)
        return info

    def finish(self) -> list[dict[str, Any]]:
        for w in list(self._open):
            self.close(w)
        return self.files

    def abort(self) -> None:
        for w in self._open:
            w.abort()
        self._open = []


def sweep(folder: Path, keep: set[str], prefix: str = "") -> int:
    """Delete shards (and leftover temporaries) named ``prefix*`` under ``folder`` that are not in ``keep``."""
    folder = as_path(folder)
    if not folder.is_dir():
        return 0
    n = 0
    for p in list_shards(folder):
        if p.name.startswith(prefix) and str(p) not in keep:
            p.unlink(missing_ok=True)
            n += 1
    for p in folder.glob(f".{prefix}*.tmp-*"):  # a killed writer's temporary
        p.unlink(missing_ok=True)
    return n


def forget_datasets(layout: OutputLayout, keep: set[str]) -> list[str]:
    """Remove the outputs of datasets the recipe no longer lists: their shards in every table folder
    (samples, quarantine, signals, quality, scores, dropped), folder manifests and completion markers.
    Returns the datasets removed. Only a full ingest (every dataset of the recipe) calls this."""
    parents = [layout.samples, layout.quarantine, layout.scores, layout.dropped]
    for group in (layout.signals, layout.quality):
        parents += sorted(p for p in group.iterdir() if p.is_dir()) if group.is_dir() else []
    removed: set[str] = set()
    for parent in parents:
        for folder in sorted(p for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []:
            if folder.name in keep or folder.name.startswith("_"):  # signals/<name>/_images: not a dataset
                continue
            removed.add(folder.name)
            sweep(folder, set())
            try:
                layout.folder_manifest(folder).unlink(missing_ok=True)
            except ValueError:  # a folder with no manifest (quality records)
                pass
            _remove_empty(folder)
    steps = [p for p in layout.state.iterdir() if p.is_dir() and p != layout.manifests] if layout.state.is_dir() else []
    for step_dir in steps:
        for name in removed:
            (step_dir / f"{name}.json").unlink(missing_ok=True)
            if (step_dir / name).is_dir():
                for marker in (step_dir / name).rglob("*.json"):
                    marker.unlink()
                _remove_empty(step_dir / name)
    return sorted(removed)


def _remove_empty(folder: Path) -> None:
    """Remove ``folder`` and its subfolders if no file is left in them (on S3 an empty prefix is gone)."""
    if isinstance(folder, S3Path):
        return
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(d.iterdir()):
            d.rmdir()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


class Unit(ABC):
    """A unit of work over one input (a chunk, a shard, a dataset).

    Subclasses declare ``step`` (the marker folder), ``marker_name`` and
    ``key()``, and fill ``compute``. ``load_backend`` (default: nothing) is
    called once per cache miss, or once per actor when an actor pool runs the
    unit and hands its backend in.
    """

    step: ClassVar[str]

    def __init__(self, out_root: str, storage: StorageOptions) -> None:
        self.layout = OutputLayout(as_path(out_root, storage.s3))
        self.storage = storage

    @property
    @abstractmethod
    def marker_name(self) -> str:
        """The unit's name under ``_state/<step>/`` (e.g. ``<dataset>/<shard>``)."""

    @abstractmethod
    def key(self) -> UnitKey:
        """The unit's input fingerprint, parameters and model identity."""

    @abstractmethod
    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        """Do the work, writing every file through ``out``; return a small JSON-able summary."""

    def load_backend(self) -> Any:
        return None

    def setup(self) -> Any:
        """What an actor of a pool loads once and hands to every unit it runs (NeMo Curator's ``setup()``);
        by default this unit's own backend."""
        return self.load_backend()

    def needs_setup(self, force: bool = False) -> bool:
        """Whether running this unit needs ``setup()``'s backend (false: an actor step runs it as a plain task)."""
        return True

    def model_ref(self) -> str | None:
        """The model path or id ``setup`` loads (named when it fails to load); None for model-free units."""
        return None

    def marker(self) -> Path:
        return self.layout.marker(self.step, self.marker_name)

    def finished(self) -> dict[str, Any] | None:
        """The summary of this unit's finished work for the current key (None: it must run)."""
        done = read_marker(self.marker(), self.key().digest(), self.layout.root)
        return None if done is None else {**done["summary"], "outputs": done["outputs"], "cached": True}

    def run(self, force: bool = False, backend: Any = NOT_LOADED) -> dict[str, Any]:
        """Skip when finished for the same key, else compute, write, mark and clean up."""
        t0 = time.perf_counter()
        if not force and (done := self.finished()) is not None:
            return done
        key = self.key().digest()
        marker = self.marker()
        if backend is NOT_LOADED:
            backend = self.load_backend()
        out = Outputs(self.storage)
        try:
            summary = self.compute(out, backend)
            files = out.finish()
        except BaseException:
            out.abort()
            raise
        produced = {f["path"] for f in files}
        for folder, prefix in out.owned:
            sweep(folder, produced, prefix)
        summary = {**summary, "key": key, "seconds": round(time.perf_counter() - t0, 3)}
        write_marker(marker, key, files, summary, self.layout.root)
        return {**summary, "outputs": files, "cached": False}
