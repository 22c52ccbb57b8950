"""prefect.yaml as the README uses it, against a real Prefect server started here on 127.0.0.1.

One server for the module: create the process work pool, ``prefect --no-prompt deploy --all``,
run ``curate`` then ``score`` for one signal through deployments and a ``--run-once`` worker,
and check that only that signal's outputs were rewritten.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from magicvl.storage.fingerprint import sha256_file
from magicvl.storage.manifest import read_json
from tests.flows.test_curate_flow import write_recipe
from tests.helpers import HOSTILE_LINES, make_dataset

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def declared() -> dict:
    return yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))


def test_prefect_yaml_parses_and_entrypoints_are_flows() -> None:
    from prefect.flows import load_flow_from_entrypoint

    spec = declared()
    assert spec["deployments"], "prefect.yaml declares no deployments"
    for dep in spec["deployments"]:
        assert dep["description"] and dep["work_pool"]["name"] == spec["definitions"]["work_pool"]["name"]
        flow = load_flow_from_entrypoint(str(REPO / dep["entrypoint"]))
        assert flow.name.replace("-", "_") == dep["entrypoint"].rsplit(":", 1)[1]  # train-stage → train_stage
        assert "recipe_path" in flow.parameters.properties


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A real `prefect server start` on 127.0.0.1 (its own PREFECT_HOME); yields the env to talk to it."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "RAY_TMPDIR": tempfile.mkdtemp(prefix="mvl-ray-"),  # short: Ray's socket paths are length-limited
        "PYTHONUNBUFFERED": "1",
    }
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen(
        [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (home / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "Prefect server did not become healthy"
            time.sleep(0.5)
        yield env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)


def prefect(env: dict[str, str], *args: str, timeout: int = 300) -> str:
    res = subprocess.run([*PREFECT, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"prefect {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


def api(env: dict[str, str], method: str, path: str, **kw) -> httpx.Response:
    r = httpx.request(method, env["PREFECT_API_URL"] + path, timeout=30, **kw)
    r.raise_for_status()
    return r


def run_deployment(env: dict[str, str], name: str, *params: str) -> dict:
    """`prefect deployment run NAME -p ...`, then a `--run-once` worker; returns the finished flow run."""
    out = prefect(env, "deployment", "run", name, *[a for p in params for a in ("-p", p)])
    run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", out).group(1)
    pool = declared()["definitions"]["work_pool"]["name"]
    prefect(env, "worker", "start", "--pool", pool, "--run-once", timeout=420)
    deadline = time.monotonic() + 60
    while (run := api(env, "GET", f"/flow_runs/{run_id}").json())["state_type"] not in TERMINAL:
        assert time.monotonic() < deadline, f"flow run {run_id} still {run['state_type']}"
        time.sleep(0.5)
    return run


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """(SHA-256, mtime_ns) of every data file under the output root (state, runs and reports aside)."""
    return {
        p.relative_to(root).as_posix(): (sha256_file(p), p.stat().st_mtime_ns)
        for p in root.rglob("*.parquet")
        if not p.relative_to(root).parts[0].startswith(("_", "report"))
    }


def test_deploy_all_then_score_one_signal_through_a_worker(server, tmp_path, tokenizer_dir) -> None:
    env = server
    pool = declared()["definitions"]["work_pool"]["name"]
    prefect(env, "work-pool", "create", pool, "--type", "process")
    prefect(env, "--no-prompt", "deploy", "--all")
    deployed = {(d["name"]) for d in api(env, "POST", "/deployments/filter", json={}).json()}
    assert deployed == {d["name"] for d in declared()["deployments"]}  # every declared deployment deployed

    make_dataset(tmp_path / "data", n=24, extra=HOSTILE_LINES)
    recipe = write_recipe(tmp_path, tokenizer_dir)
    (tmp_path / "recipe.yaml").write_text(
        (tmp_path / "recipe.yaml").read_text() + "ray: {num_cpus: 2}\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    run = run_deployment(env, "curate/curate", f"recipe_path={recipe}")
    assert run["state_type"] == "COMPLETED", run["state"]
    assert run["name"] == f"curate {tmp_path.name}"  # named after the step and the recipe, not random words
    acc = read_json(out / "_manifest.json")["accounting"]
    assert acc["balanced"] and acc["records_in"] == 29

    before = snapshot(out)
    run = run_deployment(env, "score/score", f"recipe_path={recipe}", 'signals=["image_entropy"]', "force=true")
    assert run["state_type"] == "COMPLETED", run["state"]
    after = snapshot(out)
    assert after.keys() == before.keys()
    mine = {k for k in before if k.startswith("signals/image_entropy/")}
    assert mine and all(after[k][1] != before[k][1] for k in mine)  # that signal was recomputed (forced)
    assert {k for k in before if after[k][0] != before[k][0]} <= mine  # no other table's content changed
    others = {k for k in before if k.startswith(("samples/", "signals/")) and k not in mine}
    assert others and all(after[k] == before[k] for k in others)  # other signals and samples untouched
    assert read_json(out / "_manifest.json")["accounting"] == acc

    artifacts = api(env, "POST", "/artifacts/filter", json={}).json()
    keys = {a["key"] for a in artifacts}
    assert None not in keys  # every artifact has a key: `prefect artifact ls --all` needs one
    assert {"curate-summary", "curate-accounting", "score-summary", "score-accounting"} <= keys
    assert "progress-ingest" in keys and "progress-signal-image-entropy" in keys
    score_md = next(a for a in artifacts if a["key"] == "score-summary")["data"]
    assert score_md.startswith("# score: ") and "signals: 0 of" in score_md and "stage_category_heatmap.png" in score_md
    assert "curate-summary" in prefect({**env, "COLUMNS": "250"}, "artifact", "ls", "--all")
    assert len(list((out / "_runs").glob("*/manifest.json"))) == 2  # one record per run, none overwritten
