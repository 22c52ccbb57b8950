"""`magicvl curate` over inputs on object storage (s3:// dataset and image root on a local moto server).

The run is its own interpreter (as on a cluster node): the endpoint and credentials
reach it, and its Ray workers, only through the standard AWS environment variables.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from magicvl.storage.fingerprint import sha256_file
from magicvl.storage.manifest import read_json
from magicvl.storage.readers import list_shards
from tests.flows.test_curate_flow import write_recipe
from tests.helpers import HOSTILE_LINES, make_dataset
from tests.s3server import CREDENTIALS, moto_server, s3fs_for, upload_tree

pytestmark = pytest.mark.slow


def _curate(recipe: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()  # the harness's API
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PREFECT_API_URL": api, **env}
    return subprocess.run(
        [sys.executable, "-m", "magicvl.flows.cli", "curate", str(recipe), *args],
        cwd=recipe.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _s3_recipe(tmp_path: Path, tokenizer: Path) -> Path:
    path = write_recipe(tmp_path, tokenizer)
    recipe = yaml.safe_load(path.read_text())
    recipe["datasets"][0].update(path="s3://bkt/src/d.jsonl", image_root="s3://bkt/src/images")
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_curate_reads_s3_inputs_and_reuses_everything_on_rerun(tmp_path, tokenizer_dir, prefect_harness):
    make_dataset(tmp_path / "data", n=40, extra=HOSTILE_LINES)
    recipe = _s3_recipe(tmp_path, tokenizer_dir)
    with moto_server() as endpoint:
        fs = s3fs_for(endpoint)
        fs.create_dir("bkt")
        upload_tree(fs, tmp_path / "data", "bkt/src")
        env = {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}  # no endpoint in the recipe: the environment's
        first = _curate(recipe, env)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        out = tmp_path / "out"
        acc = read_json(out / "_manifest.json")["accounting"]
        assert acc["balanced"]
        assert acc["records_in"] == 45 and acc["kept"] == 40 and acc["quarantined"] == 5
        # the same records as from a local folder (tests/flows/test_curate_flow.py)
        kinds = ("wrong_type", "path_outside_root", "url_refused", "invalid_json", "duplicate_id")
        assert acc["quarantined_by_error"] == dict.fromkeys(kinds, 1)
        curated = {p.relative_to(out).as_posix(): sha256_file(p) for p in list_shards(out / "curated")}
        assert sum(pq.ParquetFile(out / p).metadata.num_rows for p in curated) == 40
        samples = [r for p in list_shards(out / "samples") for r in pq.read_table(p, columns=["image"]).to_pylist()]
        with_image = [r["image"] for r in samples if r["image"]]
        assert with_image and all(i["path"].startswith("s3://bkt/src/images/") and i["bytes"] for i in with_image)

        again = _curate(recipe, env)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        steps = read_json(out / "_manifest.json")["steps"]
        assert steps["ingest"]["cached_chunks"] == steps["ingest"]["chunks"]
        assert all(v["cached"] == v["shards"] for v in steps["signals"].values() if isinstance(v, dict))
        assert {p.relative_to(out).as_posix(): sha256_file(p) for p in list_shards(out / "curated")} == curated


def test_unreachable_object_store_is_one_clean_error(tmp_path, tokenizer_dir):
    recipe = _s3_recipe(tmp_path, tokenizer_dir)
    env = {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "PYTHONUNBUFFERED": "1"}  # closed
    res = subprocess.run(
        [sys.executable, "-m", "magicvl.flows.cli", "curate", str(recipe)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr + res.stdout
    assert res.stderr.startswith("error: dataset 'd' at s3://bkt/src/d.jsonl: ") and "Could not connect" in res.stderr
