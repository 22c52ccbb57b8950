"""A run-scoped Prefect API server started without importing Prefect's server code into the flow process.

It is what Prefect's ephemeral mode runs (``uvicorn prefect.server.api.server:create_app``
with the same ephemeral settings), launched by command line: the flow process
then only talks to it over HTTP through ``PREFECT_API_URL``, which keeps about
130 MiB of server modules (FastAPI app, SQLAlchemy models) and their import
seconds out of it. Stopped when the process exits.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PORT_IN_USE = 3  # uvicorn's exit code when its port is taken


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def server_command(port: int) -> list[str]:
    """The command Prefect's ephemeral mode runs for its API (loopback only, no UI)."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("prefect is not installed")
    app_dir = Path(list(spec.submodule_search_locations)[0]).parent
    return [
        sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir),
        "--factory", "prefect.server.api.server:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on",
    ]  # fmt: skip


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether ``<url>/health`` answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


class ApiServer:
    """One Prefect API server process for this run; ``start`` returns its API URL."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None

    def start(self, timeout: float | None = None) -> str:
        timeout = timeout or float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 180))
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        env.pop("PREFECT_API_URL", None)
        deadline = time.monotonic() + timeout
        atexit.register(self.stop)
        while time.monotonic() < deadline:
            port = free_port()
            self.proc = subprocess.Popen(server_command(port), env=env, stdin=subprocess.DEVNULL)
            self.url = f"http://127.0.0.1:{port}/api"
            while time.monotonic() < deadline and self.proc.poll() is None:
                if healthy(self.url, timeout=1.0):
                    return self.url
                time.sleep(0.1)
            if self.proc.poll() != PORT_IN_USE:
                break
        code = self.proc.poll() if self.proc else None
        self.stop()
        raise RuntimeError(
            f"the Prefect API server did not start within {timeout:.0f} s (exit code {code}); "
            "set PREFECT_API_URL to a running server, or raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
        )

    def stop(self) -> None:
        """Terminate the server (idempotent); killed if it does not stop within 5 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
