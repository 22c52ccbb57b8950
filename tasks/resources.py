"""What one step asks of the cluster: CPUs, GPUs, memory, batch size, actors."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from magicvl.storage.options import parse_bytes


class StepResources(BaseModel):
    """Per-step resources (recipe ``resources.<step>``). Defaults fit a small CPU-only machine.

    ``num_cpus``/``num_gpus``/``memory`` are what Ray reserves for each task or
    actor (``.options(...)``); ``batch_size`` is rows per compute batch;
    ``concurrency`` is the number of actors of a model-backed step (default:
    as many as the cluster's CPUs allow, at least one).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_cpus: float = Field(default=1.0, gt=0, description="CPUs reserved per task/actor.")
    num_gpus: float = Field(default=0.0, ge=0, description="GPUs reserved per task/actor (0 on a CPU machine).")
    memory: int | None = Field(default=None, gt=0, description="Memory reserved per task/actor (e.g. 2GiB).")
    batch_size: int = Field(default=256, gt=0, description="Rows per compute batch.")
    concurrency: int | None = Field(default=None, gt=0, description="Actors of a model-backed step.")

    @field_validator("memory", mode="before")
    @classmethod
    def _bytes(cls, v: int | str | None) -> int | None:
        return None if v is None else parse_bytes(v)

    def ray_options(self) -> dict[str, Any]:
        """The keyword arguments of Ray's ``.options`` these resources stand for."""
        opts: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.memory is not None:
            opts["memory"] = self.memory
        return opts
