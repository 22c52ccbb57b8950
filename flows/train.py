"""Prefect flows of the curriculum's last nodes: ``train_stage`` and ``train_curriculum``.

A stage runs as a *subprocess* of its Prefect task, started by ``torchrun`` or
the ``deepspeed`` launcher (recipe ``train.launch``), so one GPU, several GPUs
and several nodes run the same way (CPU: gloo). The task streams the trainer's
``METRIC`` lines (loss, LR, tokens/s, real-token share, images per pack) into
the run's logs and ends with a markdown artifact per stage with a loss curve.

Stage folders: ``<output root>/<train.output>/stage=<k>/`` holding ``run.json``,
``checkpoints/``, ``metrics.jsonl``, ``loss.png`` and ``final/`` (loadable with
``MagicVL.from_pretrained``). A stage is skipped only when its ``final/`` was
trained from the same curated data, train config and initial checkpoint (its
training key, ``model.train_key``); a killed stage resumes from its latest complete
checkpoint when rerun; Ctrl-C, SIGTERM or the death of this process stop every
process of the run (``flows.train_process``).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from magicvl.flows.recipe import Recipe, RecipeError, load_recipe
from magicvl.flows.report.runs import flow_run_name
from magicvl.flows.train_process import prepare_stage, run_launcher, seal_stage
from magicvl.model.run_guard import StageBusy, holders
from magicvl.model.train_config import LaunchConfig, TrainConfig
from magicvl.model.train_key import training_key
from magicvl.model.training import StageRun
from magicvl.storage.fs import is_uri

TRAINER_MODULE = "magicvl.model.training"


def train_section(recipe: Recipe) -> TrainConfig:
    """The recipe's ``train:`` section with its paths made absolute."""
    if recipe.train is None:
        raise RecipeError("the recipe has no `train:` section (see README, 'Training')")
    if is_uri(str(recipe.output_root)):
        raise RecipeError(
            f"training reads curated/ and samples/ from a local folder, and the output root {recipe.output_root} "
            "is on object storage: copy both to a local or shared folder (e.g. `aws s3 sync "
            f"{recipe.output_root}/curated DIR/curated`, the same for samples/) and train with `output: DIR`"
        )
    t = recipe.train
    out = Path(t.output).expanduser()
    output = out if out.is_absolute() else recipe.output_root / out
    return t.model_copy(update={"model": str(recipe.path(t.model)), "output": str(output)})


def stage_dir(train: TrainConfig, stage: int) -> Path:
    return Path(train.output) / f"stage={stage}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(run_json: Path, launch: LaunchConfig) -> list[str]:
    """The launcher command line that starts the trainer on this node."""
    port = str(launch.master_port or free_port())
    if launch.launcher == "torchrun":
        return [
            sys.executable, "-m", "torch.distributed.run",
            f"--nproc_per_node={launch.nproc_per_node}", f"--nnodes={launch.nnodes}",
            f"--node_rank={launch.node_rank}", f"--master_addr={launch.master_addr}", f"--master_port={port}",
            "-m", TRAINER_MODULE, str(run_json),
        ]  # fmt: skip
    cmd = [
        sys.executable, "-m", "deepspeed.launcher.runner",
        "--num_nodes", str(launch.nnodes), "--num_gpus", str(launch.nproc_per_node),
        "--master_addr", launch.master_addr, "--master_port", port,
    ]  # fmt: skip
    if launch.hostfile:
        cmd += ["--hostfile", launch.hostfile]
    return cmd + ["--module", TRAINER_MODULE, str(run_json)]


def trainer_env() -> dict[str, str]:
    """Environment of the trainer: unbuffered output, a project-local cache for DeepSpeed's compiled ops."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("TORCH_EXTENSIONS_DIR", str(Path("work/.torch_extensions").resolve()))
    return env


@task(name="run-stage")
def run_stage_process(run_json: str, launch: LaunchConfig, stage: int = 0) -> dict | None:
    """Start the launcher; stream METRIC/CHECKPOINT/RESUME lines into the run's logs; fail with the output's
    tail. Returns the trainer's ``RESUME`` record (checkpoint, step) when it resumed, else None."""
    logger = get_run_logger()
    cmd = launch_command(Path(run_json), launch)
    logger.info("launching: %s", " ".join(cmd))
    resumed: dict | None = None

    def on_line(line: str) -> None:
        nonlocal resumed
        if line.startswith("METRIC "):
            m = json.loads(line[7:])
            logger.info(
                "stage %d step %d: loss %.4f lr %.3g tokens/s %.0f real-token share %.3f images/pack %.1f",
                m["stage"], m["step"], m["loss"], m["lr"], m["tokens_per_s"], m["real_share"], m["images_per_pack"],
            )  # fmt: skip
        elif line.startswith("CHECKPOINT "):
            logger.info("checkpoint %s", line[11:])
        elif line.startswith("RESUME "):
            resumed = json.loads(line[7:])
            logger.info("resumed from %s: continues at step %d", resumed["checkpoint"], resumed["continues_at"])
            print(f"stage {stage}: resumed from {resumed['checkpoint']}, continues at step {resumed['continues_at']}")

    code, tail = run_launcher(cmd, trainer_env(), Path(run_json).parent, stage, on_line)
    if code != 0:
        raise RuntimeError(f"trainer exited with {code}; last output:\n" + "\n".join(tail))
    return resumed


