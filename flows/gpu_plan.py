"""GPUs per model step of a recipe, and the checks ``magicvl validate`` runs before anything starts.

Each model-backed step reserves ``num_gpus`` per actor (Ray never splits one
actor over nodes). A vLLM-backed step with ``tensor_parallel: N`` spans N GPUs
with one model, so its ``num_gpus`` must be N. ``check_cluster`` compares each
step's per-actor GPUs with the nodes of the cluster the run will use:
``ray.nodes()`` of a reachable cluster, or the GPUs a local Ray would be given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from magicvl.scoring.signals import get_signal

if TYPE_CHECKING:
    from magicvl.flows.recipe import Recipe

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


def local_gpu_count() -> int:
    """GPUs a local Ray would be given: CUDA_VISIBLE_DEVICES when set, else ``nvidia-smi -L``, else 0."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in out.splitlines())


def cluster_node_gpus(address: str) -> tuple[list[float], str] | None:
    """GPUs of each alive node of the cluster at ``address`` and a name for it; None when it cannot be reached.

    An initialised Ray (the driver is already connected) is read as it is. ``local`` reads a running
    local head, else counts the GPUs of this machine (what a private local Ray is given).
    """
    import ray

    from magicvl.flows.runtime import resolve_ray_address, set_quiet_env

    if ray.is_initialized():
        return _nodes_gpus(ray.nodes()), "the connected Ray cluster"
    resolved = resolve_ray_address(address)
    if resolved == "local":
        return [float(local_gpu_count())], "this machine (local Ray)"
    if not _reachable(resolved):
        return None
    set_quiet_env()
    try:
        ray.init(address=resolved, configure_logging=False, log_to_driver=False)
    except Exception:  # noqa: BLE001 - unreachable: the caller says the check was skipped
        return None
    try:
        return _nodes_gpus(ray.nodes()), f"the Ray cluster at {resolved}"
    finally:
        ray.shutdown()


def _reachable(address: str) -> bool:
    """False when ``address`` is host:port (or ray://host:port) and nothing listens there; 'auto' is tried."""
    from magicvl.flows.runtime import port_open

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    return not (sep and port.isdigit()) or port_open(host, int(port), timeout=2.0)


def _nodes_gpus(nodes: list[dict]) -> list[float]:
    return [float(n.get("Resources", {}).get("GPU", 0)) for n in nodes if n.get("Alive", True)]


def check_cluster(recipe: Recipe) -> tuple[list[str], str]:
    """Problems of the recipe's GPU requests on its cluster, and what was checked (or why not)."""
    steps = [s for s in gpu_steps(recipe) if s.num_gpus > 0]
    if not steps:
        return [], "no step asks for GPUs"
    found = cluster_node_gpus(recipe.ray.address)
    if found is None:
        return [], f"ray.address {recipe.ray.address!r} is not reachable: GPUs per node not checked"
    node_gpus, where = found
    return fit_problems(steps, node_gpus, where), f"GPUs per node of {where}: {[round(g, 2) for g in node_gpus]}"
