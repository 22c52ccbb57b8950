"""Model-backed signals on a Ray actor pool: one backend load per actor, not one per shard."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import Field

from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals import Signal, SignalParams
from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset
from magicvl.storage.options import StorageOptions
from magicvl.tasks.executor import run_on_actors, run_units
from magicvl.tasks.resources import StepResources
from magicvl.tasks.steps.ingest.units import IngestUnit
from magicvl.tasks.steps.signals.units import SignalJob, SignalUnit

pytestmark = pytest.mark.slow  # starts Ray

CFG = DatasetConfig(name="d", format="jsonl", path="d.jsonl", image_root="images", label_field="category")


class CountingParams(SignalParams):
    """A tokenizer path, and a file that gets one line each time the backend loader asks for it."""

    tokenizer_path: str
    counter: str = Field(default="")

    @property
    def tokenizer(self) -> str:  # read by tasks.backends.load_backend exactly when it loads the tokenizer
        with open(self.counter, "a") as f:
            f.write(f"{os.getpid()}\n")
        return self.tokenizer_path


def _prompt_tokens(batch: SampleBatch, params: CountingParams, tok) -> dict[str, np.ndarray]:
    return {"test_prompt_tokens": np.array([len(tok(p)["input_ids"]) for p in batch.prompts()], dtype=np.float64)}


COUNTING = Signal(
    name="test_prompt_tokens", version="1", axis="text", description="prompt tokens (test only)",
    params=CountingParams, compute=_prompt_tokens, columns=("test_prompt_tokens",), reads="text",
    backend="tokenizer",
)  # fmt: skip


def loads(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.is_file() else 0


@pytest.fixture
def shards(dataset, tmp_path) -> list[dict]:
    opts = IngestOptions(chunk_records=100)
    (chunk,) = plan_dataset(CFG, dataset, opts)
    unit = IngestUnit(chunk, CFG, opts, StorageOptions(shard_max_rows=3), str(tmp_path / "out"), str(dataset), [])
    return unit.run()["shards"]


def test_actor_pool_loads_the_backend_once_per_actor(shards, tmp_path, tokenizer_dir, ray_local):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test signal travels by value
    counter = tmp_path / "loads.txt"
    job = SignalJob(COUNTING, CountingParams(tokenizer_path=str(tokenizer_dir), counter=str(counter)), "test")
    assert len(shards) == 9

    def units(root: str) -> list[SignalUnit]:
        return [SignalUnit(job, "d", sh, root, StorageOptions(), 10**8, 10**8) for sh in shards]

    res = run_on_actors(units(str(tmp_path / "out")), "test", StepResources(concurrency=2))
    assert loads(counter) == 2  # two actors, nine shards
    assert len(res) == 9 and not any(r["cached"] for r in res) and sum(r["rows"] for r in res) == 25
    assert len({pid for pid in counter.read_text().split()}) == 2

    again = run_on_actors(units(str(tmp_path / "out")), "test", StepResources(concurrency=2))
    assert all(r["cached"] for r in again) and loads(counter) == 2  # finished: no actor, no load

    per_task = run_units(units(str(tmp_path / "alt")), "test", StepResources())
    assert loads(counter) == 2 + 9  # the plain-task path loads once per shard: what the pool avoids
    for a, b in zip(res, per_task, strict=True):  # same values either way
        assert pq.read_table(a["path"]).equals(pq.read_table(b["path"]))


def test_a_model_that_fails_to_load_is_one_error_before_any_unit_runs(shards, tmp_path, ray_local):
    from magicvl.scoring.signals import get_signal
    from magicvl.scoring.signals.vlm_loss import VlmLossParams
    from magicvl.tasks.executor import StepFailed

    missing = tmp_path / "no-such-vlm"
    job = SignalJob(get_signal("vlm_loss"), VlmLossParams(model=str(missing)), None, instance="vlm_loss@s")
    out = tmp_path / "out"
    units = [SignalUnit(job, "d", sh, str(out), StorageOptions(), 10**8, 10**8) for sh in shards]
    with pytest.raises(
        StepFailed, match=r"signal:vlm_loss@s: the backend failed to load \(model '.*no-such-vlm'\), no unit ran"
    ):
        run_on_actors(units, "signal:vlm_loss@s", StepResources(concurrency=2), retries=0)
    assert not (out / "signals" / "vlm_loss@s").exists() and all(u.finished() is None for u in units)
