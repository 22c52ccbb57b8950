"""Two trainer "nodes" started by the flow's launcher command (torchrun, two single-process nodes on 127.0.0.1,
gloo, CPU): disjoint data per rank, finite loss, one final checkpoint whose weights every rank holds, and the same
weights as one process with the same global batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from magicvl.flows.train import free_port, launch_command, trainer_env
from magicvl.model.magicvl import MagicVL
from magicvl.model.train_config import LaunchConfig, TrainConfig
from magicvl.model.train_data import StageData, stage_shards
from magicvl.model.training import StageRun, weights_digest

STEPS = 3
PACKING = {"max_tokens": 384, "max_images": 2, "buffers": 2, "shuffle_window": 8}  # 16 images: >= 8 packs


def config(tiny_dir: Path, grad_accum: int = 1) -> TrainConfig:
    return TrainConfig(
        model=str(tiny_dir), bf16=False, zero_stage=2, seed=5, checkpoint_every=STEPS, log_every=1,
        record_samples=True, packing=PACKING,
        stages={4: {"steps": STEPS, "lr": 1e-3, "warmup_steps": 1, "grad_accum": grad_accum}},
    )  # fmt: skip


def write_run(out: Path, cfg: TrainConfig, tiny_dir: Path, curated: Path) -> Path:
    spec = StageRun(stage=4, init_from=str(tiny_dir), curated=str(curated), out_dir=str(out), train=cfg)
    out.mkdir(parents=True)
    (out / "run.json").write_text(spec.model_dump_json())
    return out / "run.json"


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in trainer_env().items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}
    return {**env, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, tiny_dir, curated) -> tuple[Path, TrainConfig]:
    """Two single-process "nodes" on 127.0.0.1: two torchrun launchers meeting at one master port (gloo)."""
    out = tmp_path_factory.mktemp("ranks") / "stage=4"
    cfg = config(tiny_dir)
    run_json = write_run(out, cfg, tiny_dir, curated)
    port = free_port()
    nodes = [
        subprocess.Popen(
            launch_command(run_json, LaunchConfig(nnodes=2, node_rank=r, master_port=port)),
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for r in (0, 1)
    ]
    for node in nodes:
        log, _ = node.communicate(timeout=600)
        assert node.returncode == 0, log[-4000:]
    return out, cfg


def test_ranks_train_on_disjoint_packs_of_the_seeded_plan(two_ranks, processor, curated):
    out, cfg = two_ranks
    records = [json.loads((out / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world"]) for r in records] == [(0, 2), (1, 2)]
    seen = [r["samples"] for r in records]
    assert seen[0] and seen[1] and set(seen[0]).isdisjoint(seen[1])
    # the same seeded plan, computed here: global pack k went to rank k % 2, one pack per rank per step
    data = StageData(processor, stage_shards(curated, cfg.sources(4)), cfg.packing, cfg.seed)
    plan = [[s.key["sample_id"] for s in p.samples] for p in data.plan(0)]
    assert len(plan) >= 2 * STEPS  # the run stays inside epoch 0
    packs = plan[: 2 * STEPS]
    assert seen[0] == [i for k, p in enumerate(packs) if k % 2 == 0 for i in p]
    assert seen[1] == [i for k, p in enumerate(packs) if k % 2 == 1 for i in p]


def test_loss_is_finite_and_the_final_checkpoint_equals_every_ranks_weights(two_ranks):
    out, _ = two_ranks
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert all(0 < r["loss"] < float("inf") for r in rows)
    digests = {json.loads((out / f"rank-{r}.json").read_text())["weights_sha256"] for r in (0, 1)}
    assert len(digests) == 1  # both processes hold the same weights after the last step
    assert weights_digest(MagicVL.from_pretrained(out / "final")) in digests
    assert sorted(p.name for p in (out / "checkpoints" / f"step-{STEPS:08d}").glob("*optim_states.pt")) == [
        "zero_pp_rank_0_mp_rank_00_optim_states.pt",
        "zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ]  # ZeRO-2 partitions the optimizer state over the two ranks


def test_two_nodes_reach_the_weights_of_one_process_with_the_same_global_batch(two_ranks, tmp_path, tiny_dir, curated):
    """One process accumulating 2 packs per step sees the packs the two ranks see (global pack k went to rank k % 2)
    and averages the same two per-pack losses: equal weights up to the order of float sums."""
    out, _ = two_ranks
    single = tmp_path / "stage=4"
    run_json = write_run(single, config(tiny_dir, grad_accum=2), tiny_dir, curated)
    proc = subprocess.run(
        [sys.executable, "-m", "magicvl.model.training", str(run_json)],
        env={k: v for k, v in clean_env().items() if k not in ("MASTER_ADDR",)},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    ranks = [json.loads((out / f"rank-{r}.json").read_text())["samples"] for r in (0, 1)]
    seen = json.loads((single / "rank-0.json").read_text())["samples"]
    assert sorted(seen) == sorted(ranks[0] + ranks[1])  # the same global batches
    a = load_file(out / "final" / "model.safetensors")
    b = load_file(single / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    moved = load_file(tiny_dir / "model.safetensors")
    assert any(not torch.equal(a[k], moved[k]) for k in a)
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6), (k, (a[k] - b[k]).abs().max())


def test_launch_maps_onto_torchrun_rendezvous_and_the_deepspeed_launcher(tmp_path):
    run = tmp_path / "run.json"
    torchrun = launch_command(
        run, LaunchConfig(nnodes=2, node_rank=1, nproc_per_node=8, master_addr="10.0.0.1", master_port=29500)
    )
    assert torchrun[1:3] == ["-m", "torch.distributed.run"] and torchrun[-1] == str(run)
    assert {
        "--nproc_per_node=8",
        "--nnodes=2",
        "--node_rank=1",
        "--master_addr=10.0.0.1",
        "--master_port=29500",
    } <= set(torchrun)
    ds = launch_command(
        run,
        LaunchConfig(launcher="deepspeed", nnodes=2, master_addr="10.0.0.1", master_port=29500, hostfile="/h"),
    )
    pairs = dict(zip(ds[3::2], ds[4::2]))
    assert ds[1:3] == ["-m", "deepspeed.launcher.runner"] and ds[-3:] == [
        "--module",
        "magicvl.model.training",
        str(run),
    ]
    assert {k: pairs[k] for k in ("--num_nodes", "--master_addr", "--master_port", "--hostfile")} == {
        "--num_nodes": "2", "--master_addr": "10.0.0.1", "--master_port": "29500", "--hostfile": "/h",
    }  # fmt: skip
