"""Run locks on an object-store output root: objects created with ``If-None-Match: *``.

S3 has no advisory locks and no process that dies releases anything, so a lock
is an object under ``_state/locks/`` that exactly one writer can create (the
conditional PUT fails for every other) and that its holder deletes when done.
The object holds who took it (host, pid, run, time), which the refusal names.

* ``root.lock``: ``curate``'s exclusive hold of the root;
* ``root.shared-<id>``: one per ``score``/``combine`` run (shared holds);
  exclusive and shared exclude each other: each side creates its own object,
  then looks for the other kind and backs off (deleting its own) if one is there;
* ``<part>.lock``: a part held exclusively (``wait``: poll until it is free).

A lock left by a killed run stays until removed: the message names the object
to delete once no run is active.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from magicvl.storage.lock import OutputLockedError
from magicvl.storage.outfs import S3Path

POLL_SECONDS = 1.0


def _body(what: str) -> bytes:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "what": what, "started": started}).encode()


def _refusal(lock: S3Path, what: str) -> OutputLockedError:
    try:
        holder = json.loads(lock.read_bytes())
        who = f"pid {holder['pid']} on {holder['host']} (since {holder['started']})"
    except Exception:  # gone meanwhile, or not ours to parse
        who = "another process"
    return OutputLockedError(
        f"{what} is in use by {who} (lock {lock}); wait for that run to finish or stop it; "
        f"if no run is active (a killed run leaves its lock), delete {lock}"
    )


@contextmanager
def object_lock(lock: S3Path, wait: bool, what: str) -> Iterator[None]:
    """Hold ``lock`` exclusively (poll every second while taken if ``wait``, else refuse)."""
    while not lock.create(_body(what)):
        if not wait:
            raise _refusal(lock, what)
        time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


@contextmanager
def object_root_lock(locks: S3Path, exclusive: bool, what: str) -> Iterator[None]:
    """Hold the root: exclusively (``root.lock``, no shared holder) or shared (no exclusive holder)."""
    exclusive_lock = locks / "root.lock"
    if exclusive:
        with object_lock(exclusive_lock, False, what):
            if shared := locks.glob("root.shared-*"):
                raise _refusal(shared[0], what)
            yield
        return
    mine = locks / f"root.shared-{uuid.uuid4().hex[:12]}"
    mine.write_bytes(_body(what))
    try:
        if exclusive_lock.is_file():
            raise _refusal(exclusive_lock, what)
        yield
    finally:
        mine.unlink(missing_ok=True)
