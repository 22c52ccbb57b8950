"""A write that fails for lack of space becomes one clear error naming the path and its filesystem."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """No space (or quota) left where an output is written; the message names path, device and mount."""


def _mount_of(path: Path) -> tuple[str, str]:
    """(mount point, device) holding ``path``, from /proc/self/mounts when available."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    device = "unknown device"
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            for line in f:
                dev, mnt, fstype, *_ = line.split()
                if mnt.replace("\\040", " ") == str(p):
                    device = f"{dev} ({fstype})"  # the last entry for a mount point is the visible one
    except OSError:
        pass
    return str(p), device


def disk_full(path: str | Path) -> DiskFullError:
    """The error to raise when writing ``path`` ran out of space (an object is spooled in the temp folder)."""
    local = isinstance(path, (str, Path)) and "://" not in str(path)
    mount, device = _mount_of(Path(path) if local else Path(tempfile.gettempdir()))
    try:
        st = os.statvfs(mount)
        free = f"{st.f_bavail * st.f_frsize} bytes free of {st.f_blocks * st.f_frsize}"
    except OSError:
        free = "free space unknown"
    return DiskFullError(
        errno.ENOSPC,
        f"no space left on device {device} mounted at {mount} ({free}) while writing {path}; "
        "free space and rerun: finished work is kept",
    )


def is_disk_full(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in _FULL


def translate(e: BaseException, path: str | Path) -> BaseException:
    """``e`` as a DiskFullError naming ``path`` when it is a no-space error, else ``e`` itself."""
    if isinstance(e, DiskFullError) or not is_disk_full(e):
        return e
    return disk_full(path)
