"""A full disk: one clear error naming the path and its filesystem, no temporaries left, a rerun completes.

The filesystem is a real 1 MiB tmpfs (mounting needs root; skipped otherwise), so
ENOSPC comes from the kernel, not from a mock.
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pyarrow as pa
import pytest

from magicvl.sample_data.hostile import jpeg_bytes
from magicvl.storage.diskfull import DiskFullError
from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset
from magicvl.storage.manifest import write_json
from magicvl.storage.options import StorageOptions
from magicvl.storage.writer import ShardWriter, write_table


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.strip() or r.returncode}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def resize(mnt, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True)


def leftovers(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def noise(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()  # incompressible


def test_shard_writer_names_path_and_filesystem_and_leaves_nothing(small_fs):
    schema = pa.schema([("b", pa.binary())])
    with pytest.raises(DiskFullError) as e:
        with ShardWriter(small_fs / "d", "part", schema, max_rows=2, compression="none") as w:
            for i in range(8):
                w.write(pa.table({"b": [noise(200_000, i)]}, schema=schema))
            w.close()
    msg = str(e.value)
    assert "no space left on device tmpfs (tmpfs)" in msg and f"mounted at {small_fs}" in msg
    assert str(small_fs / "d") in msg and "\n" not in msg
    assert leftovers(small_fs) == []  # finished-but-unrenamed shards and the partial one are gone


def test_small_writes_on_a_full_disk_leave_no_temporaries(small_fs):
    (small_fs / "filler").write_bytes(b"")
    with pytest.raises(OSError):
        with open(small_fs / "filler", "wb") as f:
            while True:
                f.write(noise(64 << 10))
    with pytest.raises(DiskFullError):
        write_table(small_fs / "t.parquet", pa.table({"b": [noise(100_000)]}))
    with pytest.raises(DiskFullError):
        write_json(small_fs / "m.json", {"x": "y" * 100_000})
    assert leftovers(small_fs) == ["filler"]


def test_ingest_on_a_full_disk_fails_clearly_and_a_rerun_completes(small_fs, tmp_path):
    from magicvl.tasks.steps.ingest.units import ingest_chunk

    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    recs = []
    for i in range(12):
        (src / "images" / f"{i}.bin").write_bytes(jpeg_bytes(64, 64) + noise(150_000, seed=i))  # distinct
        turns = [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]
        recs.append({"id": f"r{i}", "image": f"{i}.bin", "conversations": turns})
    (src / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    cfg = DatasetConfig(name="d", format="jsonl", path="d.jsonl", image_root="images")
    opts, storage = IngestOptions(chunk_records=100), StorageOptions(shard_max_rows=4, compression="none")
    [chunk] = plan_dataset(cfg, src, opts)
    out = small_fs / "out"
    with pytest.raises(DiskFullError, match="no space left on device"):
        ingest_chunk(chunk, cfg, opts, storage, str(out), str(src), [])
    assert not [p for p in leftovers(small_fs) if ".tmp-" in p or p.endswith(".parquet")]
    resize(small_fs, "20m")  # space freed
    summary = ingest_chunk(chunk, cfg, opts, storage, str(out), str(src), [])
    assert summary["kept"] == 12 and not summary["cached"]
    assert not [p for p in leftovers(small_fs) if ".tmp-" in p]
    assert os.path.isfile(summary["shards"][0]["path"])
