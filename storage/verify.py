"""What is checked before finished work is reused, so an output that lies is recomputed, not spread.

Checked on every reuse (cheap: a stat and a footer read per file):

* each output a completion marker names exists with its recorded size;
* a Parquet output's footer parses (a truncated shard fails here);
* its modification time is the one recorded when the marker was written; a
  file whose mtime changed (rewritten in place, or copied without ``-p``) is
  hashed and compared with its recorded SHA-256 instead of being trusted.

With ``MAGICVL_VERIFY=sha256`` (the ``--verify`` flag of the CLI sets it)
every reused output is hashed, which also catches a same-size corruption whose
mtime was put back. Signal files carry no recorded hash: they are checked by
footer and cache key, and in ``sha256`` mode read whole with Parquet page
checksums verified.

A damaged output is logged as a warning naming its path and the problem, and
the unit of work that wrote it runs again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from magicvl.storage.fingerprint import sha256_file
from magicvl.storage.outfs import as_path, parquet_source

VERIFY_ENV = "MAGICVL_VERIFY"
MODES = ("quick", "sha256")
log = logging.getLogger("magicvl.storage")


def verify_mode(mode: str | None = None) -> str:
    """``mode`` if given, else ``$MAGICVL_VERIFY``, else ``quick``."""
    mode = mode or os.environ.get(VERIFY_ENV) or "quick"
    if mode not in MODES:
        raise ValueError(f"{VERIFY_ENV}={mode!r}: expected one of {MODES}")
    return mode


def _footer_problem(path: Path) -> str | None:
    try:
        pq.read_metadata(parquet_source(path))
    except Exception as e:
        return f"Parquet footer unreadable ({type(e).__name__})"
    return None


def output_problem(out: dict[str, Any], mode: str) -> str | None:
    """Why the output ``out`` (a marker entry: path, bytes, sha256[, mtime_ns]) cannot be reused, or None."""
    path = as_path(out["path"])
    try:
        st = path.stat()
    except OSError:
        return "missing"
    if st.st_size != out["bytes"]:
        return f"{st.st_size} bytes, {out['bytes']} recorded"
    if path.suffix == ".parquet" and (problem := _footer_problem(path)):
        return problem
    changed = out.get("mtime_ns") is not None and st.st_mtime_ns != out["mtime_ns"]
    if (mode == "sha256" or changed) and out.get("sha256") and sha256_file(path) != out["sha256"]:
        return "SHA-256 differs from the one recorded when it was written"
    return None


def outputs_intact(marker_path: str | Path, outputs: list[dict[str, Any]], mode: str | None = None) -> bool:
    """True if every output can be reused; else warn naming the first damaged one."""
    mode = verify_mode(mode)
    for out in outputs:
        if problem := output_problem(out, mode):
            log.warning("damaged output %s: %s; recomputing its unit (marker %s)", out["path"], problem, marker_path)
            return False
    return True


def stamp(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Outputs with the modification time they have now (entries already stamped are kept)."""
    stamped = []
    for out in outputs:
        if isinstance(out, dict) and "path" in out and "bytes" in out and "mtime_ns" not in out:
            try:
                out = {**out, "mtime_ns": as_path(out["path"]).stat().st_mtime_ns}
            except OSError:
                pass
        stamped.append(out)
    return stamped


def reusable_parquet(path: str | Path, key: str, mode: str | None = None) -> bool:
    """A keyed Parquet output (e.g. a signal file) that exists, parses, carries ``key`` in its
    footer metadata and, in ``sha256`` mode, reads whole with its page checksums verified."""
    path = as_path(path)
    if not path.is_file():
        return False
    try:
        meta = pq.read_schema(parquet_source(path)).metadata or {}
        if meta.get(b"cache_key", b"").decode() != key:
            return False
        if verify_mode(mode) == "sha256":
            pq.ParquetFile(parquet_source(path), page_checksum_verification=True).read()
    except Exception as e:
        log.warning("damaged output %s: %s; recomputing it", path, f"unreadable ({type(e).__name__})")
        return False
    return True
