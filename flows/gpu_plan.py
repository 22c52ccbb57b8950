"""The checks ``magicvl validate`` runs before anything starts: each model step's GPUs per actor
(``tasks.gpu_steps``) against the nodes of the cluster the run will use: ``ray.nodes()`` of a
reachable cluster, or the GPUs a local Ray would be given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING

from magicvl.tasks.gpu_steps import GpuStep, fit_problems, gpu_steps, tensor_parallel_problem

if TYPE_CHECKING:
    from magicvl.tasks.recipe import Recipe

__all__ = ["GpuStep", "check_cluster", "cluster_node_gpus", "fit_problems", "gpu_steps", "local_gpu_count",
           "tensor_parallel_problem"]


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
