"""`magicvl curate` writing its whole output root to object storage (s3://bkt/run1 on a local moto server).

Inputs stay local; the endpoint comes from the recipe (``storage.s3.endpoint_url``),
the credentials from the environment. Everything a local root holds must be in the
bucket, nothing may land on local disk, reruns reuse the markers found on S3.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import yaml

from tests.flows.test_curate_flow import write_recipe
from tests.helpers import HOSTILE_LINES, make_dataset
from tests.s3server import CREDENTIALS, moto_server, s3fs_for

pytestmark = pytest.mark.slow


def _cli(cwd: Path, *args: str, endpoint: str | None = None) -> subprocess.CompletedProcess:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PREFECT_API_URL": PREFECT_API_URL.value(), **CREDENTIALS}
    env.pop("AWS_ENDPOINT_URL", None)  # the recipe names the endpoint (a bare URI: the environment)
    env.update({"AWS_ENDPOINT_URL": endpoint} if endpoint else {})
    return subprocess.run(
        [sys.executable, "-m", "magicvl.flows.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _curate(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    return _cli(recipe.parent, "curate", str(recipe), *args)


def _s3_out_recipe(tmp_path: Path, tokenizer: Path, endpoint: str, **changes) -> Path:
    path = write_recipe(tmp_path, tokenizer, output="s3://bkt/run1")
    recipe = yaml.safe_load(path.read_text())
    recipe["storage"]["s3"] = {"endpoint_url": endpoint}
    for section, value in changes.items():
        recipe[section].update(value)
    path.write_text(yaml.safe_dump(recipe))
    return path


def _objects(fs) -> dict[str, int]:
    from pyarrow.fs import FileSelector, FileType

    infos = fs.get_file_info(FileSelector("bkt/run1", recursive=True))
    return {i.path.removeprefix("bkt/run1/"): i.mtime_ns for i in infos if i.type == FileType.File}


def _read_json(fs, key: str) -> dict:
    import json

    with fs.open_input_file(f"bkt/run1/{key}") as f:
        return json.loads(f.readall())


def test_curate_writes_the_whole_output_root_to_s3_and_reuses_it(tmp_path, tokenizer_dir, prefect_harness):
    make_dataset(tmp_path / "data", n=40, extra=HOSTILE_LINES)
    with moto_server() as endpoint:
        fs = s3fs_for(endpoint)
        fs.create_dir("bkt")
        recipe = _s3_out_recipe(tmp_path, tokenizer_dir, endpoint)
        first = _curate(recipe)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert not (tmp_path / "s3:").exists() and not (tmp_path / "out").exists()  # nothing written locally
        objs = _objects(fs)
        for table in ("samples/d/", "quarantine/d/", "signals/token_length/d/", "signals/image_entropy/d/",
                      "quality/", "scores/d/", "curated/stage-", "_state/manifests/curated",
                      "_state/ingest/", "_state/combine/", "report/index.html"):  # fmt: skip
            assert any(k.startswith(table) for k in objs), table
        assert not any(".tmp-" in k for k in objs)  # one PUT per object: no temporaries
        runs = [k for k in objs if k.startswith("_runs/")]
        assert sorted(k.split("/", 2)[2] for k in runs) == ["manifest.json", "recipe.yaml"]
        manifest = _read_json(fs, "_manifest.json")
        acc = manifest["accounting"]
        assert acc["balanced"] and acc["records_in"] == 45 and acc["kept"] == 40 and acc["quarantined"] == 5
        assert manifest["outputs"]["curated"] == "s3://bkt/run1/curated"
        # any reader opens the curated shards straight from the bucket
        curated = pads.dataset("bkt/run1/curated", format="parquet", filesystem=fs).to_table()
        assert curated.num_rows == 40 and set(curated.column("stage").to_pylist()) <= {1, 2, 3, 4}
        folder_manifest = _read_json(fs, "_state/manifests/curated.json")
        assert folder_manifest["rows"] == 40 and all(s["sha256"] for s in folder_manifest["shards"])

        again = _curate(recipe, "--verify")  # every marker is found on S3 (outputs hashed): nothing recomputed
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        steps = _read_json(fs, "_manifest.json")["steps"]
        assert steps["ingest"]["cached_chunks"] == steps["ingest"]["chunks"]
        assert all(v["cached"] == v["shards"] for v in steps["signals"].values() if isinstance(v, dict))
        later = _objects(fs)
        data = [k for k in objs if not k.startswith(("_runs/", "_manifest.json", "report/")) and "_state/" not in k]
        assert any(k.startswith("curated/") for k in data)  # (folder manifests and the report are rewritten)
        assert {k: later[k] for k in data} == {k: objs[k] for k in data}

        # a changed signal parameter recomputes that signal only; its old files are swept from the bucket
        changed = _s3_out_recipe(tmp_path, tokenizer_dir, endpoint, signals={"image_entropy": {"max_side": 32}})
        third = _curate(changed)
        assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
        steps = _read_json(fs, "_manifest.json")["steps"]
        assert steps["ingest"]["cached_chunks"] == steps["ingest"]["chunks"]
        assert steps["signals"]["token_length"]["cached"] == steps["signals"]["token_length"]["shards"]
        assert steps["signals"]["image_entropy"]["cached"] == 0
        now = _objects(fs)
        old = {k for k in objs if k.startswith("signals/image_entropy/")}
        new = {k for k in now if k.startswith("signals/image_entropy/")}
        assert old and new and not old & new and len(new) == len(old)
        assert len([k for k in now if k.endswith("/manifest.json") and k.startswith("_runs/")]) == 3

        # re-tune: combine alone rewrites the stages from the signals stored in the bucket
        stage1 = _read_json(fs, "_state/manifests/curated/stage-1.json")["rows"]
        retuned = _s3_out_recipe(tmp_path, tokenizer_dir, endpoint, signals={"image_entropy": {"max_side": 32}},
                                 combine={"stages": {"caption_low_share": 1.0}})  # fmt: skip
        res = _cli(tmp_path, "combine", str(retuned))
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert _read_json(fs, "_manifest.json")["accounting"]["balanced"]
        assert _read_json(fs, "_state/manifests/curated/stage-1.json")["rows"] > stage1
        assert _read_json(fs, "_state/manifests/curated/stage-2.json")["rows"] == 0
        signals = {k: v for k, v in now.items() if k.startswith("signals/")}
        assert {k: v for k, v in _objects(fs).items() if k.startswith("signals/")} == signals

        # inspect reads a table folder in the bucket (endpoint from the environment)
        res = _cli(tmp_path, "inspect", "s3://bkt/run1/curated", endpoint=endpoint)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert "s3://bkt/run1/curated:" in res.stdout and "40 row(s)" in res.stdout


def test_a_held_lock_on_an_s3_root_refuses_a_second_curate(tmp_path, tokenizer_dir, prefect_harness):
    make_dataset(tmp_path / "data", n=8)
    with moto_server() as endpoint:
        fs = s3fs_for(endpoint)
        fs.create_dir("bkt")
        with fs.open_output_stream("bkt/run1/_state/locks/root.lock") as f:  # a curate holding the root
            f.write(b'{"host": "node-7", "pid": 4242, "what": "curate", "started": "2026-11-25T04:00:00+00:00"}')
        res = _curate(_s3_out_recipe(tmp_path, tokenizer_dir, endpoint))
        last = res.stderr.strip().splitlines()[-1]  # the CLI's one line (Prefect logs the failed flow run above it)
        assert res.returncode == 1 and last.startswith(
            "error: output root s3://bkt/run1 (curate) is in use by pid 4242 on node-7"
        )
        assert last.endswith("delete s3://bkt/run1/_state/locks/root.lock")
        assert set(_objects(fs)) == {"_state/locks/root.lock"}  # nothing written, the holder's lock kept
