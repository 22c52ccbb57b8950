"""Stable identities: sample ids, content checksums, cache keys, code version."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from magicvl.storage.fs import ObjectStoreOptions, is_uri
from magicvl.storage.fs import stat as fs_stat

_SEP = "\x1f"


def stable_hash(*parts: Any, size: int = 16) -> str:
    """Hex blake2b of the canonical JSON of ``parts`` (same input → same hash, any machine)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.blake2b(blob.encode("utf-8", "surrogatepass"), digest_size=size).hexdigest()


def sample_id(dataset: str, record_key: str) -> str:
    """Stable 128-bit id of a record from its dataset name and its key in the source."""
    blob = f"{dataset}{_SEP}{record_key}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def cache_key(
    input_fingerprint: str,
    step: str,
    version: str,
    params: dict[str, Any],
    model_identity: str | None = None,
) -> str:
    """Key of one step's output for one input shard; same key → the work is skipped."""
    return stable_hash(input_fingerprint, step, version, params, model_identity, size=16)


def source_fingerprint(path: str | Path, store: ObjectStoreOptions | None = None) -> str:
    """Cheap fingerprint of a raw input file: path, size and modification time.

    Raw sources can be terabytes; hashing their content on every run is not worth
    it. Outputs we write carry content checksums instead (see ``sha256_file``).
    An object (``s3://``) is identified by its URI, size, Last-Modified (1 s
    resolution on S3) and ETag, so an object rewritten within the same second
    with the same size still changes its fingerprint.
    """
    if is_uri(path):
        size, mtime_ns, etag = fs_stat(path, store)
        return stable_hash(str(path), size, mtime_ns, etag)
    st = os.stat(path)
    return stable_hash(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def sha256_file(path: str | Path, block: int = 1 << 22) -> str:
    """Content checksum of a file."""
    from magicvl.storage.outfs import as_path, is_remote

    h = hashlib.sha256()
    with as_path(path).open("rb") if is_remote(path) else open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def hash_cache_dir() -> Path:
    """Where remembered file hashes live: ``$MAGICVL_CACHE`` or ``~/.cache/magicvl``."""
    return Path(os.environ.get("MAGICVL_CACHE") or Path.home() / ".cache" / "magicvl") / "sha256"


def cached_sha256(path: str | Path) -> str:
    """SHA-256 of a file, remembered in a sidecar keyed by (resolved path, size, mtime_ns).

    A multi-gigabyte checkpoint is hashed once; touching it costs one re-hash
    (same bytes → same digest), replacing it changes the digest.
    """
    p = Path(path).resolve()
    st = p.stat()
    sidecar = hash_cache_dir() / f"{stable_hash(str(p), st.st_size, st.st_mtime_ns)}.txt"
    try:
        digest = sidecar.read_text(encoding="ascii").strip()
        if len(digest) == 64:
            return digest
    except OSError:
        pass
    digest = sha256_file(p)
    try:
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        tmp = sidecar.parent / f".{sidecar.name}.{os.getpid()}.tmp"
        tmp.write_text(digest, encoding="ascii")
        os.replace(tmp, sidecar)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return digest


def model_identity(path_or_id: str | None) -> str | None:
    """Identity of a model or tokenizer for cache keys: its content.

    A local folder is identified by every file's relative name and SHA-256
    (config, tokenizer and weights alike; see ``cached_sha256``), so two
    checkpoints with equal sizes and different weights differ, and a copy of a
    checkpoint is the same model. A hub id stands for itself.
    """
    if path_or_id is None:
        return None
    p = Path(path_or_id)
    if not p.is_dir():
        return str(path_or_id)
    h = hashlib.blake2b(digest_size=16)
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        h.update(f"{f.relative_to(p).as_posix()}{_SEP}{cached_sha256(f)}{_SEP}".encode())
    return f"local:{h.hexdigest()}"


@lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, memoised by (path, size, mtime) so a run hashes each checkpoint once."""
    return sha256_file(path)


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit (and '+dirty') when run from a checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("magicvl-curriculum")
    except PackageNotFoundError:
        v = "0+unknown"
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{v}+g{sha}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return v
