"""Where every output lives under a run's output root (Hive-style partitions).

::

    <root>/samples/dataset=<name>/part-<chunk>-<n>.parquet      ingested records
    <root>/quarantine/dataset=<name>/<step>-<chunk>-<n>.parquet  records that could not be used, with the error
    <root>/signals/<signal>/dataset=<name>/<shard>-<key>.parquet one table per signal, keyed by sample_id
    <root>/scores/dataset=<name>/<shard>.parquet                 per-sample ledger: metrics, scores, fate
    <root>/dropped/dataset=<name>/<shard>.parquet                dropped samples with their reason
    <root>/curated/stage=<k>/<shard>-<n>.parquet                 the curriculum
    <root>/_state/...                                            completion markers (what a rerun skips)
    <root>/_manifest.json                                        the run manifest
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_name(name: str, what: str = "name") -> str:
    """Names become path components: letters, digits, '_', '.', '-' only."""
    if not NAME_RE.match(name) or ".." in name:
        raise ValueError(f"invalid {what} {name!r}: use letters, digits, '_', '.', '-' (max 128)")
    return name


@dataclass(frozen=True)
class OutputLayout:
    """Paths of one run's outputs. Pure: creates nothing."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # tables -----------------------------------------------------------------
    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def signals(self) -> Path:
        return self.root / "signals"

    @property
    def scores(self) -> Path:
        return self.root / "scores"

    @property
    def dropped(self) -> Path:
        return self.root / "dropped"

    @property
    def curated(self) -> Path:
        return self.root / "curated"

    @property
    def state(self) -> Path:
        return self.root / "_state"

    @property
    def manifest(self) -> Path:
        return self.root / "_manifest.json"

    # partitions --------------------------------------------------------------
    def samples_dir(self, dataset: str) -> Path:
        return self.samples / f"dataset={dataset}"

    def quarantine_dir(self, dataset: str) -> Path:
        return self.quarantine / f"dataset={dataset}"

    def signal_dir(self, signal: str, dataset: str) -> Path:
        return self.signals / signal / f"dataset={dataset}"

    def signal_path(self, signal: str, dataset: str, shard_stem: str, key: str) -> Path:
        """A signal's output for one samples shard: the path is derived from its cache key."""
        return self.signal_dir(signal, dataset) / f"{shard_stem}-{key[:16]}.parquet"

    def scores_dir(self, dataset: str) -> Path:
        return self.scores / f"dataset={dataset}"

    def dropped_dir(self, dataset: str) -> Path:
        return self.dropped / f"dataset={dataset}"

    def stage_dir(self, stage: int) -> Path:
        return self.curated / f"stage={stage}"

    def marker(self, step: str, name: str) -> Path:
        """Completion marker of one unit of work (written last, atomically)."""
        return self.state / step / f"{name}.json"
