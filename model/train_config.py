"""The training section of the recipe (``train:``): typed, validated, paper defaults.

One ``StageTrain`` per curriculum stage (LR, warmup, steps, batch, what trains,
which curated data it reads); global settings (ZeRO stage, bf16, clipping,
seed, checkpoint cadence, packing, launcher) sit beside them. The DeepSpeed
JSON is generated from this model by ``deepspeed_config`` and never edited by
hand.

Paper defaults (MagicVL-2B, section "Training"): packs of 16,384 tokens and up
to 48 images; AdamW with cosine decay; stage LRs 2e-4, 1e-5, 4e-5, 4e-5;
warmup 100 steps in stages 1-2 and a 0.03 ratio in stages 3-4; 65k, 90k, 140k,
250k steps. Stage 1 trains the projector, stage 2 the encoder and projector,
stages 3-4 everything.

``order`` is the paper's ablation (its Table 4): ``curriculum`` (training stage
k reads ``curated/stage-k``), ``categorized`` (captions of curated stages 1-2
split in two halves for training stages 1-2, everything of curated stages 3-4
split in two halves for stages 3-4, no complexity order inside) and
``all_at_once`` (one run with stage 4's settings over all curated data). A
stage's explicit ``data`` list overrides what ``order`` derives.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Part = Literal["vision", "projector", "language"]
Order = Literal["all_at_once", "categorized", "curriculum"]
STAGES = (1, 2, 3, 4)


class DataSource(BaseModel):
    """Curated rows one training stage reads: partitions, an optional category filter, a hash split."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: list[int] = Field(min_length=1, description="Curated partitions read (curated/stage-k).")
    categories: list[str] | None = Field(default=None, description="Keep only these categories (null: all).")
    split: tuple[int, int] | None = Field(
        default=None, description="[part, parts]: keep rows whose sample-id hash falls in this part."
    )

    @model_validator(mode="after")
    def _check(self) -> DataSource:
        bad = [s for s in self.stages if s not in STAGES]
        if bad:
            raise ValueError(f"stages must be in {list(STAGES)}, got {bad}")
        if self.split is not None and not 0 <= self.split[0] < self.split[1]:
            raise ValueError(f"split must be [part, parts] with 0 <= part < parts, got {list(self.split)}")
        return self


class StageTrain(BaseModel):
    """Hyperparameters of one training stage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lr: float = Field(gt=0, description="Peak learning rate (AdamW).")
    warmup_steps: int | None = Field(default=None, ge=0, description="Linear warmup in optimizer steps.")
    warmup_ratio: float | None = Field(default=None, ge=0, lt=1, description="Warmup as a share of `steps`.")
    steps: int = Field(gt=0, description="Optimizer steps of the stage.")
    trainable: list[Part] = Field(min_length=1, description="Model parts that train; the rest is frozen.")
    micro_batch: int = Field(default=1, gt=0, description="Packs per micro-batch per process.")
    grad_accum: int = Field(default=1, gt=0, description="Micro-batches per optimizer step.")
    data: list[DataSource] | None = Field(default=None, description="Explicit data (default: from `order`).")

    @model_validator(mode="after")
    def _one_warmup(self) -> StageTrain:
        if (self.warmup_steps is None) == (self.warmup_ratio is None):
            raise ValueError("give exactly one of warmup_steps or warmup_ratio")
        return self

    @property
    def warmup(self) -> int:
        """Warmup length in optimizer steps."""
        if self.warmup_steps is not None:
            return min(self.warmup_steps, self.steps)
        return math.ceil(self.warmup_ratio * self.steps)


def paper_stages() -> dict[int, StageTrain]:
    """The paper's four stages."""
    return {
        1: StageTrain(lr=2e-4, warmup_steps=100, steps=65_000, trainable=["projector"]),
        2: StageTrain(lr=1e-5, warmup_steps=100, steps=90_000, trainable=["vision", "projector"]),
        3: StageTrain(lr=4e-5, warmup_ratio=0.03, steps=140_000, trainable=["vision", "projector", "language"]),
        4: StageTrain(lr=4e-5, warmup_ratio=0.03, steps=250_000, trainable=["vision", "projector", "language"]),
    }


