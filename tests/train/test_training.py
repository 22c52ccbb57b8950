"""The DeepSpeed trainer as a subprocess (gloo, CPU): loss goes down with the logged LR schedule; killing the
launching process stops the trainer, and a rerun resumes to the same weights with one metrics row per step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from magicvl.model.magicvl import MagicVL
from magicvl.model.run_guard import holders, start_time
from magicvl.model.train_config import TrainConfig
from magicvl.model.training import StageRun, complete_tags, cosine_with_warmup

STEPS, EVERY, LR = 16, 4, 3e-3


def write_spec(out: Path, tiny: Path, curated: Path) -> Path:
    cfg = TrainConfig(
        model=str(tiny),
        bf16=False,
        zero_stage=2,
        seed=3,
        checkpoint_every=EVERY,
        log_every=1,
        packing={"max_tokens": 1024, "max_images": 8, "buffers": 4, "shuffle_window": 8},
        stages={3: {"steps": STEPS, "lr": LR, "warmup_steps": 1}},
    )
    spec = StageRun(stage=3, init_from=str(tiny), curated=str(curated), out_dir=str(out), train=cfg)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(spec.model_dump_json())
    return out / "run.json"


def start(run_json: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "magicvl.model.training", str(run_json)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_dir, curated) -> Path:
    out = tmp_path_factory.mktemp("run") / "stage=3"
    finish(start(write_spec(out, tiny_dir, curated)))
    return out


def test_loss_decreases_and_final_weights_load(uninterrupted, tiny_dir):
    rows = [json.loads(x) for x in (uninterrupted / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    first = sum(r["loss"] for r in rows[:4]) / 4
    last = sum(r["loss"] for r in rows[-4:]) / 4
    assert last < first - 0.5, (first, last)
    assert all(0 < r["real_share"] <= 1 and r["tokens_per_s"] > 0 for r in rows)
    schedule = cosine_with_warmup(1, STEPS)
    assert [r["lr"] for r in rows] == [LR * schedule(s - 1) for s in range(1, STEPS + 1)]  # the LR each step used
    assert rows[0]["lr"] == LR / 2 and rows[1]["lr"] == LR  # warmup, then the peak
    model = MagicVL.from_pretrained(uninterrupted / "final")
    start_model = MagicVL.from_pretrained(tiny_dir)
    assert not torch.equal(model.language.lm_head.weight, start_model.language.lm_head.weight)
    assert json.loads((uninterrupted / "ds_config.json").read_text())["zero_optimization"] == {"stage": 2}


DRIVER = (
    "import sys; from pathlib import Path; from magicvl.flows.train import launch_command, trainer_env; "
    "from magicvl.flows.train_process import run_launcher; from magicvl.model.train_config import LaunchConfig; "
    "run = Path(sys.argv[1]); cmd = launch_command(run, LaunchConfig()); "
    "code, _ = run_launcher(cmd, trainer_env(), run.parent, 3, lambda line: print(line, flush=True)); sys.exit(code)"
)  # what the flow's run-stage task does: magicvl → torchrun → trainer (in a session of its own)


def drive(run_json: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-c", DRIVER, str(run_json)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def metric_steps(out: Path) -> list[int]:
    path = out / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [json.loads(x)["step"] for x in lines if x.endswith("}")]


def test_killing_the_launcher_stops_the_trainer_and_a_rerun_resumes_to_the_same_weights(
    uninterrupted, tmp_path, tiny_dir, curated
):
    out = tmp_path / "stage=3"
    run_json = write_spec(out, tiny_dir, curated)
    proc = drive(run_json)
    complete = out / "checkpoints"
    deadline = time.monotonic() + 600
    while not (complete_tags(complete) and EVERY + 1 in metric_steps(out)) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    trainers = [p for p in holders(out) if p != proc.pid]
    proc.send_signal(signal.SIGKILL)  # the launching process dies; torchrun's worker is in its own session
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert trainers and all(wait_gone(pid) for pid in trainers), "a trainer outlived its launching process"
    killed_at = int(complete_tags(complete)[-1].name.split("-")[1])
    assert killed_at < STEPS and not (out / "final").exists() and max(metric_steps(out)) > killed_at
    (complete / "latest").write_text("")  # a kill between DeepSpeed creating `latest` and writing it
    half = [complete / "step-00000099.partial", complete / "step-00000098", out / "final.tmp"]
    for p in half:  # a kill while writing a checkpoint or the final weights
        p.mkdir()
        (p / "mp_rank_00_model_states.pt").write_bytes(b"half")
    rerun = drive(run_json)
    log, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, log[-3000:]
    resumed = json.loads(next(x for x in log.splitlines() if x.startswith("RESUME "))[7:])
    assert resumed == {
        "checkpoint": str(complete / f"step-{killed_at:08d}"),
        "step": killed_at,
        "continues_at": killed_at + 1,
    }
    assert not any(p.exists() for p in half)
    assert sorted(p.name for p in complete.iterdir() if p.is_dir()) == [
        f"step-{STEPS - EVERY:08d}",
        f"step-{STEPS:08d}",
    ]
    a = load_file(uninterrupted / "final" / "model.safetensors")
    b = load_file(out / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # one metrics row per step, and the replayed steps computed the same loss with the same LR
    assert metric_steps(out) == list(range(1, STEPS + 1))
    assert loss_and_lr(out) == loss_and_lr(uninterrupted)
    assert holders(out) == []


def loss_and_lr(out: Path) -> list[tuple[int, float, float]]:
    return [(r["step"], r["loss"], r["lr"]) for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]


def wait_gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while start_time(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
