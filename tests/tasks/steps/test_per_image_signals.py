"""Image-only signals once per distinct image: shared images computed once, values as a per-sample run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import Field

from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals import Signal, SignalParams
from magicvl.scoring.signals.base import map_images
from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset
from magicvl.storage.options import StorageOptions
from magicvl.tasks.executor import run_units
from magicvl.tasks.resources import StepResources
from magicvl.tasks.steps.ingest.units import IngestUnit
from magicvl.tasks.steps.signals.images import ImageReuseUnit, store_dir
from magicvl.tasks.steps.signals.per_image import run_per_image
from magicvl.tasks.steps.signals.units import SignalJob, SignalUnit
from tests.helpers import make_dataset

pytestmark = pytest.mark.slow  # starts Ray


class CountedParams(SignalParams):
    """``scale`` is keyed; ``counter`` (a file that gets one line per image computed) is not."""

    unkeyed = ("counter",)
    scale: float = 1.0
    counter: str = Field(default="")


def _mean_luma(batch: SampleBatch, params: CountedParams, _backend=None) -> dict[str, np.ndarray]:
    def one(gray) -> dict[str, float]:
        with open(params.counter, "a") as f:
            f.write("x\n")
        return {"test_mean_luma": float(np.asarray(gray, dtype=np.float64).mean()) * params.scale}

    return map_images(batch, 64, one, ("test_mean_luma",))


COUNTED = Signal(
    name="test_mean_luma", version="1", axis="image", description="mean luma (test only)", params=CountedParams,
    compute=_mean_luma, columns=("test_mean_luma",), reads="image",
)  # fmt: skip


def calls(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.is_file() else 0


def ingest(src: Path, name: str, out: Path) -> list[dict]:
    cfg = DatasetConfig(name=name, format="jsonl", path="d.jsonl", image_root="images")
    opts = IngestOptions(chunk_records=100)
    (chunk,) = plan_dataset(cfg, src, opts)
    return IngestUnit(chunk, cfg, opts, StorageOptions(shard_max_rows=5), str(out), str(src), []).run()["shards"]


def distinct(shards: list[dict]) -> set[bytes]:
    return {d for sh in shards for d in pq.read_table(sh["path"], columns=["image_digest"]).column(0).to_pylist() if d}


def reuse_units(job: SignalJob, shards: dict[str, list[dict]], out: Path) -> list[ImageReuseUnit]:
    return [
        ImageReuseUnit(job, ds, sh, str(out), StorageOptions(), 10**8, 10**8)
        for ds, shs in shards.items()
        for sh in shs
    ]


def run(job: SignalJob, shards: dict[str, list[dict]], out: Path, force: bool = False):
    return run_per_image(reuse_units(job, shards, out), StepResources(), None, 0, force)


@pytest.fixture
def two(tmp_path) -> tuple[Path, dict[str, list[dict]]]:
    """Datasets ``a`` and ``b``: the same records and images under two names (every image shared)."""
    src, out = tmp_path / "src", tmp_path / "out"
    make_dataset(src)
    return out, {"a": ingest(src, "a", out), "b": ingest(src, "b", out)}


def test_shared_images_are_computed_once_with_the_per_sample_values(two, tmp_path, ray_local):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    out, shards = two
    counter = tmp_path / "calls.txt"
    job = SignalJob(COUNTED, CountedParams(counter=str(counter)), None)
    images = distinct(shards["a"])
    assert images == distinct(shards["b"]) and len(images) > 10 and len(shards["a"]) > 2

    results, stats = run(job, shards, out)
    assert calls(counter) == len(images)  # each distinct image once, not once per sample
    assert stats["images_seconds"] > 0
    units = stats.pop("image_results")  # per image unit (seconds, images): the run's costs fit on them
    assert sum(u["images"] for u in units) == len(images) and all(u["seconds"] >= 0 for u in units)
    assert stats | {"images_seconds": 0} == {"images": len(images), "images_computed": len(images), "images_reused": 0,
                                             "images_seconds": 0}  # fmt: skip
    assert sum(r["rows"] for r in results) == 2 * sum(sh["rows"] for sh in shards["a"])

    alone = tmp_path / "alone"  # the standalone per-sample run: one computation per sample
    per_sample = run_units(
        [
            SignalUnit(job, ds, sh, str(alone), StorageOptions(), 10**8, 10**8)
            for ds, shs in shards.items()
            for sh in shs
        ],
        "alone",
    )
    assert calls(counter) == 2 * len(images) + len(images)
    for r, s in zip(results, per_sample, strict=True):
        assert Path(r["path"]).name == Path(s["path"]).name  # same key, same file name
        a, b = pq.read_table(r["path"]), pq.read_table(s["path"])
        assert a.select(["sample_id", "error"]).equals(b.select(["sample_id", "error"]))
        np.testing.assert_array_equal(a.column("test_mean_luma").to_numpy(), b.column("test_mean_luma").to_numpy())

    again, stats = run(job, shards, out)  # finished: nothing computed, nothing rewritten
    assert all(r["cached"] for r in again) and calls(counter) == 3 * len(images) and stats["images"] == 0


def test_added_dataset_changed_param_and_force(two, tmp_path, ray_local):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    out, shards = two
    counter = tmp_path / "calls.txt"
    job = SignalJob(COUNTED, CountedParams(counter=str(counter)), None)
    images = distinct(shards["a"])
    run(job, shards, out)
    assert calls(counter) == len(images)

    make_dataset(tmp_path / "src_c", n=30)  # other pixels: all new images
    shards = {**shards, "c": ingest(tmp_path / "src_c", "c", out)}
    new = distinct(shards["c"])
    results, stats = run(job, shards, out)  # only c's shards are written, only c's images computed
    assert calls(counter) == len(images) + len(new) and not new & images
    assert (stats["images"], stats["images_computed"], stats["images_reused"]) == (len(new), len(new), 0)
    old = len(shards["a"]) + len(shards["b"])
    assert [r["cached"] for r in results] == [True] * old + [False] * len(shards["c"])

    n0, before = calls(counter), [pq.read_table(r["path"]).column(1).to_numpy() for r in results]
    scaled = SignalJob(COUNTED, CountedParams(counter=str(counter), scale=2.0), None)  # keyed: another store
    assert store_dir(_layout(out), scaled) != store_dir(_layout(out), job)
    res2, stats = run(scaled, shards, out)
    assert calls(counter) == n0 + len(images | new) and stats["images_computed"] == len(images | new)
    for a, s in zip(before, res2, strict=True):
        np.testing.assert_allclose(pq.read_table(s["path"]).column(1).to_numpy(), 2 * a)

    n1 = calls(counter)
    forced, stats = run(scaled, shards, out, force=True)  # recomputes every image, values unchanged
    assert calls(counter) == n1 + len(images | new) and not any(r["cached"] for r in forced)
    for r, s in zip(res2, forced, strict=True):
        assert pq.read_table(r["path"]).equals(pq.read_table(s["path"]))

    same, stats = run(job, shards, out)  # back to scale 1: its store still holds every value
    assert calls(counter) == n1 + len(images | new) and stats["images_computed"] == 0
    assert stats["images_reused"] == stats["images"] == len(images | new)


def _layout(out: Path):
    from magicvl.storage.layout import OutputLayout

    return OutputLayout(out)


def test_pieces_cover_every_owner_digest_once_in_near_equal_parts():
    from magicvl.tasks.steps.signals.per_image import MIN_PIECE, pieces

    owners = {0: [bytes([i]) for i in range(100)], 3: [bytes([i]) for i in range(100, 110)], 5: [b"\xff"]}
    got = pieces(owners, workers=2)  # 111 missing, 8 pieces wanted: at most 14 images each, near-equal
    assert [i for i, _ in got] == [0] * 8 + [3] + [5]  # owner order; 100 → 8 pieces of 12-13
    assert sorted(d for _, ds in got for d in ds) == sorted(d for ds in owners.values() for d in ds)
    assert {len(ds) for i, ds in got if i == 0} == {12, 13}
    many = [ds for i, ds in pieces(owners, workers=64) if i == 0]  # pieces of ~MIN_PIECE images, not 1
    assert len(many) == 13 and {len(ds) for ds in many} == {MIN_PIECE - 1, MIN_PIECE}
    assert len(pieces({0: owners[0]}, workers=1)) == 4 and pieces({}, workers=2) == []
