"""Issue 20, defect 2: a failed unit is one line naming its step, unit (dataset/shard) and innermost cause;
the full traceback goes to ``_logs/<step>-<time>.log`` under the output root, which the error names."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from magicvl.storage.options import StorageOptions
from magicvl.tasks.executor import StepFailed, run_on_actors, run_units
from magicvl.tasks.failed import failure_line, root_cause
from magicvl.tasks.resources import StepResources
from magicvl.tasks.unit import Outputs, Unit, UnitKey


class ShardUnit(Unit):
    """A unit over one (dataset, shard) that fails on odd shards, deep inside a helper."""

    step = "test-fail"

    def __init__(self, out_root: str, dataset: str, i: int) -> None:
        super().__init__(out_root, StorageOptions())
        self.dataset, self.i = dataset, i

    @property
    def marker_name(self) -> str:
        return f"{self.dataset}/part-{self.i:03d}"

    def key(self) -> UnitKey:
        return UnitKey(str(self.i), self.step, "1", {})

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        if self.i % 2:
            _parse(self.i)
        return {"i": self.i}


def _parse(i: int) -> None:
    try:
        int(f"shard {i}")
    except ValueError as e:
        raise RuntimeError("could not read the shard's counts") from e


def test_failure_line_names_the_innermost_cause():
    try:
        _parse(3)
    except RuntimeError as e:
        assert isinstance(root_cause(e), ValueError)
        line = failure_line("verdicts", "d/part-003", e)
    assert line == "verdicts d/part-003: ValueError: invalid literal for int() with base 10: 'shard 3'"


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["tasks", "actors"])
def test_each_failed_unit_is_one_line_and_the_traceback_is_in_the_log(tmp_path, ray_local, pool):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    units = [ShardUnit(str(tmp_path), "d", i) for i in range(4)]
    with pytest.raises(StepFailed) as err:
        if pool == "tasks":
            run_units(units, "test-fail", retries=0)
        else:
            run_on_actors(units, "test-fail", StepResources(concurrency=1), retries=0)
    head, *lines = str(err.value).splitlines()
    assert sorted(lines) == [
        f"test-fail d/part-00{i}: ValueError: invalid literal for int() with base 10: 'shard {i}'" for i in (1, 3)
    ]
    log = Path(re.search(r"full tracebacks in (\S+\.log)\)", head).group(1))
    assert head.startswith("2 of 4 test-fail units failed") and log.parent == tmp_path / "_logs"
    text = log.read_text()
    assert "RuntimeError: could not read the shard's counts" in text and "in _parse" in text
    assert "ray::" not in "\n".join(lines)
    assert units[0].finished() is not None and units[1].finished() is None  # the others finished
