"""The training key of a stage: what its weights are a function of.

A stage's checkpoint is reused only when it was trained from the same curated
data, train config and initial checkpoint. The key is a SHA-256 over

- ``data``: every curated shard the stage reads (path relative to the curated root
  and SHA-256 of its bytes: the folder manifest's when it lists the shard with the
  same size, else computed here; curated shards hold references, not pixels);
- ``config``: the stage's own settings, the data sources it reads and the global
  settings that change weights (not ``output``, ``log_every``, ``record_samples``,
  ``checkpoint_every`` or the launch addresses; the world size does count);
- ``init``: the initial checkpoint's own training key when it is a stage output
  (``TRAIN_KEY.json``, so retraining stage 1 invalidates 2-4), else the SHA-256 of
  its config and weight files.

The flow writes ``<stage>/train_key.json`` when a run starts and copies it into
``final/TRAIN_KEY.json`` when the stage completes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicvl.storage.fingerprint import sha256_file
from magicvl.storage.manifest import read_folder_manifest

if TYPE_CHECKING:
    from magicvl.model.train_config import TrainConfig

KEY_FILE = "TRAIN_KEY.json"  # inside final/
STARTED_KEY_FILE = "train_key.json"  # in the stage folder, from the start of a run
WEIGHT_FILES = ("config.json", "*.safetensors", "*.bin")


def shard_digests(curated: str | Path, train: TrainConfig, stage: int) -> list[tuple[str, str]]:
    """``(path relative to the curated root, sha256)`` of each shard the stage reads, sorted."""
    from magicvl.model.train_data import stage_shards  # torch: only where keys are computed

    root = Path(curated)
    manifests: dict[Path, dict[str, Any]] = {}
    out = set()
    for path, _ in stage_shards(root, train.sources(stage)):
        folder = path.parent
        if folder not in manifests:
            m = read_folder_manifest(folder) or {}
            manifests[folder] = {s["path"]: s for s in m.get("shards", [])}
        listed = manifests[folder].get(path.name)
        size = path.stat().st_size
        digest = listed["sha256"] if listed and listed.get("bytes") == size and listed.get("sha256") else None
        out.add((path.relative_to(root).as_posix(), digest or sha256_file(path)))
    return sorted(out)


def config_part(train: TrainConfig, stage: int) -> dict[str, Any]:
    """The settings that change a stage's weights."""
    launch = train.launch
    return {
        "stage": stage,
        "stage_train": train.stages[stage].model_dump(mode="json", exclude={"data"}),
        "sources": [s.model_dump(mode="json") for s in train.sources(stage)],
        "global": train.model_dump(
            mode="json",
            include={"zero_stage", "bf16", "grad_clip", "weight_decay", "betas", "seed", "packing"},
        ),
        "world_size": launch.nnodes * launch.nproc_per_node,
    }


def init_part(init_from: str | Path) -> str:
    """The initial checkpoint's identity: its own training key, else a digest of its files."""
    folder = Path(init_from)
    key_file = folder / KEY_FILE
    if key_file.is_file():
        return "stage:" + json.loads(key_file.read_text())["key"]
    h = hashlib.sha256()
    files = sorted({p for pattern in WEIGHT_FILES for p in folder.glob(pattern)})
    for p in files:
        h.update(p.name.encode() + b"\0" + sha256_file(p).encode())
    return "files:" + h.hexdigest()


def training_key(curated: str | Path, train: TrainConfig, stage: int, init_from: str | Path) -> dict[str, Any]:
    """``{"key": sha256, "data": ..., "config": ..., "init": ...}`` of one stage run."""
    parts = {
        "data": shard_digests(curated, train, stage),
        "config": config_part(train, stage),
        "init": init_part(init_from),
    }
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return {"key": key, **parts}


def stored_key(path: Path) -> str | None:
    """The key in a key file, None when it is absent or unreadable."""
    try:
        return json.loads(path.read_text())["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
