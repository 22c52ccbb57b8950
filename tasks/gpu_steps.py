"""GPUs per model step of a recipe (pure): what each step reserves, and the per-node fit rules.

Each model-backed step reserves ``num_gpus`` per actor (Ray never splits one
actor over nodes). A vLLM-backed step with ``tensor_parallel: N`` spans N GPUs
with one model, so its ``num_gpus`` must be N. ``flows.gpu_plan.check_cluster``
applies ``fit_problems`` to the nodes of the cluster the run will use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from magicvl.scoring.signals import get_signal

Recipe = Any  # a tasks.recipe.Recipe (not imported: the recipe validates itself with these rules)

MODEL_SIGNALS = ("perplexity", "object_density", "ocr_text_density", "vlm_loss")


@dataclass(frozen=True)
class GpuStep:
    """One model step: where its GPUs are set in the recipe, how many, and its vLLM tensor parallelism."""

    gpus_field: str  # e.g. "resources.signals.perplexity.num_gpus"
    num_gpus: float
    tp_field: str  # e.g. "signals.perplexity.tensor_parallel"
    tensor_parallel: int
    vllm: bool


def _signal_steps(recipe: Recipe) -> list[GpuStep]:
    out = []
    for name, raw in recipe.signals.items():
        if name not in MODEL_SIGNALS:
            continue
        p = get_signal(name).params(**raw)
        vllm = getattr(p, "backend", None) == "vllm" or getattr(p, "engine", None) == "vllm"
        out.append(GpuStep(f"resources.signals.{name}.num_gpus", recipe.resources.signal(name).num_gpus,
                           f"signals.{name}.tensor_parallel", getattr(p, "tensor_parallel", 1), vllm))  # fmt: skip
    return out


def _generator_steps(recipe: Recipe) -> list[GpuStep]:
    refs: list[tuple[str, str, Any]] = [
        (f"judge.{n}", "judge", getattr(recipe.judge, n)) for n in ("coherence", "hallucination")
    ]
    refs.append(("categorize.vlm", "categorize", recipe.categorize.vlm))
    refs.append(("translate", "translate", recipe.translate))
    out = []
    for where, res, ref in refs:
        if ref is not None:
            gpus = getattr(recipe.resources, res).num_gpus
            out.append(GpuStep(f"resources.{res}.num_gpus", gpus, f"{where}.tensor_parallel",
                               ref.tensor_parallel, ref.backend == "vllm"))  # fmt: skip
    return out


def gpu_steps(recipe: Recipe) -> list[GpuStep]:
    """Every model-backed step of the recipe with its per-actor GPUs (signals, cross-modal VLMs, judges, ...)."""
    out = _signal_steps(recipe)
    for name, m in recipe.cross_modal.models.items() if recipe.cross_modal else []:
        at = f"cross_modal.models.{name}"
        vllm = m.engine == "vllm"
        out.append(GpuStep(f"{at}.resources.num_gpus", m.resources.num_gpus, f"{at}.tensor_parallel",
                           m.tensor_parallel, vllm))  # fmt: skip
    return out + _generator_steps(recipe)


def tensor_parallel_problem(step: GpuStep) -> str | None:
    """One line when a vLLM step's ``tensor_parallel`` differs from the GPUs its actor reserves."""
    if not step.vllm or (step.tensor_parallel == 1 and step.num_gpus <= 1):
        return None
    if step.num_gpus == step.tensor_parallel:
        return None
    return (f"{step.tp_field} is {step.tensor_parallel} but {step.gpus_field} is {step.num_gpus:g}: one vLLM actor "
            "spans tensor_parallel GPUs, so the two must be equal")  # fmt: skip


def fit_problems(steps: list[GpuStep], node_gpus: list[float], where: str) -> list[str]:
    """One line per step whose per-actor GPUs exceed every node (``node_gpus``: GPUs of each node)."""
    most = max(node_gpus, default=0)
    return [
        f"{s.gpus_field} is {s.num_gpus:g}: more GPUs per actor than any node of {where} has "
        f"(GPUs per node: {[round(g, 2) for g in node_gpus] or 'none'})"
        for s in steps
        if s.num_gpus > most
    ]
