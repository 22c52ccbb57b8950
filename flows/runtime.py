"""Process settings for quiet, local-only runs, and the start-up of a run (Prefect API + Ray).

A CLI run pays three fixed costs before its first step: the Prefect API (an
ephemeral server unless one is running), a local Ray, and the first import of
the task modules in each Ray worker. ``warm_start`` pays them concurrently,
reuses a running Prefect server or Ray head when there is one, and records
where the seconds went in ``STARTUP``.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("magicvl")

QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray listens on every interface by default; this keeps a local Ray on 127.0.0.1 only.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",  # no auth token written under $HOME/.ray for a private local Ray
    # a fresh PREFECT_HOME migrates its database on first use: give the ephemeral API time to start
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_API_HOST": "127.0.0.1",
    "TOKENIZERS_PARALLELISM": "false",
}

# A Ray started for the run returns task results up to 4 MiB inline to the driver (Ray's default:
# 100 KiB, above which results go through the shared-memory object store). Results are small
# summaries and per-shard histograms (~0.6 MiB); read from the object store, each leaves its
# shared pages counted in the driver's RSS, which then grows with the number of shards.
RAY_SYSTEM_CONFIG = {"max_direct_call_object_size": 4 * 1024 * 1024}

# Where the start-up seconds of this process went (filled by ``warm_start``; read by bench/).
STARTUP: dict[str, object] = {}


def set_quiet_env() -> None:
    """Default the environment for offline, loopback-only runs (explicit user settings win).

    Call before importing prefect or ray (the CLI does this first thing).
    """
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)


def ray_tmpdir() -> str:
    """Ray's session folder: short (socket paths are limited to ~107 chars) and outside $HOME."""
    return os.environ.get("RAY_TMPDIR") or os.path.join(tempfile.gettempdir(), f"magicvl-ray-{os.getuid()}")


def prefect_home(env: Mapping[str, str] = os.environ) -> Path:
    """PREFECT_HOME as Prefect resolves it (default ``~/.prefect``)."""
    return Path(env.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
        return True
    except (OSError, ValueError):
        return False


def _profile_api_url(env: Mapping[str, str]) -> str | None:
    """PREFECT_API_URL of the active Prefect profile (``profiles.toml``), read without importing Prefect."""
    import tomllib

    path = Path(env.get("PREFECT_PROFILES_PATH") or prefect_home(env) / "profiles.toml").expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError):
        return None
    name = env.get("PREFECT_PROFILE") or data.get("active") or "ephemeral"
    url = data.get("profiles", {}).get(name, {}).get("PREFECT_API_URL")
    return str(url) if url else None


def local_prefect_api(env: Mapping[str, str] = os.environ) -> tuple[str | None, str]:
    """The Prefect API a run should use, and where it came from.

    ``PREFECT_API_URL`` when set (environment, then the active profile); else
    the server that ``prefect server start --background`` left under this
    PREFECT_HOME (its ``server.pid`` names a live process and
    ``PREFECT_SERVER_API_HOST:PORT`` accepts connections); else ``None``: an
    ephemeral server is started for the run.
    """
    if env.get("PREFECT_API_URL"):
        return env["PREFECT_API_URL"], "PREFECT_API_URL"
    profile_url = _profile_api_url(env)
    if profile_url:
        return profile_url, "Prefect profile"
    host = env.get("PREFECT_SERVER_API_HOST") or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    port = int(env.get("PREFECT_SERVER_API_PORT") or 4200)
    if _pid_alive(prefect_home(env) / "server.pid") and port_open(host, port):
        return f"http://{host}:{port}/api", "running server (prefect server start --background)"
    return None, "ephemeral"


def local_ray_address(tmpdir: str | None = None) -> str | None:
    """The address of a live Ray head started with ``ray start --head --temp-dir <tmpdir>``, else None.

    ``ray start`` records its GCS address in ``<tmpdir>/ray_current_cluster``;
    a stale file (the head has stopped) is ignored.
    """
    path = Path(tmpdir or ray_tmpdir()) / "ray_current_cluster"
    try:
        address = path.read_text().strip()
    except OSError:
        return None
    try:
        parts = urlsplit(f"//{address}")
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        return None
    if not address or host is None or port is None:
        return None
    return address if port_open(host, port) else None


def resolve_ray_address(address: str, tmpdir: str | None = None) -> str:
    """``local`` becomes the address of a running local Ray head when there is one; others pass through."""
    if address != "local":
        return address
    return local_ray_address(tmpdir) or "local"


