"""The DeepSpeed trainer as a subprocess (gloo, CPU): loss goes down; a SIGKILLed run resumes to the same weights."""

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
from magicvl.model.train_config import TrainConfig
from magicvl.model.training import StageRun, complete_tags

STEPS, EVERY = 16, 4


def write_spec(out: Path, tiny: Path, curated: Path) -> Path:
    cfg = TrainConfig(
        model=str(tiny),
        bf16=False,
        zero_stage=2,
        seed=3,
        checkpoint_every=EVERY,
        log_every=1,
        packing={"max_tokens": 1024, "max_images": 8, "buffers": 4, "shuffle_window": 8},
        stages={3: {"steps": STEPS, "lr": 3e-3, "warmup_steps": 1}},
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
    model = MagicVL.from_pretrained(uninterrupted / "final")
    start_model = MagicVL.from_pretrained(tiny_dir)
    assert not torch.equal(model.language.lm_head.weight, start_model.language.lm_head.weight)
    assert json.loads((uninterrupted / "ds_config.json").read_text())["zero_optimization"] == {"stage": 2}


def test_resume_after_sigkill_reaches_the_same_weights(uninterrupted, tmp_path, tiny_dir, curated):
    out = tmp_path / "stage=3"
    run_json = write_spec(out, tiny_dir, curated)
    proc = start(run_json)
    complete = out / "checkpoints"
    deadline = time.monotonic() + 600
    while not complete_tags(complete) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = complete_tags(complete)[-1].name
    assert killed_at < f"step-{STEPS:08d}" and not (out / "final").exists()
    (complete / "latest").write_text("")  # a kill between DeepSpeed creating `latest` and writing it
    finish(start(run_json))  # resumes from the newest complete checkpoint
    a = load_file(uninterrupted / "final" / "model.safetensors")
    b = load_file(out / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    resumed_steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert resumed_steps[-1] == STEPS and int(killed_at.split("-")[1]) + 1 in resumed_steps
