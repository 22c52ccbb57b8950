"""One training stage under DeepSpeed: ``setup`` (process entry) → ``main`` (build) → ``fit`` (the loop).

Started by a launcher (torchrun or ``deepspeed``) once per process:
``python -m magicvl.model.training <stage_dir>/run.json``. The run spec names
the stage, the checkpoint it starts from, the curated root and the recipe's
``train:`` section. Outputs in the stage folder::

    ds_config.json        the DeepSpeed config generated from the recipe
    checkpoints/<tag>/    DeepSpeed checkpoints (model, optimizer, scheduler) + data position + RNG
                          (CPU, CUDA, NumPy, Python); written as ``<tag>.partial``, renamed with a
                          ``COMPLETE`` marker once every rank wrote it (resume loads the newest complete
                          tag; a start removes half-written ones)
    metrics.jsonl         one line per logged step (rank 0; a resume drops rows after its step)
    final/                MagicVL.from_pretrained-loadable weights + tokenizer (written last)
    rank-<r>.json         per process: the digest of its final weights (equal on every rank), and with
                          ``train.record_samples`` the ids of the samples it trained on

Freezing: the parts not in the stage's ``trainable`` list get
``requires_grad=False`` and are left out of the optimizer. In fp32 runs they
stay bit-identical; with ``bf16`` the saved weights are the bf16 copies (exact
when the input checkpoint holds bf16 values, as released checkpoints do).
Rank 0 prints ``METRIC {json}`` lines on stdout; the Prefect task streams them
into the run's logs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import shutil
import socket
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from magicvl.model.magicvl import MagicVL
from magicvl.model.packing import token_losses
from magicvl.model.processor import MagicVLProcessor
from magicvl.model.run_guard import register, unregister, watch_launcher
from magicvl.model.tiny import is_tiny
from magicvl.model.train_config import TrainConfig
from magicvl.model.train_data import DataState, StageData, pack_stats, stage_shards

KEEP_CHECKPOINTS = 2
COMPLETE = "COMPLETE"  # marker in a checkpoint tag folder: every rank finished writing it
PARTIAL = ".partial"  # suffix of a tag folder while its ranks write it (renamed once complete)
TAG = re.compile(r"step-\d{8}")
MODEL_INPUTS = ("input_ids", "position_ids", "pixel_values", "image_grid", "patch_mask", "tile_image_index")


class StageRun(BaseModel):
    """What one stage run needs (written by the flow as ``run.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: int
    init_from: str  # MagicVL checkpoint folder (weights + tokenizer)
    curated: str  # curated root (holds stage=k/)
    out_dir: str
    train: TrainConfig

    @property
    def out(self) -> Path:
        return Path(self.out_dir)


def cosine_with_warmup(warmup: int, steps: int):
    """LR factor of optimizer step ``s``: linear warmup ``(s+1)/(warmup+1)``, then cosine to 0."""

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / (warmup + 1)
        progress = (s - warmup) / max(1, steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def freeze(model: MagicVL, trainable: list[str]) -> list[torch.nn.Parameter]:
    """Freeze everything but ``trainable`` parts; returns the trainable parameters."""
    model.requires_grad_(False)
    for part in trainable:
        getattr(model, part).requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def rng_state() -> dict[str, Any]:
    """CPU, CUDA (every device, when available), NumPy and Python RNG states."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def default_dist_env() -> None:
    """A single process started without a launcher gets rank 0 of 1 (DeepSpeed needs the variables)."""
    if "RANK" in os.environ:
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))


def setup(argv: list[str] | None = None) -> int:
    """Process entry: read the run spec, start the process group, train."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m magicvl.model.training <run.json>", file=sys.stderr)
        return 2
    spec = StageRun.model_validate_json(Path(args[0]).read_text())
    default_dist_env()
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path("work/.torch_extensions").resolve()))
    watch_launcher()  # the launching magicvl process gone (any signal): this rank exits too
    register(spec.out, spec.stage)  # refuses while an orphan of an earlier run still trains here
    try:
        main(spec)
    finally:
        unregister(spec.out)
    return 0


