"""The curate flow end to end under a Prefect test harness with a local Ray: accounting, reruns, resumption."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from magicvl.storage.fingerprint import sha256_file
from magicvl.storage.manifest import read_folder_manifest, read_json
from magicvl.storage.readers import list_shards
from tests.helpers import HOSTILE_LINES, make_dataset

pytestmark = pytest.mark.slow


def write_recipe(root: Path, tokenizer: Path, output: str = "out", chunk_records: int = 7, **combine) -> Path:
    recipe = {
        "output": output,
        "datasets": [
            {
                "name": "d",
                "format": "jsonl",
                "path": "data/d.jsonl",
                "image_root": "data/images",
                "label_field": "category",
            }
        ],
        "ingest": {"chunk_records": chunk_records},
        "storage": {"shard_max_rows": 5},
        "signals": {
            "token_length": {"tokenizer": str(tokenizer)},
            "type_token_ratio": {"tokenizer": str(tokenizer)},
            "image_entropy": {"max_side": 64},
        },
        "combine": {"granularity": "sample", **combine},
        # tests.helpers' responses are synthetic repeats ("w0 w1 w0 w1 ..."): the repetition filter rightly
        # drops them (tests/tasks/steps/test_quality_step.py covers the filters); these tests are about other steps
        "filters": {"repetition": {"enabled": False}},
    }
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def curated_digest(out: Path) -> dict[str, str]:
    root = out / "curated"
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in list_shards(root)}


@pytest.fixture
def workdir(tmp_path, tokenizer_dir):
    make_dataset(tmp_path / "data", n=40, extra=HOSTILE_LINES)
    write_recipe(tmp_path, tokenizer_dir)
    return tmp_path


def test_curate_end_to_end_then_rerun_skips(workdir, ray_local, prefect_harness):
    from magicvl.flows.curate import curate

    res = curate(str(workdir / "recipe.yaml"))
    acc = res["accounting"]
    assert acc["balanced"]
    assert acc["records_in"] == 45 and acc["kept"] == 40 and acc["dropped"] == 0 and acc["quarantined"] == 5
    assert acc["quarantined_by_error"] == {
        "wrong_type": 1,
        "path_outside_root": 1,
        "url_refused": 1,
        "invalid_json": 1,
        "duplicate_id": 1,
    }
    out = workdir / "out"
    assert acc["rows_on_disk"] == {"curated": 40, "dropped": 0, "quarantine": 5}
    stages = {int(p.parent.name.removeprefix("stage-")) for p in list_shards(out / "curated")}
    assert stages == {1, 2, 3, 4}
    for p in list_shards(out / "curated" / "stage-1") + list_shards(out / "curated" / "stage-2"):
        assert set(pq.read_table(p, columns=["category"]).column("category").to_pylist()) == {"caption"}
    manifest = read_json(out / "_manifest.json")
    assert manifest["accounting"]["balanced"] and manifest["steps"]["ingest"]["records_in"] == 45
    assert read_folder_manifest(out / "curated")["rows"] == 40
    printed = res["summary"]
    assert "records in 45 = kept 40 + dropped 0 + quarantined 5   [OK]" in printed
    assert "tiny checkpoint built locally" in printed

    before = curated_digest(out)
    again = curate(str(workdir / "recipe.yaml"))
    steps = read_json(out / "_manifest.json")["steps"]
    assert steps["ingest"]["cached_chunks"] == steps["ingest"]["chunks"]
    assert all(v["cached"] == v["shards"] for k, v in steps["signals"].items() if isinstance(v, dict))
    assert again["accounting"] == acc
    assert curated_digest(out) == before

    moved = workdir / "moved"  # a moved output root keeps its finished work
    out.rename(moved)
    third = curate(str(workdir / "recipe.yaml"), output=str(moved))
    steps = read_json(moved / "_manifest.json")["steps"]
    assert steps["ingest"]["cached_chunks"] == steps["ingest"]["chunks"]
    assert third["accounting"]["balanced"] and curated_digest(moved) == before


def test_retuning_combine_changes_stages_without_recomputing_signals(workdir, ray_local, prefect_harness):
    from magicvl.flows.curate import combine, curate

    curate(str(workdir / "recipe.yaml"))
    before = read_folder_manifest(workdir / "out" / "curated" / "stage-1")["rows"]
    write_recipe(
        workdir,
        Path(yaml.safe_load((workdir / "recipe.yaml").read_text())["signals"]["token_length"]["tokenizer"]),
        stages={"caption_low_share": 1.0},
    )
    res = combine(str(workdir / "recipe.yaml"))
    after = read_folder_manifest(workdir / "out" / "curated" / "stage-1")["rows"]
    assert after > before and read_folder_manifest(workdir / "out" / "curated" / "stage-2")["rows"] == 0
    assert res["accounting"]["balanced"]


def test_score_flow_reruns_one_signal(workdir, ray_local, prefect_harness):
    from magicvl.flows.curate import curate, score

    curate(str(workdir / "recipe.yaml"))
    res = score(str(workdir / "recipe.yaml"), signals=["image_entropy"], force=True)
    assert res["accounting"]["balanced"]
    steps = read_json(workdir / "out" / "_manifest.json")["steps"]
    assert list(k for k in steps["signals"] if k != "seconds") == ["image_entropy"]
    assert steps["signals"]["image_entropy"]["cached"] == 0


def _run_cli(args: list[str], cwd: Path) -> subprocess.Popen:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PREFECT_API_URL": PREFECT_API_URL.value()}  # the harness's API
    return subprocess.Popen(
        [sys.executable, "-m", "magicvl.flows.cli", *args],
        cwd=cwd,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_killed_run_resumes_to_the_same_curated_output(tmp_path, tokenizer_dir, prefect_harness):
    """SIGKILL the whole process group mid-run; the rerun must give what an uninterrupted run gives."""
    make_dataset(tmp_path / "data", n=120, extra=HOSTILE_LINES)
    recipe = write_recipe(tmp_path, tokenizer_dir, chunk_records=3)
    repo = Path(__file__).resolve().parents[2]
    killed = tmp_path / "killed"
    proc = _run_cli(["curate", str(recipe), "--output", str(killed)], repo)
    markers = killed / "_state" / "ingest" / "d"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(markers.glob("*.json"))) < 8 and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "_manifest.json").exists()  # it really stopped half-way
    n_done = len(list(markers.glob("*.json")))
    assert 8 <= n_done < 42

    for out in (killed, tmp_path / "clean"):
        p = _run_cli(["curate", str(recipe), "--output", str(out)], repo)
        log = p.communicate(timeout=600)[0].decode()
        assert p.returncode == 0, log[-3000:]
        assert "[OK]" in log
    assert read_json(killed / "_manifest.json")["steps"]["ingest"]["cached_chunks"] >= n_done - 2
    assert curated_digest(killed) == curated_digest(tmp_path / "clean")
    assert (
        read_json(killed / "_manifest.json")["accounting"]
        == read_json(tmp_path / "clean" / "_manifest.json")["accounting"]
    )


def test_same_flow_runs_against_a_ray_cluster_address(tmp_path, tokenizer_dir, prefect_harness):
    """A separately started Ray head (as on a cluster): the recipe names its address, nothing else changes."""
    import socket
    import tempfile

    make_dataset(tmp_path / "data", n=16, extra=HOSTILE_LINES)
    recipe_path = write_recipe(tmp_path, tokenizer_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recipe = yaml.safe_load(recipe_path.read_text())
    recipe["ray"] = {"address": f"127.0.0.1:{port}"}
    recipe_path.write_text(yaml.safe_dump(recipe))
    ray_bin = Path(sys.executable).parent / "ray"
    temp = tempfile.mkdtemp(prefix="rc-", dir="/tmp")  # Ray's socket paths must stay short
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
         "--num-cpus", "2", "--include-dashboard", "false", "--temp-dir", temp, "--disable-usage-stats"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        repo = Path(__file__).resolve().parents[2]
        p = _run_cli(["curate", str(recipe_path)], repo)
        log = p.communicate(timeout=600)[0].decode()
        assert p.returncode == 0, log[-3000:]
        assert "records in 21 = kept 16 + dropped 0 + quarantined 5   [OK]" in log
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
