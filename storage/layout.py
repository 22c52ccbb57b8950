"""Where every output lives under a run's output root. The one module that knows the paths.

::

    <root>/samples/<dataset>/part-<chunk>-<n>.parquet          ingested records
    <root>/quarantine/<dataset>/<step>-<chunk>-<n>.parquet      records that could not be used, with the error
    <root>/signals/<signal>/<dataset>/<shard>-<key>.parquet     one table per signal, keyed by sample_id
    <root>/scores/<dataset>/<shard>.parquet                     per-sample ledger: metrics, scores, fate
    <root>/dropped/<dataset>/<shard>.parquet                    dropped samples with their reason
    <root>/curated/stage-<k>/<shard>-<n>.parquet                the curriculum
    <root>/_state/<step>/...                                    completion markers (what a rerun skips)
    <root>/_state/manifests/<table path>.json                   folder manifests (rows, bytes, SHA-256 per shard)
    <root>/_runs/<run>/manifest.json, recipe.yaml               one record per run, never overwritten
    <root>/_manifest.json                                       a copy of the latest run's manifest
    <root>/_logs/<step>-<time>.log                              full tracebacks of a step's failed units
    <root>/report/                                              plots and the HTML report

Partition values (``dataset``, ``stage``) are stored once, as columns inside
every file; folder names carry no ``key=value``, so no reader infers a second,
differently typed copy of them from the path (pandas, pyarrow ``hive``, polars,
duckdb and Hugging Face ``datasets`` all read the files' own columns). Nothing
but data sits under a table folder: manifests and markers live under ``_state``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from magicvl.storage.outfs import OutPath, as_path

TABLES: tuple[str, ...] = ("samples", "quarantine", "signals", "scores", "dropped", "curated")
# how deep partition folders go under each table (signals: <signal>/<dataset>)
_PARTITION_DEPTH = {"signals": 2}

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_name(name: str, what: str = "name") -> str:
    """Names become path components: letters, digits, '_', '.', '-' only."""
    if not NAME_RE.match(name) or ".." in name:
        raise ValueError(f"invalid {what} {name!r}: use letters, digits, '_', '.', '-' (max 128)")
    return name


def stage_folder(stage: int) -> str:
    """The folder name of one curriculum stage under ``curated/`` (no ``=``: the stage is a file column)."""
    return f"stage-{int(stage)}"


@dataclass(frozen=True)
class OutputLayout:
    """Paths of one run's outputs. Pure: creates nothing."""

    root: OutPath  # a local Path, or an S3Path for an s3:// root (storage.outfs)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", as_path(self.root))

    # tables -----------------------------------------------------------------
    @property
    def samples(self) -> OutPath:
        return self.root / "samples"

    @property
    def quarantine(self) -> OutPath:
        return self.root / "quarantine"

    @property
    def signals(self) -> OutPath:
        return self.root / "signals"

    @property
    def scores(self) -> OutPath:
        return self.root / "scores"

    @property
    def dropped(self) -> OutPath:
        return self.root / "dropped"

    @property
    def curated(self) -> OutPath:
        return self.root / "curated"

    @property
    def state(self) -> OutPath:
        return self.root / "_state"

    @property
    def manifest(self) -> OutPath:
        """A copy of the latest run's manifest (each run's own is under ``runs``)."""
        return self.root / "_manifest.json"

    @property
    def runs(self) -> OutPath:
        return self.root / "_runs"

    def run_dir(self, run: str) -> OutPath:
        return self.runs / check_name(run, "run name")

    @property
    def logs(self) -> OutPath:
        return self.root / "_logs"

    def failure_log(self, step: str, stamp: str) -> OutPath:
        """``_logs/<step>-<stamp>.log``: the full tracebacks behind one step run's one-line failures."""
        return self.logs / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', step)}-{stamp}.log"

    @property
    def report(self) -> OutPath:
        return self.root / "report"

    @property
    def manifests(self) -> OutPath:
        return self.state / "manifests"

    def folder_manifest(self, folder: str | Path) -> OutPath:
        """Where the manifest of a table folder under this root lives (outside the folder readers scan)."""
        rel = as_path(folder).relative_to(self.root)
        if not rel.parts or rel.parts[0] not in TABLES:
            raise ValueError(f"{folder} is not a table folder under {self.root}")
        return self.manifests / f"{rel.as_posix()}.json"

    # partitions --------------------------------------------------------------
    def samples_dir(self, dataset: str) -> OutPath:
        return self.samples / dataset

    def quarantine_dir(self, dataset: str) -> OutPath:
        return self.quarantine / dataset

    def signal_dir(self, signal: str, dataset: str) -> OutPath:
        return self.signals / signal / dataset

    def signal_path(self, signal: str, dataset: str, shard_stem: str, key: str) -> OutPath:
        """A signal's output for one samples shard: the path is derived from its cache key."""
        return self.signal_dir(signal, dataset) / f"{shard_stem}-{key[:16]}.parquet"

    @property
    def quality(self) -> OutPath:
        """Filter measures and decisions, categories, judge answers, duplicates, verdicts."""
        return self.root / "quality"

    def quality_dir(self, kind: str, dataset: str | None = None) -> OutPath:
        return self.quality / kind / dataset if dataset else self.quality / kind

    def scores_dir(self, dataset: str) -> OutPath:
        return self.scores / dataset

    def dropped_dir(self, dataset: str) -> OutPath:
        return self.dropped / dataset

    def stage_dir(self, stage: int) -> OutPath:
        return self.curated / stage_folder(stage)

    def marker(self, step: str, name: str) -> OutPath:
        """Completion marker of one unit of work (written last, atomically)."""
        return self.state / step / f"{name}.json"


def find_root(folder: str | Path) -> OutPath:
    """The output root a table folder belongs to (``<root>/curated/stage-1`` → ``<root>``).

    The nearest ancestor whose relative path has a table's shape wins, preferring
    one that holds ``_state``; a folder outside any layout counts as its own table
    under its parent.
    """
    folder = as_path(folder)
    shaped = []
    for up, anc in enumerate([folder, *folder.parents][1:], start=1):
        rel = folder.relative_to(anc).parts
        if rel[0] in TABLES and len(rel) - 1 <= _PARTITION_DEPTH.get(rel[0], 1):
            shaped.append(anc)
        if up > 3:
            break
    for anc in shaped:
        if (anc / "_state").is_dir():
            return anc
    return shaped[0] if shaped else folder.parent


def folder_manifest_path(folder: str | Path) -> OutPath:
    """Where the manifest of ``folder`` lives: ``<root>/_state/manifests/<table path>.json``."""
    folder = as_path(folder)
    root = find_root(folder)
    rel = folder.relative_to(root)
    return root / "_state" / "manifests" / f"{rel.as_posix()}.json"