def main(spec: StageRun) -> None:
    """Build model, optimizer, scheduler and data; resume; fit; save the final weights."""
    import deepspeed

    cuda = torch.cuda.is_available()
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    cfg, st = spec.train, spec.train.stages[spec.stage]
    torch.manual_seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    random.seed(cfg.seed + rank)
    ds_config = cfg.deepspeed_config(spec.stage)
    if rank == 0:
        spec.out.mkdir(parents=True, exist_ok=True)
        (spec.out / "ds_config.json").write_text(json.dumps(ds_config, indent=2) + "\n")
        sweep_partial(spec.out)
    torch.distributed.barrier()  # no rank writes a checkpoint before the leftovers are gone
    model = MagicVL.from_pretrained(spec.init_from).train()
    processor = MagicVLProcessor.from_pretrained(spec.init_from)
    params = freeze(model, list(st.trainable))
    optimizer = torch.optim.AdamW(params, lr=st.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(st.warmup, st.steps))
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config)
    shards = stage_shards(spec.curated, cfg.sources(spec.stage))
    data = StageData(processor, shards, cfg.packing, cfg.seed, st.micro_batch, rank, world, cfg.record_samples)
    step, state = resume(engine, spec.out / "checkpoints", rank)
    if rank == 0:
        keep_metrics_until(spec.out / "metrics.jsonl", step)
    fit(engine, data, spec, step, state)
    digest = save_final(engine, processor, spec.out / "final", cfg.zero_stage, rank)
    record = {"rank": rank, "world": world, "weights_sha256": digest, "samples": data.trained}
    (spec.out / f"rank-{rank}.json").write_text(json.dumps(record) + "\n")
    if rank == 0 and is_tiny(spec.init_from):  # still a toy: keep the label for whoever loads it
        shutil.copy(Path(spec.init_from) / "TINY_RANDOM_CHECKPOINT.json", spec.out / "final")


def complete_tags(ckdir: Path) -> list[Path]:
    """Checkpoint tags every rank finished writing (``COMPLETE`` marker, final name), oldest first."""
    return sorted(p.parent for p in ckdir.glob(f"step-*/{COMPLETE}") if TAG.fullmatch(p.parent.name))


def sweep_partial(out: Path) -> list[Path]:
    """Remove what a killed run left half-written: checkpoint folders without ``COMPLETE`` or still under
    their temporary name, and ``final.tmp``; returns the removed folders."""
    ckdir = out / "checkpoints"
    done = set(complete_tags(ckdir))
    gone = [p for p in sorted(ckdir.glob("step-*")) if p.is_dir() and p not in done]
    gone += [p for p in [out / "final.tmp"] if p.exists()]
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
        print(f"removed a half-written {p}", flush=True)
    return gone


def resume(engine, ckdir: Path, rank: int = 0) -> tuple[int, DataState]:
    """Load the newest complete checkpoint if there is one; returns ``(step, data position)``.

    DeepSpeed's ``latest`` file is not trusted: it is created before its tag is written into it and
    before the other ranks' barrier, so a kill at that moment leaves it empty or ahead of the files.
    Rank 0 prints ``RESUME {"checkpoint", "step"}`` (the flow logs it and puts it in its artifact)."""
    tags = complete_tags(ckdir)
    if not tags:
        return 0, DataState()
    _, client = engine.load_checkpoint(str(ckdir), tag=tags[-1].name)
    set_rng_state(client["rng"])
    step = int(client["step"])
    if rank == 0:
        print("RESUME " + json.dumps({"checkpoint": str(tags[-1]), "step": step, "continues_at": step + 1}), flush=True)
    return step, DataState(**client["data"])


def keep_metrics_until(path: Path, step: int) -> None:
    """Drop metric rows after ``step`` (and a line a kill cut short): replayed steps are logged once."""
    if not path.is_file():
        return
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("step", 0) <= step:
            rows.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(r + "\n" for r in rows))
    tmp.rename(path)


