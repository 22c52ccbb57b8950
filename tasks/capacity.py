"""What fits where: how many tasks/actors of a step's resources each Ray node holds at once, whether
any fits at all (one clear error before anything starts), and the size of a step's actor pool."""

from __future__ import annotations

from magicvl.tasks.failed import StepFailed
from magicvl.tasks.resources import StepResources


def node_capacity(resources: StepResources, nodes: list[dict]) -> list[int]:
    """Per alive node (``ray.nodes()`` entries), how many tasks/actors of ``resources`` it holds at once."""
    want = {"CPU": resources.num_cpus, "GPU": resources.num_gpus, "memory": resources.memory or 0}
    out = []
    for node in nodes:
        if not node.get("Alive", True):
            continue
        have = node.get("Resources", {})
        out.append(min(int(float(have.get(k, 0)) // v) for k, v in want.items() if v) if any(want.values()) else 1)
    return out


def check_fits(resources: StepResources, name: str) -> int:
    """Actors of ``resources`` the cluster holds at once; StepFailed (one line, nothing started) when none fits."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive", True)]
    fits = node_capacity(resources, nodes)
    if sum(fits) > 0:
        return sum(fits)
    per_node = [{k: n["Resources"].get(k, 0) for k in ("CPU", "GPU")} for n in nodes]
    gpus = [int(p["GPU"]) if float(p["GPU"]).is_integer() else p["GPU"] for p in per_node]
    what = (f"{resources.num_gpus:g} GPUs (resources num_gpus) and {resources.num_cpus:g} CPUs"
            + (f" and {resources.memory} bytes" if resources.memory else ""))  # fmt: skip
    raise StepFailed(f"{name}: each task/actor asks for {what}, but no node of the Ray cluster has that much "
                     f"(GPUs per node: {gpus}); no unit ran")  # fmt: skip


def pool_size(resources: StepResources, n_units: int, name: str = "step") -> int:
    """As many actors as the cluster's nodes hold (⌊GPUs / num_gpus⌋ per node, likewise CPUs), capped by
    ``concurrency`` and the number of units; StepFailed when not even one fits."""
    fit = check_fits(resources, name)
    if resources.concurrency:
        fit = min(fit, resources.concurrency)
    return max(1, min(fit, n_units))
