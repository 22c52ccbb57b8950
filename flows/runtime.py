"""Process settings for quiet, local-only runs, and the Ray session of a run."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

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


def set_quiet_env() -> None:
    """Default the environment for offline, loopback-only runs (explicit user settings win).

    Call before importing prefect or ray (the CLI does this first thing).
    """
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)


def ray_tmpdir() -> str:
    """Ray's session folder: short (socket paths are limited to ~107 chars) and outside $HOME."""
    return os.environ.get("RAY_TMPDIR") or os.path.join(tempfile.gettempdir(), f"magicvl-ray-{os.getuid()}")


@contextmanager
def ray_session(address: str = "local", num_cpus: int | None = None) -> Iterator[dict]:
    """Connect to Ray for the duration of a run.

    ``address="local"`` starts a private single-node Ray bound to 127.0.0.1 and
    stops it afterwards; any other value connects to that cluster (``auto`` or
    ``ray://host:10001``); the project must be installed on its nodes and the
    output root must be a path every node sees. An already-initialised Ray
    (tests share one) is reused and left running.
    """
    set_quiet_env()
    import ray

    if ray.is_initialized():
        yield ray.cluster_resources()
        return
    if address == "local":
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
            )
    else:
        ray.init(address=address, configure_logging=False)
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()