def fit(engine, data: StageData, spec: StageRun, step: int, state: DataState) -> None:
    """The loop: ``grad_accum`` packed micro-batches per optimizer step; log, checkpoint."""
    cfg, st = spec.train, spec.train.stages[spec.stage]
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    batches = data.batches(state)
    metrics_path = spec.out / "metrics.jsonl"
    while step < st.steps:
        t0, losses, agg = time.perf_counter(), [], {"tokens": 0, "real_share": 0.0, "images_per_pack": 0.0}
        lr = engine.get_lr()[0]  # the LR this optimizer step uses (the scheduler steps inside engine.step())
        for _ in range(st.grad_accum):
            state, batch = next(batches)
            inputs = {k: batch[k].to(engine.device) for k in MODEL_INPUTS}
            logits = engine(**inputs).logits  # [B, T, V]
            loss_sum, mask = token_losses(logits, batch["labels"].to(engine.device))
            loss = loss_sum.sum() / mask.sum().clamp(min=1)
            engine.backward(loss)
            engine.step()
            losses.append(float(loss.detach()))
            for k, v in pack_stats(batch, cfg.packing.max_tokens).items():
                if k in agg:
                    agg[k] += v
        step += 1
        if rank == 0 and (step % cfg.log_every == 0 or step == st.steps or step == 1):
            row = {
                "stage": spec.stage,
                "step": step,
                "loss": sum(losses) / len(losses),
                "lr": lr,
                "tokens_per_s": agg["tokens"] * world / (time.perf_counter() - t0),
                "real_share": agg["real_share"] / st.grad_accum,
                "images_per_pack": agg["images_per_pack"] / st.grad_accum,
                "dropped": sum(data.stats.dropped.values()),
            }
            print("METRIC " + json.dumps(row), flush=True)
            with metrics_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
        if step % cfg.checkpoint_every == 0 or step == st.steps:
            save_checkpoint(engine, spec.out / "checkpoints", step, state, rank)


def save_checkpoint(engine, ckdir: Path, step: int, state: DataState, rank: int) -> None:
    """DeepSpeed checkpoint with data position and RNG under a temporary tag; once every rank wrote it, a
    ``COMPLETE`` marker and a rename to its final name; prune old complete tags."""
    client = {"step": step, "data": {"epoch": state.epoch, "packs": state.packs}, "rng": rng_state()}
    tag = ckdir / f"step-{step:08d}"
    partial = ckdir / f"{tag.name}{PARTIAL}"
    engine.save_checkpoint(str(ckdir), tag=partial.name, client_state=client, save_latest=False)
    torch.distributed.barrier()  # every rank's files are on disk
    if rank == 0:
        (partial / COMPLETE).write_text(json.dumps(client["data"]) + "\n")
        shutil.rmtree(tag, ignore_errors=True)  # a step saved again after a resume
        partial.rename(tag)
        for old in complete_tags(ckdir)[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        print(f"CHECKPOINT {json.dumps({'step': step, 'path': str(tag)})}", flush=True)


def save_final(engine, processor: MagicVLProcessor, out: Path, zero_stage: int, rank: int) -> str:
    """``MagicVL.save_pretrained`` + tokenizer into ``out`` (atomic rename; ZeRO-3 gathers first).

    Returns this rank's ``weights_digest`` (every rank computes it on its own copy)."""
    import deepspeed

    model: MagicVL = engine.module
    tmp = out.with_name(out.name + ".tmp")
    gathered = (
        deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None)
        if zero_stage == 3
        else nullcontext()
    )
    with gathered:
        digest = weights_digest(model)
        if rank == 0:
            _write_final(model, processor, tmp, out)
    torch.distributed.barrier()
    return digest


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every tensor of the state dict as float32, in name order (the same on equal weights)."""
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode() + b"\0")
        h.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _write_final(model: MagicVL, processor: MagicVLProcessor, tmp: Path, out: Path) -> None:
    """Copy the weights into a fresh module (ZeRO flattens parameters into shared buffers) and save."""
    fresh = MagicVL(model.config)
    fresh.load_state_dict({k: v.detach().float().clone() for k, v in model.state_dict().items()})
    shutil.rmtree(tmp, ignore_errors=True)
    fresh.save_pretrained(tmp)
    processor.tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


if __name__ == "__main__":
    sys.exit(setup())