@task(name="summarize-stage")
def summarize_stage(stage: int, folder: str, resumed: dict | None = None) -> str:
    """Loss-curve PNG + a markdown artifact with the stage's numbers; returns the artifact's markdown."""
    out = Path(folder)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    resume_line = (
        f"Resumed from `{resumed['checkpoint']}`, continued at step {resumed['continues_at']}."
        if resumed
        else "Trained from the start (no checkpoint to resume)."
    )
    png = plot_loss(rows, out / "loss.png", stage)
    mean = lambda k: sum(r[k] for r in rows) / len(rows)  # noqa: E731
    md = "\n".join(
        [
            f"# Training stage {stage}",
            "",
            "| steps | first loss | last loss | mean tokens/s | mean real-token share | mean images/pack "
            "| dropped rows |",
            "|---|---|---|---|---|---|---|",
            f"| {rows[-1]['step']} | {rows[0]['loss']:.4f} | {rows[-1]['loss']:.4f} | {mean('tokens_per_s'):.0f} | "
            f"{mean('real_share'):.3f} | {mean('images_per_pack'):.1f} | {rows[-1]['dropped']} |",
            "",
            f"Final weights: `{out / 'final'}` (`MagicVL.from_pretrained`).",
            "",
            resume_line,
            "",
            f"![loss curve](data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()})",
        ]
    )
    create_markdown_artifact(md, key=f"train-stage-{stage}", description=f"training stage {stage}")
    return md


def plot_loss(rows: list[dict], path: Path, stage: int) -> Path:
    """Loss against step, written as a small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3), dpi=80)
    ax = fig.add_subplot()
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], marker=".")
    ax.set(xlabel="optimizer step", ylabel="loss (assistant tokens)", title=f"stage {stage}")
    fig.tight_layout()
    fig.savefig(path)
    return path


@flow(name="train-stage", flow_run_name=flow_run_name)
def train_stage(recipe_path: str, stage: int, init_from: str | None = None, node_rank: int | None = None) -> str:
    """Train one stage (1-4) from ``init_from`` (default: the previous stage's final weights); returns final/.

    Several nodes (torchrun): every node runs this with its ``node_rank`` (overrides ``train.launch``); node 0
    seals the stage and summarizes it."""
    logger = get_run_logger()
    recipe = load_recipe(recipe_path)
    train = train_section(recipe)
    if node_rank is not None:
        launch = LaunchConfig.model_validate({**train.launch.model_dump(), "node_rank": node_rank})
        train = train.model_copy(update={"launch": launch})
    if stage not in train.stages:
        raise RecipeError(f"stage must be one of {sorted(train.stages)}, got {stage}")
    folder = stage_dir(train, stage)
    final = folder / "final"
    if init_from is None:
        prev = [k for k in train.stage_plan() if k < stage]
        init_from = str(stage_dir(train, prev[-1]) / "final") if prev else train.model
    if not Path(init_from, "config.json").is_file():
        raise FileNotFoundError(f"stage {stage} starts from {init_from}, which holds no MagicVL checkpoint")
    curated = recipe.output_root / "curated"
    busy = holders(folder)
    if busy:  # before anything in the folder changes
        raise StageBusy(f"stage {stage} is still held by running process(es) {busy} ({folder}): stop them first")
    state = prepare_stage(folder, training_key(curated, train, stage, init_from))
    if state == "done":
        logger.info("stage %d already trained from the same data, config and start: %s", stage, final)
        return str(final)
    if state == "retrain":
        logger.info("stage %d: data, config or initial checkpoint changed: earlier outputs removed", stage)
    spec = StageRun(stage=stage, init_from=init_from, curated=str(curated), out_dir=str(folder), train=train)
    run_json = folder / "run.json"
    run_json.write_text(spec.model_dump_json(indent=2) + "\n")
    logger.info("stage %d: from %s, data %s", stage, init_from, [s.model_dump() for s in train.sources(stage)])
    resumed = run_stage_process(str(run_json), train.launch, stage)
    if train.launch.node_rank != 0:
        return str(final)
    seal_stage(folder)
    summarize_stage(stage, str(folder), resumed)
    return str(final)


@flow(name="train-curriculum", flow_run_name=flow_run_name)
def train_curriculum(recipe_path: str) -> list[str]:
    """Run the recipe's stages in order (curriculum: 1 → 4), each from the previous stage's final weights;
    evaluate each on the held-out split (``flows.evaluate``) once it is trained."""
    from magicvl.flows.evaluate import evaluate_folder

    recipe = load_recipe(recipe_path)
    train = train_section(recipe)
    finals, init = [], train.model
    for stage in train.stage_plan():
        init = train_stage(recipe_path, stage, init_from=init)
        finals.append(init)
        if train.launch.node_rank == 0:
            evaluate_folder(stage, stage_dir(train, stage), Path(recipe.output_root), train.packing.max_tokens, False)
    return finals