def _start_local_ray(num_cpus: int | None, attempts: int = 2) -> None:
    """A private Ray on 127.0.0.1; retried once when the raylet misses Ray's fixed 30 s start-up wait (busy box)."""
    import ray

    for attempt in range(1, attempts + 1):
        try:
            from magicvl.flows.raylocal import local_ray_guards

            with local_ray_guards(ray_tmpdir()):  # no cloud-metadata lookups; workers die with the run
                ray.init(
                    address="local",
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    _temp_dir=ray_tmpdir(),
                    configure_logging=False,
                    log_to_driver=True,
                    _system_config=RAY_SYSTEM_CONFIG,
                )
            return
        except Exception as e:
            if attempt == attempts or "timed out during startup" not in str(e):
                raise
            log.warning("local Ray did not start in time (machine busy?); retrying once")
            ray.shutdown()


def _ray_init(address: str, num_cpus: int | None) -> str:
    """Connect to (or start) Ray; returns what was done, for the start-up record."""
    import ray

    if ray.is_initialized():
        return "already initialised (reused)"
    resolved = resolve_ray_address(address)
    if resolved == "local":
        _start_local_ray(num_cpus)
        return "started locally"
    ray.init(address=resolved, configure_logging=False)
    return f"connected to {resolved}" + (" (running local head reused)" if address == "local" else "")


@contextmanager
def ray_session(address: str = "local", num_cpus: int | None = None) -> Iterator[dict]:
    """Connect to Ray for the duration of a run.

    ``address="local"`` reuses a running local Ray head (``ray start --head
    --temp-dir <ray_tmpdir()>``) when there is one, else starts a private
    single-node Ray bound to 127.0.0.1 and stops it afterwards; any other value
    connects to that cluster (``auto`` or ``ray://host:10001``); the project
    must be installed on its nodes and the output root must be a path every
    node sees. An already-initialised Ray (tests share one; ``warm_start``
    starts one) is reused and left running.
    """
    set_quiet_env()
    import ray

    if ray.is_initialized():
        yield ray.cluster_resources()
        return
    _ray_init(address, num_cpus)
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()


def warm_modules() -> list[str]:
    """The task modules Ray workers import (every module of ``magicvl.tasks``, its step packages' included)."""
    import magicvl.tasks

    return [m.name for m in pkgutil.walk_packages(magicvl.tasks.__path__, "magicvl.tasks.") if not m.ispkg]


def _import_modules(modules: list[str]) -> dict[str, object]:
    """Runs in a Ray worker: import ``modules`` (best effort); seconds taken and the worker's pid."""
    t = time.perf_counter()
    failed = []
    for m in modules:
        try:
            importlib.import_module(m)
        except Exception as e:  # a module that cannot import here fails its own tasks with the real error
            failed.append(f"{m}: {type(e).__name__}")
    return {"seconds": round(time.perf_counter() - t, 3), "pid": os.getpid(), "failed": failed}


def warm_workers(modules: list[str]) -> list:
    """Start one import task per CPU (at most 32) so Ray workers have the task modules loaded before step 1."""
    import ray

    cpus = min(max(int(ray.cluster_resources().get("CPU", 1)), 1), 32)
    remote = ray.remote(_import_modules).options(num_cpus=1, name="warm-up")
    return [remote.remote(modules) for _ in range(cpus)]


def _start_prefect_api(record: dict[str, object]) -> None:
    """Start an ephemeral Prefect API for this run; the flow then uses it.

    Before Prefect is imported: our own server process (``flows.apiserver``),
    announced through PREFECT_API_URL, so the flow process never imports the
    server code. After (its settings are read already): Prefect's own singleton.
    """
    t = time.perf_counter()
    if "prefect" in sys.modules:
        from prefect.server.api.server import SubprocessASGIServer

        SubprocessASGIServer().start()
        record["prefect_api_source"] = "ephemeral (Prefect's own)"
    else:
        from magicvl.flows.apiserver import ApiServer

        os.environ["PREFECT_API_URL"] = ApiServer().start()
        record["prefect_api_source"] = "ephemeral (started for this run)"
    record["prefect_api_s"] = round(time.perf_counter() - t, 2)


def _in_thread(fn, *args) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn(*args)
        except BaseException as e:  # re-raised in the caller's thread after join
            errors.append(e)

    th = threading.Thread(target=run, name=f"warm-start-{fn.__name__}", daemon=True)
    th.start()
    return th, errors


