"""A Prefect server and a Ray head kept running across runs, as on a machine that runs curation jobs.

``magicvl curate`` reuses both when it finds them (``flows.runtime``:
``prefect server start --background`` under the same PREFECT_HOME, and
``ray start --head --temp-dir <ray_tmpdir()>``), so its start-up is then a
connection, not two service starts. ``running_services`` starts them for a
benchmark, bound to 127.0.0.1, and stops them afterwards (``ray stop``, which
stops every Ray of this user on the machine: run benchmarks on a quiet box).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import REPO


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def _wait(ok, what: str, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ok():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


@contextmanager
def running_services(num_cpus: int | None = None) -> Iterator[dict[str, float]]:
    """Start a Prefect server (``prefect server start --background``) and a Ray head; yield their start seconds."""
    from magicvl.flows.apiserver import healthy
    from magicvl.flows.raylocal import LOCAL_RAY_ENV, dashboard_home
    from magicvl.flows.runtime import QUIET_ENV, local_prefect_api, local_ray_address, ray_tmpdir

    env = {**QUIET_ENV, **LOCAL_RAY_ENV, **os.environ, "PREFECT_HOME": str(REPO / "work" / ".prefect"),
           "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_UI_ENABLED": "false"}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    home = dashboard_home(ray_tmpdir())  # flows.raylocal: the dashboard makes no cloud-metadata lookups
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    subprocess.run([_bin("prefect"), "server", "start", "--background"], env=env, check=True, capture_output=True)
    _wait(lambda: (url := local_prefect_api(env)[0]) is not None and healthy(url.removesuffix("/api") + "/api"),
          "the Prefect server")  # fmt: skip
    seconds["prefect_server_start_s"] = time.perf_counter() - t
    t = time.perf_counter()
    cmd = [_bin("ray"), "start", "--head", f"--temp-dir={ray_tmpdir()}", "--node-ip-address=127.0.0.1",
           "--include-dashboard=false", "--disable-usage-stats"]  # fmt: skip
    cmd += [f"--num-cpus={num_cpus}"] if num_cpus else []
    subprocess.run(cmd, env={**env, "HOME": str(home)}, check=True, capture_output=True)
    _wait(lambda: local_ray_address() is not None, "the Ray head")
    seconds["ray_head_start_s"] = time.perf_counter() - t
    try:
        yield seconds
    finally:
        subprocess.run([_bin("ray"), "stop", "--force"], env=env, capture_output=True)
        subprocess.run([_bin("prefect"), "server", "stop"], env=env, capture_output=True)
