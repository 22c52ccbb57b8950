"""Cross-modal task complexity: C(Ms, Ml) and S_task from stored per-sample VLM losses.

The paper (MagicVL-2B, after NVILA): for a small model Ms and a large one Ml,

    C(Ms, Ml) = 1/n Σ_i 1{ Ms(x_i | v_i, p_i) > β · Ml(x_i | v_i, p_i) > δ }

i.e. the share of samples with loss_s > β·loss_l *and* β·loss_l > δ (both
strict), and S_task = ½ (C(2B, 7B) + C(7B, 72B)): the mean of C over the
configured pairs. C is a share, already in [0, 1]: it is not normalised.

Two recipe sections, split by what a change costs:

* ``cross_modal.models`` (``CrossModalConfig``): the VLMs, each with its own
  engine and resources. Each becomes one instance of the ``vlm_loss`` signal,
  ``vlm_loss@<name>``, whose stored losses are the metric ``vlm_loss@<name>``.
  Changing a model recomputes that model's losses.
* ``combine.task`` (``TaskRule``): β, δ, the pairs and the per-sample value.
  Changing these loads no model: ``combine`` recomputes C from stored losses.

Granularity (``combine.granularity``): ``dataset`` computes C per (dataset,
category) unit from mergeable per-unit counts [hits, n]; ``sample`` gives each
sample its own value: the indicator (0/1), or, with ``per_sample:
difference``, the loss difference loss_s − loss_l normalised over the
population; S_task is then the mean over pairs. A sample enters a pair only
when both of its losses exist.

Wiring: the signals step runs ``model_jobs(recipe.cross_modal, recipe.base_dir)``
as ``SignalJob(job.name, job.params, model_identity(job.params.model))``, one
actor pool per job with ``job.resources``; ``vlm_loss`` reads conversations and
images (``reads == "both"``); its backend is ``model.backends.vlm.load_vlm_backend``.
The combine step adds ``{job.name: "task"}`` to its metric axes, in model order,
and reads metric ``vlm_loss@<m>`` from the file's column ``base_name(metric)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from magicvl.scoring.signals import INSTANCE_SEP
from magicvl.scoring.signals.vlm_loss import VlmLossParams

LOSS_SIGNAL = "vlm_loss"
LOSS_PREFIX = f"{LOSS_SIGNAL}{INSTANCE_SEP}"
TASK_METRIC = "cross_modal"  # the task-axis value derived from the pairs (already in [0, 1])


# -- configuration ---------------------------------------------------------------------------------
class Resources(BaseModel):
    """What one model's actor pool asks of the cluster (not part of any cache key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_cpus: float = Field(default=1.0, ge=0.0, description="CPUs per actor.")
    num_gpus: float = Field(default=0.0, ge=0.0, description="GPUs per actor (fractions share a GPU).")
    actors: int = Field(default=1, ge=1, description="Actors in this model's pool.")


class CrossModalModel(VlmLossParams):
    """One VLM of the cross-modal comparison: its loss parameters plus its pool's resources."""

    resources: Resources = Field(default_factory=Resources, exclude=True)

    def params(self) -> VlmLossParams:
        return VlmLossParams(**{k: getattr(self, k) for k in VlmLossParams.model_fields})


