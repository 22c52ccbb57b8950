"""The recipe's signal jobs (``signal_jobs``), and its cross-modal models as signal jobs: one
``vlm_loss@<model>`` job and actor pool each.

``scoring.crossmodal.model_jobs`` turns ``cross_modal.models`` into jobs (paths
resolved); here each becomes a ``SignalJob`` named after its instance, so its
outputs land in ``signals/vlm_loss@<model>/<dataset>/`` and its metric (the
column ``vlm_loss`` of those files) is ``vlm_loss@<model>`` in combine. Its pool
is sized by the model's own ``resources`` (one model load per actor).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicvl.scoring.crossmodal import Resources, model_jobs
from magicvl.scoring.signals import get_signal
from magicvl.storage.fingerprint import model_identity
from magicvl.tasks.resources import StepResources
from magicvl.tasks.steps.signals.units import SignalJob

if TYPE_CHECKING:
    from magicvl.tasks.recipe import Recipe


def signal_jobs(recipe: Recipe) -> list[SignalJob]:
    """The recipe's signals, then one ``vlm_loss@<model>`` job per cross-modal model (model order)."""
    return [SignalJob.named(n, recipe.signal_params(n)) for n in recipe.signals] + crossmodal_jobs(recipe)


def crossmodal_jobs(recipe: Recipe) -> list[SignalJob]:
    """One ``SignalJob`` per cross-modal model, in model order (smallest first)."""
    return [
        SignalJob(get_signal(j.name), j.params, model_identity(j.params.model), instance=j.name)
        for j in model_jobs(recipe.cross_modal, recipe.base_dir)
    ]


def pool_resources(r: Resources, batch_size: int) -> StepResources:
    """A model's ``cross_modal`` resources as the actor pool's ``StepResources`` (0 CPUs: a token 0.01)."""
    return StepResources(num_cpus=max(r.num_cpus, 0.01), num_gpus=r.num_gpus, concurrency=r.actors,
                         batch_size=batch_size)  # fmt: skip


def crossmodal_resources(recipe: Recipe) -> dict[str, StepResources]:
    """Job name → its pool's resources (rows per read batch: the ``vlm_loss`` signal's, if set)."""
    batch = recipe.resources.signal("vlm_loss").batch_size
    return {j.name: pool_resources(j.resources, batch) for j in model_jobs(recipe.cross_modal, recipe.base_dir)}
