"""An output root is locked against a second concurrent curate; scores of different signals share it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from magicvl.storage.lock import OutputLockedError, lock_output, lock_part

HOLD = textwrap.dedent(
    """
    import sys, time
    from magicvl.storage.lock import lock_output
    with lock_output(sys.argv[1], sys.argv[2], sys.argv[4:], exclusive=sys.argv[3] == "x"):
        print("held", flush=True)
        time.sleep(60)
    """
)


@pytest.fixture
def holder(tmp_path):
    procs = []

    def start(run: str, exclusive: bool, *parts: str) -> subprocess.Popen:
        args = [sys.executable, "-c", HOLD, str(tmp_path), run, "x" if exclusive else "s", *parts]
        p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "held"
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_second_curate_is_refused_naming_the_holder(tmp_path, holder):
    p = holder("curate", True)
    for run, exclusive in (("curate", True), ("score", False)):
        with pytest.raises(OutputLockedError) as e:
            with lock_output(tmp_path, run, exclusive=exclusive):
                pass
        assert f"output root {tmp_path} ({run}) is in use by pid {p.pid}" in str(e.value)


def test_scores_of_different_signals_run_together_but_not_the_same_one(tmp_path, holder):
    p = holder("score", False, "signal-a")
    with lock_output(tmp_path, "score", ["signal-b"]):  # different signal: fine
        with lock_part(tmp_path, "combine"):
            pass
    with pytest.raises(OutputLockedError, match=f"signal-a of output root .* in use by pid {p.pid}"):
        with lock_output(tmp_path, "score", ["signal-a"]):
            pass
    with pytest.raises(OutputLockedError, match="curate"):
        with lock_output(tmp_path, "curate", exclusive=True):
            pass


def test_a_killed_holder_releases_the_root(tmp_path, holder):
    p = holder("curate", True)
    p.send_signal(signal.SIGKILL)
    p.wait()
    with lock_output(tmp_path, "curate", exclusive=True):
        pass
