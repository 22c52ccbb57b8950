"""Advisory locks on an output root, so concurrent runs cannot interleave their writes.

Two levels (``fcntl.flock``, released by the kernel when the process dies, even on SIGKILL):

* the root lock ``_state/locks/root.lock``: ``curate`` holds it exclusively;
  ``score`` and ``combine`` hold it shared, so they refuse to start under a
  running ``curate`` and vice versa;
* part locks ``_state/locks/<part>.lock`` (e.g. ``signal-token_length``,
  ``combine``), held exclusively: two ``score`` runs of different signals run
  together, two runs of the same signal do not.

A lock that is taken raises ``OutputLockedError`` naming the root, the part
and the holder's pid (read from ``/proc/locks``).

On an ``s3://`` root the same locks are objects created with a conditional PUT
(``If-None-Match: *``, ``storage.objlock``): the holder's host and pid are in the
object, and one left by a killed run is removed by hand (the message says how).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from magicvl.storage.outfs import S3Path, as_path


class OutputLockedError(RuntimeError):
    """Another run holds the output root (or the same part of it)."""


def _holders(path: Path) -> list[int]:
    """Pids holding a flock on ``path`` (Linux /proc/locks; empty elsewhere)."""
    try:
        st = os.stat(path)
        ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            rows = [line.split() for line in f]
    except OSError:
        return []
    pids = {int(r[4]) for r in rows if len(r) > 5 and r[1] == "FLOCK" and r[5] == ident and r[4].isdigit()}
    return sorted(pids - {os.getpid()}) or sorted(pids)


@contextmanager
def _flock(path: Path, exclusive: bool, wait: bool, what: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            pids = _holders(path)
            holder = f"pid {', '.join(map(str, pids))}" if pids else "another process"
            raise OutputLockedError(
                f"{what} is in use by {holder} (lock {path}); wait for that run to finish or stop it"
            ) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def lock_output(
    root: str | Path, run: str, parts: Sequence[str] = (), exclusive: bool = False, wait_parts: bool = False
) -> Iterator[None]:
    """Hold ``root`` for a ``run`` (exclusive for curate, shared otherwise) and each of ``parts`` exclusively.

    ``wait_parts`` waits for a busy part instead of failing (e.g. the combine that ends a score run).
    """
    locks = as_path(root) / "_state" / "locks"
    if isinstance(locks, S3Path):
        from magicvl.storage.objlock import object_lock, object_root_lock

        root_lock = object_root_lock(locks, exclusive, f"output root {root} ({run})")
        part_lock = lambda part: object_lock(locks / f"{part}.lock", wait_parts, f"{part} of output root {root}")  # noqa: E731
    else:
        root_lock = _flock(locks / "root.lock", exclusive, False, f"output root {root} ({run})")
        part_lock = lambda part: _flock(locks / f"{part}.lock", True, wait_parts, f"{part} of output root {root}")  # noqa: E731
    with ExitStack() as stack:
        stack.enter_context(root_lock)
        for part in sorted(parts):
            stack.enter_context(part_lock(part))
        yield


@contextmanager
def lock_part(root: str | Path, part: str, wait: bool = True) -> Iterator[None]:
    """Hold one part of an output root exclusively (the caller already holds the root)."""
    path, what = as_path(root) / "_state" / "locks" / f"{part}.lock", f"{part} of output root {root}"
    if isinstance(path, S3Path):
        from magicvl.storage.objlock import object_lock

        with object_lock(path, wait, what):
            yield
        return
    with _flock(path, True, wait, what):
        yield
