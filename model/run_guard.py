"""Keep one stage run to one set of live processes: a holder registry, parent-death handling.

Every process of a stage run on this host (the launching ``magicvl`` process and
each trainer rank) registers itself as a file ``<stage>/.running/<host>-<pid>``
holding its start time and its run (launching process, rendezvous address); it is
removed on a clean exit. A new run refuses to start while a registered process of
another run is alive on this host (same pid *and* start time, so a recycled pid
does not count); entries of dead processes are swept.

Trainer ranks also die with the run: a watchdog thread exits the process once
the launching ``magicvl`` process (``MAGICVL_LAUNCHER_PID``: pid and start time)
is gone, and the launcher (torchrun, deepspeed) gets ``PR_SET_PDEATHSIG``, so
killing ``magicvl`` by any signal never leaves a trainer writing checkpoints
into a folder a rerun is about to use (torchrun starts workers in a new
session, out of reach of the terminal's process group).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

LAUNCHER_PID_ENV = "MAGICVL_LAUNCHER_PID"
PR_SET_PDEATHSIG = 1


class StageBusy(RuntimeError):
    """A live process of an earlier run still holds the stage folder."""


def start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (``/proc/<pid>/stat`` field 22), None when it is not alive."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return fields[19] if fields[0] != "Z" else None  # a zombie is dead


def _entry(folder: Path, pid: int) -> Path:
    return folder / ".running" / f"{socket.gethostname()}-{pid}"


def launcher_id() -> str | None:
    """The launching magicvl process of this process's run (``MAGICVL_LAUNCHER_PID``), if any."""
    return os.environ.get(LAUNCHER_PID_ENV) or None


def rendezvous() -> str | None:
    """What every rank of one distributed run shares: its master address and port."""
    addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    return f"{addr}:{port}" if addr and port else None


def own_id() -> str:
    return f"{os.getpid()}:{start_time(os.getpid())}"


def _live_entries(folder: Path) -> list[tuple[int, dict]]:
    """``(pid, entry)`` of live processes on this host registered in ``folder``, but this one (entries of
    dead processes are removed)."""
    live, host = [], socket.gethostname()
    for p in sorted((folder / ".running").glob(f"{host}-*")):
        pid = int(p.name.rsplit("-", 1)[1])
        try:
            entry = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if pid == os.getpid():
            continue
        if start_time(pid) != entry.get("start"):
            p.unlink(missing_ok=True)
        else:
            live.append((pid, entry))
    return live


def _same_run(entry: dict, me: dict) -> bool:
    """Two processes of one run: the same launching process, or ranks of the same rendezvous."""
    same_launcher = me["launcher"] is not None and entry.get("launcher") == me["launcher"]
    same_rendezvous = me["rendezvous"] is not None and entry.get("rendezvous") == me["rendezvous"]
    return same_launcher or same_rendezvous


def holders(folder: Path, me: dict | None = None) -> list[int]:
    """Live registered processes of ``folder`` on this host but this one (and those of ``me``'s run)."""
    return [pid for pid, entry in _live_entries(folder) if me is None or not _same_run(entry, me)]


def register(folder: Path, stage: int, launcher: bool = False) -> Path:
    """Register this process (a trainer rank, or with ``launcher`` the launching process) in ``folder``;
    refuses while a live process of another run holds it."""
    me = {
        "start": start_time(os.getpid()),
        "launcher": own_id() if launcher else launcher_id(),
        "rendezvous": None if launcher else rendezvous(),
    }
    busy = holders(folder, me)
    if busy:
        raise StageBusy(
            f"stage {stage} is still held by running process(es) {busy} of an earlier run ({folder}): "
            f"stop them first (kill {' '.join(map(str, busy))})"
        )
    entry = _entry(folder, os.getpid())
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(json.dumps(me) + "\n")
    return entry


def unregister(folder: Path) -> None:
    _entry(folder, os.getpid()).unlink(missing_ok=True)


def kill_launched(folder: Path, sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` to every live process registered in ``folder`` that this process launched."""
    pids = [pid for pid, entry in _live_entries(folder) if entry.get("launcher") == own_id()]
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return pids


def parent_death_signal(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``Popen(preexec_fn=...)`` that makes the kernel send ``sig`` to the child when its parent dies
    (Linux ``PR_SET_PDEATHSIG``, kept across exec; a no-op elsewhere). libc is resolved here, in the parent,
    so the child only makes the call."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None
    return lambda: prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def launcher_env() -> dict[str, str]:
    """Environment entry naming this process (pid and start time) as the launcher of a run."""
    return {LAUNCHER_PID_ENV: own_id()}


def watch_launcher(interval: float = 0.5) -> threading.Thread | None:
    """Exit this process (SIGKILL) once the launching process named by ``MAGICVL_LAUNCHER_PID`` is gone
    (also when it is gone already); None when no launcher is named."""
    value = os.environ.get(LAUNCHER_PID_ENV, "")
    if ":" not in value:
        return None
    pid_text, born = value.split(":", 1)
    pid = int(pid_text)

    def watch() -> None:
        while start_time(pid) == born:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGKILL)

    thread = threading.Thread(target=watch, name="launcher-watchdog", daemon=True)
    thread.start()
    return thread