def _ray_settings(recipe_path: str | Path, output: str | None) -> tuple[str, int | None]:
    from magicvl.flows.recipe import load_recipe

    recipe = load_recipe(recipe_path, {"output": output} if output else None)
    return recipe.ray.address, recipe.ray.num_cpus


def _use_prefect_api() -> bool:
    """Find a Prefect API to reuse (sets PREFECT_API_URL for this process); False when none is running."""
    if "prefect" in sys.modules:  # already imported (tests, a harness): its settings context knows the API
        from prefect.settings import PREFECT_API_URL

        if PREFECT_API_URL.value():
            STARTUP["prefect_api_source"] = "Prefect settings (already configured)"
            return True
    api, source = local_prefect_api()
    STARTUP["prefect_api_source"] = source
    if api and not os.environ.get("PREFECT_API_URL"):
        os.environ["PREFECT_API_URL"] = api  # read by Prefect's settings when it is first imported
        log.info("using the Prefect server at %s (%s)", api, source)
    return api is not None


def _warm(refs: list, t_ray: float) -> None:
    import ray

    try:
        done = ray.get(refs, timeout=300)
    except Exception as e:  # warm-up is an optimisation: the steps import what they need anyway
        log.warning("warming Ray workers failed (%s); continuing", type(e).__name__)
        return
    STARTUP["workers_warm_s"] = round(time.perf_counter() - t_ray, 2)
    STARTUP["worker_import_s"] = max(d["seconds"] for d in done)
    STARTUP["warm_workers"] = len({d["pid"] for d in done})
    STARTUP["warm_failed"] = sorted({f for d in done for f in d["failed"]})


@contextmanager
def warm_start(
    recipe_path: str | Path, output: str | None = None, preload: tuple[str, ...] = ()
) -> Iterator[dict[str, object]]:
    """Get the Prefect API, Ray and warm Ray workers ready at once, before a flow on this recipe runs.

    The recipe is validated first (a bad one fails before anything starts).
    Then the ephemeral Prefect API (unless a server is running:
    ``local_prefect_api``) starts in a thread while this thread starts or
    connects to Ray and has each worker import the task modules. The flow's ``ray_session``
    then finds Ray initialised and reuses it; Ray is stopped on exit if started
    here. ``output`` overrides the recipe's as the flow's does. Seconds per part land in ``STARTUP``.

    ``preload``: modules the flow needs (the flow module: it imports Prefect), imported once
    the API's URL is known and while the Ray workers warm up. Callers import their flow
    inside the block, not before it: a process that has not imported Prefect yet gets the
    API as its own server process, without Prefect's server code imported into it.
    """
    set_quiet_env()
    t0 = time.perf_counter()
    STARTUP.clear()
    if os.environ.get("MAGICVL_WARM_START") == "0":  # one step after another, inside the flow (for comparisons)
        STARTUP["mode"] = "sequential (MAGICVL_WARM_START=0)"
        yield STARTUP
        return
    STARTUP["mode"] = "concurrent"
    address, num_cpus = _ray_settings(recipe_path, output)  # a bad recipe fails here, before anything starts
    STARTUP["recipe_s"] = round(time.perf_counter() - t0, 2)
    thread, errors = (None, []) if _use_prefect_api() else _in_thread(_start_prefect_api, STARTUP)
    started_ray = False
    try:
        import ray

        t_ray = time.perf_counter()
        started_ray = not ray.is_initialized()
        STARTUP["ray"] = _ray_init(address, num_cpus)
        STARTUP["ray_s"] = round(time.perf_counter() - t_ray, 2)
        refs = warm_workers(warm_modules())
        if thread is not None:
            thread.join()
            thread = None
        if errors:
            raise errors[0]
        t_import = time.perf_counter()
        for module in preload:  # Prefect reads PREFECT_API_URL now; the workers warm meanwhile
            importlib.import_module(module)
        if preload:
            STARTUP["flow_import_s"] = round(time.perf_counter() - t_import, 2)
        _warm(refs, t_ray)
        STARTUP["ready_s"] = round(time.perf_counter() - t0, 2)
        yield STARTUP
    finally:
        if thread is not None:
            thread.join()  # never leave a half-started API server behind
        if started_ray:
            import ray

            t = time.perf_counter()
            ray.shutdown()
            STARTUP["ray_stop_s"] = round(time.perf_counter() - t, 2)
