"""Start-up of a run: which Prefect API and which Ray to use (plain functions), warm_start, the API server process."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from magicvl.flows import runtime


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections (stands in for a running server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the socket is: nothing listens there afterwards


def test_prefect_api_url_from_env_wins(tmp_path: Path) -> None:
    env = {"PREFECT_API_URL": "http://127.0.0.1:9/api", "PREFECT_HOME": str(tmp_path)}
    assert runtime.local_prefect_api(env) == ("http://127.0.0.1:9/api", "PREFECT_API_URL")


def test_background_server_of_this_prefect_home_is_reused(tmp_path: Path, listening: int) -> None:
    (tmp_path / "server.pid").write_text(str(os.getpid()))  # a live process
    env = {"PREFECT_HOME": str(tmp_path), "PREFECT_SERVER_API_PORT": str(listening)}
    api, source = runtime.local_prefect_api(env)
    assert api == f"http://127.0.0.1:{listening}/api"
    assert source.startswith("running server")


def test_wildcard_server_host_is_reached_on_loopback(tmp_path: Path, listening: int) -> None:
    (tmp_path / "server.pid").write_text(str(os.getpid()))
    env = {"PREFECT_HOME": str(tmp_path), "PREFECT_SERVER_API_HOST": "0.0.0.0"}
    env["PREFECT_SERVER_API_PORT"] = str(listening)
    assert runtime.local_prefect_api(env)[0] == f"http://127.0.0.1:{listening}/api"


@pytest.mark.parametrize("pid_text", [None, "not-a-pid", "999999999"])
def test_no_live_server_means_ephemeral(tmp_path: Path, listening: int, pid_text: str | None) -> None:
    if pid_text is not None:
        (tmp_path / "server.pid").write_text(pid_text)
    env = {"PREFECT_HOME": str(tmp_path), "PREFECT_SERVER_API_PORT": str(listening)}
    assert runtime.local_prefect_api(env) == (None, "ephemeral")


def test_pid_alive_but_port_closed_means_ephemeral(tmp_path: Path) -> None:
    (tmp_path / "server.pid").write_text(str(os.getpid()))
    env = {"PREFECT_HOME": str(tmp_path), "PREFECT_SERVER_API_PORT": str(_closed_port())}
    assert runtime.local_prefect_api(env) == (None, "ephemeral")


def test_running_local_ray_head_is_found(tmp_path: Path, listening: int) -> None:
    (tmp_path / "ray_current_cluster").write_text(f"127.0.0.1:{listening}\n")
    assert runtime.local_ray_address(str(tmp_path)) == f"127.0.0.1:{listening}"
    assert runtime.resolve_ray_address("local", str(tmp_path)) == f"127.0.0.1:{listening}"


@pytest.mark.parametrize("content", [None, "", "garbage", "127.0.0.1:notaport"])
def test_no_or_unreadable_cluster_file_starts_a_private_ray(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "ray_current_cluster").write_text(content)
    assert runtime.local_ray_address(str(tmp_path)) is None
    assert runtime.resolve_ray_address("local", str(tmp_path)) == "local"


def test_stale_cluster_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "ray_current_cluster").write_text(f"127.0.0.1:{_closed_port()}")
    assert runtime.resolve_ray_address("local", str(tmp_path)) == "local"


def test_explicit_ray_address_passes_through(tmp_path: Path, listening: int) -> None:
    (tmp_path / "ray_current_cluster").write_text(f"127.0.0.1:{listening}")
    assert runtime.resolve_ray_address("auto", str(tmp_path)) == "auto"
    assert runtime.resolve_ray_address("ray://head:10001", str(tmp_path)) == "ray://head:10001"


def test_warm_modules_are_the_task_modules_and_import() -> None:
    mods = runtime.warm_modules()
    assert mods and all(m.startswith("magicvl.tasks.") for m in mods)
    assert "magicvl.tasks.steps.ingest.units" in mods
    done = runtime._import_modules(mods + ["magicvl.tasks.no_such_module"])
    assert done["failed"] == ["magicvl.tasks.no_such_module: ModuleNotFoundError"]
    assert done["pid"] == os.getpid() and done["seconds"] >= 0


def _recipe(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "datasets:\n  - {name: d, format: jsonl, path: d.jsonl, category: ocr}\nsignals: {image_entropy: {}}\n"
        "ray: {address: local, num_cpus: 2}\n"
    )
    return path


def test_warm_start_reuses_a_running_api_and_ray_and_leaves_them_running(
    tmp_path: Path, ray_local, monkeypatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # given: no ephemeral server is started
    sys.modules.pop("colorsys", None)
    with runtime.warm_start(_recipe(tmp_path), output=str(tmp_path / "out"), preload=("colorsys",)) as st:
        assert st["mode"] == "concurrent"
        assert "colorsys" in sys.modules and st["flow_import_s"] >= 0  # the flow module, while workers warm
        # PREFECT_API_URL, read from the environment or (prefect imported earlier in the session) its settings
        assert st["prefect_api_source"] in ("PREFECT_API_URL", "Prefect settings (already configured)")
        assert st["ray"] == "already initialised (reused)"
        assert st["warm_workers"] >= 1 and st["warm_failed"] == []
        assert "prefect_api_s" not in st
    assert ray_local.is_initialized()  # not ours to stop
    assert "ray_stop_s" not in runtime.STARTUP


def test_warm_start_can_be_switched_off(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MAGICVL_WARM_START", "0")
    with runtime.warm_start(tmp_path / "not-even-read.yaml") as st:
        assert st == {"mode": "sequential (MAGICVL_WARM_START=0)"}


def test_active_profile_api_url_is_reused(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text(
        'active = "team"\n[profiles.team]\nPREFECT_API_URL = "http://127.0.0.1:4300/api"\n[profiles.ephemeral]\n'
    )
    env = {"PREFECT_HOME": str(tmp_path)}
    assert runtime.local_prefect_api(env) == ("http://127.0.0.1:4300/api", "Prefect profile")
    assert runtime.local_prefect_api({**env, "PREFECT_PROFILE": "ephemeral"}) == (None, "ephemeral")


def test_api_server_starts_answers_and_stops(tmp_path: Path, monkeypatch) -> None:
    from magicvl.flows.apiserver import ApiServer, healthy

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    server = ApiServer()
    url = server.start()
    proc = server.proc
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api")
        assert healthy(url)
    finally:
        server.stop()
    assert proc.poll() is not None and not healthy(url, timeout=0.5)
    server.stop()  # idempotent
