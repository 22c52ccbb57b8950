"""A stage run stops as one: a live orphan blocks a rerun, trainers die with their launching process, and
Ctrl-C/SIGTERM of the launching process stops a worker that a launcher put in a new session (as torchrun does).

Real processes, no DeepSpeed: the "trainer" is a small Python process that registers in the stage folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from magicvl.model.run_guard import StageBusy, holders, register, start_time, unregister

TRAINER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from magicvl.model.run_guard import register, watch_launcher
    watch_launcher(0.1)
    register(Path(sys.argv[1]), 3)
    print("REGISTERED", flush=True)
    time.sleep(120)
    """
)
# a launcher that starts the trainer in a new session and waits (torchrun's worker is out of the terminal's group)
LAUNCHER = textwrap.dedent(
    """
    import subprocess, sys
    p = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], start_new_session=True)
    sys.exit(p.wait())
    """
)
DRIVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from magicvl.flows.train_process import run_launcher
    cmd = [sys.executable, "-c", sys.argv[1], sys.argv[2], sys.argv[3]]
    code, _ = run_launcher(cmd, dict(__import__("os").environ), Path(sys.argv[3]), 3, lambda l: print(l, flush=True))
    """
)


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def alive(pid: int) -> bool:
    return start_time(pid) is not None


def trainer_pids(folder: Path, exclude: int) -> list[int]:
    return [p for p in holders(folder) if p != exclude]


def test_a_live_orphan_blocks_the_stage_and_a_dead_one_is_swept(tmp_path):
    folder = tmp_path / "stage=3"
    orphan = subprocess.Popen([sys.executable, "-c", TRAINER, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert orphan.stdout.readline().strip() == "REGISTERED"
        with pytest.raises(StageBusy, match=rf"stage 3 is still held by running process\(es\) \[{orphan.pid}\]"):
            register(folder, 3, launcher=True)
    finally:
        orphan.kill()
        orphan.wait()
    entry = register(folder, 3, launcher=True)  # the dead orphan's entry no longer counts ...
    assert [p.name for p in (folder / ".running").iterdir()] == [entry.name]  # ... and is removed
    assert json.loads(entry.read_text())["start"] == start_time(os.getpid())
    unregister(folder)
    assert not entry.exists()


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT"])
def test_stopping_the_launching_process_stops_the_worker_in_its_own_session(tmp_path, how):
    folder = tmp_path / "stage=3"
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, LAUNCHER, TRAINER, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert driver.stdout.readline().strip() == "REGISTERED"
        worker = trainer_pids(folder, exclude=driver.pid)
        assert len(worker) == 1 and os.getsid(worker[0]) != os.getsid(driver.pid)
        driver.send_signal(getattr(signal, how))
        driver.wait(timeout=30)
        assert wait_for(lambda: not alive(worker[0]), 15), f"worker {worker[0]} outlived its launching process"
        assert holders(folder) == []  # nothing holds the stage any more: a rerun may start
    finally:
        for pid in holders(folder):
            os.kill(pid, signal.SIGKILL)
        driver.kill()
