"""Ctrl-C that stops a run within seconds: say so, say how to resume, stop what the run started.

The run's children (a local Ray, the temporary Prefect API) are stopped
directly: waiting for Prefect to report the state to an API that the same
Ctrl-C has just stopped is what used to take minutes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _table() -> dict[int, tuple[int, int]]:
    """pid → (parent pid, process group) of every process (Linux /proc; {} elsewhere)."""
    out = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(d.name)] = (int(fields[1]), int(fields[2]))
        except (OSError, IndexError, ValueError):
            continue
    return out


def run_processes(pid: int | None = None) -> list[int]:
    """What this run started: every process below ``pid`` (default: this one), children first, plus orphans
    left in its process group (a Ctrl-C reaches Ray's processes too, and one that dies first orphans its own)."""
    me = pid or os.getpid()
    table = _table()
    out, frontier = [], [me]
    while frontier:
        kids = [p for p, (pp, _) in table.items() if pp in frontier]
        out += kids
        frontier = kids
    group = table.get(me, (0, -1))[1]
    out += [p for p, (pp, g) in table.items() if g == group and pp == 1 and p != me and p not in out]
    return out


def stop_processes(pids: list[int], grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL whatever is still there after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while sig == signal.SIGTERM and time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _mark_cancelled(timeout: float = 3.0) -> None:
    """Tell a real Prefect server the run was cancelled (best effort, bounded wait)."""
    if not os.environ.get("PREFECT_API_URL") or "prefect" not in sys.modules:
        return  # the temporary API stops with the run
    try:
        from prefect.runtime import flow_run

        run_id = flow_run.id  # context variables: read here, in the interrupted thread
    except Exception:
        return
    if not run_id:
        return

    def mark() -> None:
        try:
            from prefect.client.orchestration import get_client
            from prefect.states import Cancelled

            with get_client(sync_client=True) as client:
                client.set_flow_run_state(run_id, Cancelled(message="interrupted (Ctrl-C)"), force=True)
        except Exception:
            pass

    t = threading.Thread(target=mark, daemon=True)
    t.start()
    t.join(timeout)


@contextmanager
def stop_on_interrupt(resume: str) -> Iterator[None]:
    """While inside: the first Ctrl-C stops the run at once (exit 130) and prints ``resume``; a second one too."""

    def handler(signum, frame) -> None:
        signal.signal(signal.SIGINT, lambda *_: os._exit(130))
        sys.stderr.write(
            f"\ninterrupted: stopping now. Finished work is kept; to resume (finished units are skipped), run:\n"
            f"  {resume}\n"
        )
        sys.stderr.flush()
        _mark_cancelled()
        stop_processes(run_processes())
        stop_processes(run_processes(), grace=1.0)  # anything started while the first ones were stopping
        sys.stdout.flush()
        os._exit(130)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
