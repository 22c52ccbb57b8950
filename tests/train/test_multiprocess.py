"""Two trainer processes started by the flow's launcher command (torchrun, gloo, CPU): disjoint data per rank,
finite loss, and one final checkpoint whose weights every rank holds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from magicvl.flows.train import launch_command, trainer_env
from magicvl.model.magicvl import MagicVL
from magicvl.model.train_config import LaunchConfig, TrainConfig
from magicvl.model.train_data import StageData, stage_shards
from magicvl.model.training import StageRun, weights_digest

STEPS = 3
PACKING = {"max_tokens": 384, "max_images": 2, "buffers": 2, "shuffle_window": 8}  # 16 images: >= 8 packs


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, tiny_dir, curated) -> tuple[Path, TrainConfig]:
    out = tmp_path_factory.mktemp("ranks") / "stage=4"
    cfg = TrainConfig(
        model=str(tiny_dir), bf16=False, zero_stage=2, seed=5, checkpoint_every=STEPS, log_every=1,
        record_samples=True, packing=PACKING, stages={4: {"steps": STEPS, "lr": 1e-3, "warmup_steps": 1}},
    )  # fmt: skip
    spec = StageRun(stage=4, init_from=str(tiny_dir), curated=str(curated), out_dir=str(out), train=cfg)
    out.mkdir(parents=True)
    (out / "run.json").write_text(spec.model_dump_json())
    env = {k: v for k, v in trainer_env().items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = launch_command(out / "run.json", LaunchConfig(launcher="torchrun", nproc_per_node=2))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
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
