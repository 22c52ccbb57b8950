"""Manifests and completion markers (small JSON files, written atomically)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from magicvl.storage.diskfull import translate
from magicvl.storage.fingerprint import code_version
from magicvl.storage.layout import folder_manifest_path
from magicvl.storage.outfs import S3Path, as_path, is_remote
from magicvl.storage.verify import outputs_intact, stamp

MANIFEST_NAME = "_manifest.json"  # the run manifest at an output root (folder manifests live under _state)


def write_json(path: str | Path, obj: Any) -> Path:
    """Write JSON to ``path`` via a temporary file and an atomic rename (on S3: one atomic PutObject)."""
    path = as_path(path)
    text = json.dumps(obj, indent=2, sort_keys=False, default=str, ensure_ascii=False) + "\n"
    if isinstance(path, S3Path):
        path.write_text(text)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)  # on a full disk the temporary must not keep the space
        raise translate(e, path) from None
    return path


def read_json(path: str | Path) -> Any:
    if is_remote(path):
        return json.loads(as_path(path).read_text())
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _map_paths(obj: Any, fn) -> Any:
    """Apply ``fn`` to every string under a ``"path"`` key, anywhere in a JSON-like value."""
    if isinstance(obj, dict):
        return {k: fn(v) if k == "path" and isinstance(v, str) else _map_paths(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map_paths(v, fn) for v in obj]
    return obj


def load_marker(path: str | Path, root: str | Path) -> dict[str, Any] | None:
    """A completion marker with its output paths made absolute under ``root`` (None if unreadable).

    Markers store paths relative to the output root, so a moved or copied output
    root keeps its completed work.
    """
    try:
        marker = read_json(path)
    except (OSError, json.JSONDecodeError):
        return None
    base = as_path(root)
    return _map_paths(marker, lambda p: p if as_path(p).is_absolute() else str(base / p))


def save_marker(path: str | Path, root: str | Path, marker: dict[str, Any]) -> None:
    """Write a marker, storing output paths relative to ``root`` and each output's mtime (see verify)."""
    base = as_path(root)
    if "outputs" in marker:
        marker = {**marker, "outputs": stamp(marker["outputs"])}
    rel = lambda p: as_path(p).relative_to(base).as_posix() if _under(p, base) else p  # noqa: E731
    write_json(path, _map_paths(marker, rel))


def _under(path: str, base: Path | S3Path) -> bool:
    p = as_path(path)
    return type(p) is type(base) and p.is_relative_to(base)


def read_marker(path: str | Path, key: str, root: str | Path, verify: str | None = None) -> dict[str, Any] | None:
    """The marker's payload if it exists, matches ``key`` and its outputs are intact.

    What "intact" means (size, Parquet footer, mtime, SHA-256 with ``verify="sha256"``
    or ``$MAGICVL_VERIFY``) is ``storage.verify``; a damaged output is logged by path.
    """
    if not as_path(path).is_file():
        return None
    marker = load_marker(path, root)
    if marker is None or marker.get("key") != key:
        return None
    return marker if outputs_intact(path, marker.get("outputs", []), verify) else None


def write_marker(
    path: str | Path, key: str, outputs: list[dict[str, Any]], summary: dict[str, Any], root: str | Path
) -> None:
    """Record that a unit of work finished: its key, the files it wrote and its summary."""
    save_marker(path, root, {"key": key, "code_version": code_version(), "outputs": outputs, "summary": summary})


def write_folder_manifest(
    folder: str | Path,
    shards: list[dict[str, Any]],
    recipe_hash: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Manifest of one output folder: each shard with rows, bytes and SHA-256.

    Written to ``<root>/_state/manifests/<table path>.json`` (``storage.layout``), not
    inside the folder, so readers that scan the folder see only data.
    """
    folder = as_path(folder)
    rel = []
    for s in sorted(shards, key=lambda s: s["path"]):
        entry = dict(s)
        entry["path"] = as_path(s["path"]).relative_to(folder).as_posix()
        rel.append(entry)
    body = {
        "recipe_hash": recipe_hash,
        "code_version": code_version(),
        "rows": sum(s["rows"] for s in rel),
        "bytes": sum(s["bytes"] for s in rel),
        "shards": rel,
    }
    body.update(extra or {})
    return write_json(folder_manifest_path(folder), body)


def read_folder_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of an output folder, or None if it has none."""
    path = folder_manifest_path(folder)
    return read_json(path) if path.is_file() else None


def verify_folder_manifest(folder: str | Path) -> list[str]:
    """Problems found checking a folder against its manifest (empty list = intact)."""
    from magicvl.storage.fingerprint import sha256_file

    folder = as_path(folder)
    problems = []
    manifest = read_json(folder_manifest_path(folder))
    for s in manifest["shards"]:
        p = folder / s["path"]
        if not p.is_file():
            problems.append(f"{s['path']}: missing")
        elif sha256_file(p) != s["sha256"]:
            problems.append(f"{s['path']}: checksum mismatch")
    return problems