class CrossModalConfig(BaseModel):
    """``cross_modal:`` in the recipe: name → VLM, smallest first (the default pairs follow this order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, CrossModalModel] = Field(min_length=2, description="Name → model, e.g. 2b, 7b, 72b.")

    @field_validator("models")
    @classmethod
    def _names(cls, v: dict[str, CrossModalModel]) -> dict[str, CrossModalModel]:
        bad = [n for n in v if not n or INSTANCE_SEP in n or "/" in n or n != n.strip()]
        if bad:
            raise ValueError(f"model names must be non-empty, without '{INSTANCE_SEP}', '/' or spaces: {bad}")
        return v


class TaskRule(BaseModel):
    """``combine.task:`` how C and S_task are computed (re-tunable: no model runs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    beta: float = Field(default=1.05, gt=0.0, description="Required loss ratio: loss_s > β·loss_l.")
    delta: float = Field(default=0.2, ge=0.0, description="Floor on β·loss_l (drops trivially easy samples).")
    pairs: list[tuple[str, str]] | None = Field(
        default=None, description="(small, large) model names; default: consecutive models of cross_modal."
    )
    per_sample: Literal["indicator", "difference"] = Field(
        default="indicator", description="Sample granularity: the 0/1 indicator, or loss_s − loss_l normalised."
    )

    @model_validator(mode="after")
    def _distinct(self) -> TaskRule:
        for s, lg in self.pairs or []:
            if s == lg:
                raise ValueError(f"pair ({s}, {lg}) compares a model with itself")
        return self


def loss_metric(model: str) -> str:
    """The metric (and signal instance) holding ``model``'s losses: ``vlm_loss@<model>``."""
    return f"{LOSS_PREFIX}{model}"


def is_loss_metric(metric: str) -> bool:
    return metric.startswith(LOSS_PREFIX)


def resolve_pairs(rule: TaskRule, metrics: list[str]) -> list[tuple[str, str]]:
    """The (small, large) pairs as metric names: explicit, or consecutive loss metrics in the given order."""
    models = [m for m in metrics if is_loss_metric(m)]
    if rule.pairs is None:
        return list(zip(models, models[1:]))
    return [(loss_metric(s), loss_metric(lg)) for s, lg in rule.pairs]


def check_pairs(cfg: CrossModalConfig | None, rule: TaskRule) -> None:
    """Every pair names configured models (the recipe's cross-field check)."""
    if rule.pairs is None:
        return
    known = set(cfg.models) if cfg else set()
    unknown = sorted({n for p in rule.pairs for n in p} - known)
    if unknown:
        raise ValueError(f"combine.task.pairs name models not in cross_modal.models: {unknown}")


@dataclass(frozen=True)
class ModelJob:
    """One cross-modal model as the signals step runs it: one ``vlm_loss`` instance, one actor pool."""

    name: str  # signal instance and metric: vlm_loss@<model>
    params: VlmLossParams
    resources: Resources


def model_jobs(cfg: CrossModalConfig | None, base_dir: Path) -> list[ModelJob]:
    """The signal jobs of ``cross_modal``, in model order; local paths resolved against ``base_dir``."""
    out = []
    for name, m in (cfg.models if cfg else {}).items():
        p = m.params()
        local = Path(p.model).expanduser()
        local = local if local.is_absolute() else (base_dir / local)
        if local.exists():
            p = p.model_copy(update={"model": str(local.resolve())})
        out.append(ModelJob(loss_metric(name), p, m.resources))
    return out


# -- arithmetic ----------------------------------------------------------------------------------
def indicator(loss_s: np.ndarray, loss_l: np.ndarray, beta: float, delta: float) -> np.ndarray:
    """1.0 where loss_s > β·loss_l > δ, else 0.0; NaN where either loss is missing."""
    s = np.asarray(loss_s, dtype=np.float64)
    large = np.asarray(loss_l, dtype=np.float64) * beta
    hit = ((s > large) & (large > delta)).astype(np.float64)
    hit[np.isnan(s) | np.isnan(large)] = np.nan
    return hit


def difference(loss_s: np.ndarray, loss_l: np.ndarray) -> np.ndarray:
    """loss_s − loss_l (NaN where either is missing)."""
    return np.asarray(loss_s, dtype=np.float64) - np.asarray(loss_l, dtype=np.float64)


def share(hits: np.ndarray) -> float:
    """C: the share of hits among samples with both losses (NaN when there are none)."""
    h = np.asarray(hits, dtype=np.float64)
    h = h[~np.isnan(h)]
    return float(h.mean()) if h.size else float("nan")


def c_score(loss_s: np.ndarray, loss_l: np.ndarray, beta: float, delta: float) -> float:
    """C(Ms, Ml) over one population of samples."""
    return share(indicator(loss_s, loss_l, beta, delta))


def mean_over_pairs(values: list[np.ndarray]) -> np.ndarray:
    """S_task per row: the mean over pairs that have a value (NaN where none has)."""
    if not values:
        return np.zeros(0)
    m = np.column_stack(values)  # [N, pairs]
    valid = ~np.isnan(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid.any(axis=1), np.where(valid, m, 0.0).sum(axis=1) / valid.sum(axis=1), np.nan)


def s_task(losses: dict[str, np.ndarray], pairs: list[tuple[str, str]], beta: float, delta: float) -> float:
    """S_task = mean over pairs of C(Ms, Ml), for one population (``losses``: model → per-sample loss)."""
    cs = [c_score(losses[s], losses[lg], beta, delta) for s, lg in pairs]
    cs = [c for c in cs if not np.isnan(c)]
    return float(np.mean(cs)) if cs else float("nan")


def pair_key(pair: tuple[str, str]) -> str:
    """Name of a pair's statistics: ``C(vlm_loss@2b,vlm_loss@7b)``."""
    return f"C({pair[0]},{pair[1]})"
