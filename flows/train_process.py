"""Run a stage's launcher so that the whole run stops together, and decide whether a stage is done.

``run_launcher`` registers the launching process in the stage folder (a rerun
refuses while a live process of an earlier run holds it: ``model.run_guard``),
starts the launcher (torchrun / deepspeed) in its own process group with
``PR_SET_PDEATHSIG`` (it gets SIGTERM when this process dies) and names this
process to the trainers (``MAGICVL_LAUNCHER_PID``: their watchdog exits when it
is gone). Ctrl-C, SIGTERM or any error here stop the launcher's group and every
trainer rank of the run before the error propagates.

``prepare_stage`` compares the stage's training key (``model.train_key``) with
what the folder holds: the same key and a ``final/`` → done; another key → the
folder's checkpoints, metrics, evaluation and final weights are removed, so a
re-tuned curriculum is retrained from its initial checkpoint instead of resumed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from magicvl.model.run_guard import kill_launched, launcher_env, parent_death_signal, register, unregister
from magicvl.model.train_key import KEY_FILE, STARTED_KEY_FILE, stored_key

STAGE_OUTPUTS = ("checkpoints", "final", "final.tmp", "metrics.jsonl", "loss.png", "eval.json", "ds_config.json")
GRACE_S = 10.0


def prepare_stage(folder: Path, key: dict[str, Any]) -> str:
    """``"done"`` (final weights of this key), ``"resume"`` (same key, not finished), ``"fresh"`` (nothing yet)
    or ``"retrain"`` (outputs of another key, now removed). Writes the key file of the run about to start."""
    final_key = stored_key(folder / "final" / KEY_FILE)
    if final_key == key["key"] and (folder / "final" / "model.safetensors").is_file():
        return "done"
    started = stored_key(folder / STARTED_KEY_FILE)
    had_outputs = any((folder / name).exists() for name in STAGE_OUTPUTS)
    state = "resume" if started == key["key"] and had_outputs else "fresh"
    if had_outputs and started != key["key"]:
        for name in STAGE_OUTPUTS:
            p = folder / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        state = "retrain"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STARTED_KEY_FILE).write_text(json.dumps(key, indent=1) + "\n")
    return state


def seal_stage(folder: Path) -> None:
    """Copy the run's key into ``final/`` (the stage is done for exactly this key)."""
    shutil.copy(folder / STARTED_KEY_FILE, folder / "final" / KEY_FILE)


def _stop(proc: subprocess.Popen, folder: Path) -> None:
    """SIGTERM the launcher's group and the run's trainers; SIGKILL what is left after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        kill_launched(folder, sig)
        try:
            proc.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM and not kill_launched(folder, 0):
            return


def _sigterm_as_interrupt(signum, frame) -> None:  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def run_launcher(
    cmd: list[str], env: dict[str, str], folder: Path, stage: int, on_line: Callable[[str], None]
) -> tuple[int, list[str]]:
    """Run the launcher to its end, passing each output line to ``on_line``; returns ``(exit code, tail)``.

    Raises ``StageBusy`` when a live process of an earlier run holds ``folder``."""
    register(folder, stage, launcher=True)
    tail: deque[str] = deque(maxlen=40)
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    except ValueError:  # not the main thread: SIGTERM kills this process, the trainers' watchdog follows
        pass
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**env, **launcher_env()},
            bufsize=1,
            start_new_session=True,
            preexec_fn=parent_death_signal(signal.SIGTERM),
        )
        try:
            for line in proc.stdout:
                line = line.rstrip()
                tail.append(line)
                on_line(line)
            return proc.wait(), list(tail)
        except BaseException:
            _stop(proc, folder)
            raise
        finally:
            proc.stdout.close()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        unregister(folder)