class PackingConfig(BaseModel):
    """Sequence packing: budget per pack and how many packs stay open at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(default=16_384, gt=0, description="Tokens per pack (text + visual).")
    max_images: int = Field(default=48, gt=0, description="Images per pack.")
    buffers: int = Field(default=16, gt=0, description="Open packs the greedy packer fills at once.")
    shuffle_window: int = Field(default=2048, gt=0, description="Rows shuffled together while streaming.")


class LaunchConfig(BaseModel):
    """How the training process is started (a subprocess of the Prefect task)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    launcher: Literal["torchrun", "deepspeed"] = "torchrun"
    nproc_per_node: int = Field(default=1, gt=0, description="Processes (GPUs) per node; CPU: gloo processes.")
    nnodes: int = Field(default=1, gt=0)
    node_rank: int = Field(default=0, ge=0)
    master_addr: str = "127.0.0.1"
    master_port: int = Field(default=0, ge=0, lt=65536, description="0: pick a free port (single node only).")
    hostfile: str | None = Field(default=None, description="deepspeed launcher: hostfile for several nodes.")

    @model_validator(mode="after")
    def _nodes(self) -> LaunchConfig:
        if self.node_rank >= self.nnodes:
            raise ValueError(f"node_rank must be below nnodes ({self.nnodes}), got {self.node_rank}")
        if self.nnodes > 1 and self.master_port == 0:
            raise ValueError("master_port must be set (not 0) when nnodes > 1: every node meets at the same port")
        if self.nnodes > 1 and self.launcher == "deepspeed" and not self.hostfile:
            raise ValueError("the deepspeed launcher needs a hostfile when nnodes > 1 (or use launcher: torchrun)")
        return self


class TrainConfig(BaseModel):
    """The ``train:`` section of a recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Stage-1 start: a MagicVL checkpoint folder (config.json + weights + tokenizer).")
    output: str = Field(default="train", description="Folder for stage runs (relative: under the output root).")
    order: Order = Field(default="curriculum", description="all_at_once | categorized | curriculum (Table 4).")
    stages: dict[int, StageTrain] = Field(default_factory=paper_stages)
    zero_stage: int = Field(default=2, ge=0, le=3, description="DeepSpeed ZeRO stage.")
    bf16: bool = Field(default=True, description="bf16 weights and compute (fp32 master weights).")
    grad_clip: float = Field(default=1.0, gt=0, description="Gradient norm clipping.")
    weight_decay: float = Field(default=0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    seed: int = 0
    checkpoint_every: int = Field(default=1000, gt=0, description="Checkpoint every N optimizer steps (and at end).")
    log_every: int = Field(default=10, gt=0, description="Log metrics every N optimizer steps.")
    record_samples: bool = Field(
        default=False, description="Write the ids of the samples each rank trained on to rank-<r>.json (audits)."
    )
    packing: PackingConfig = Field(default_factory=PackingConfig)
    launch: LaunchConfig = Field(default_factory=LaunchConfig)

    @model_validator(mode="before")
    @classmethod
    def _merge_stage_defaults(cls, data: Any) -> Any:
        """A stage given partly in YAML keeps the paper's values for the fields it omits."""
        if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
            return data
        merged = {k: v.model_dump(exclude_none=True) for k, v in paper_stages().items()}
        for key, value in data["stages"].items():
            k = int(key) if str(key).isdigit() else key
            if k not in merged:
                raise ValueError(f"stages: unknown stage {key!r}; stages are {list(STAGES)}")
            if isinstance(value, dict) and ("warmup_steps" in value or "warmup_ratio" in value):
                merged[k].pop("warmup_steps", None)
                merged[k].pop("warmup_ratio", None)
            merged[k] = {**merged[k], **(value or {})} if isinstance(value, dict) else value
        return {**data, "stages": merged}

    def stage_plan(self) -> list[int]:
        """Training stages ``train_curriculum`` runs, in order."""
        return [4] if self.order == "all_at_once" else list(STAGES)

    def sources(self, stage: int) -> list[DataSource]:
        """Curated data of one training stage: explicit ``data`` or derived from ``order``."""
        explicit = self.stages[stage].data
        if explicit is not None:
            return explicit
        if self.order == "curriculum":
            return [DataSource(stages=[stage])]
        if self.order == "all_at_once":
            return [DataSource(stages=list(STAGES))]
        if stage in (1, 2):
            return [DataSource(stages=[1, 2], categories=["caption"], split=(stage - 1, 2))]
        return [DataSource(stages=[3, 4], split=(stage - 3, 2))]

    def deepspeed_config(self, stage: int) -> dict[str, Any]:
        """The DeepSpeed JSON of one stage (generated, never hand-edited)."""
        st = self.stages[stage]
        return {
            "train_micro_batch_size_per_gpu": st.micro_batch,
            "gradient_accumulation_steps": st.grad_accum,
            "gradient_clipping": self.grad_clip,
            "zero_optimization": {"stage": self.zero_stage},
            "bf16": {"enabled": self.bf16},
            "zero_allow_untested_optimizer": True,  # torch AdamW as the client optimizer (no op compile)
            "steps_per_print": 1 << 30,
            "wall_clock_breakdown": False,
        }
