"""A local Ray run makes no non-loopback connection (checked under strace) and owns its workers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

SCRIPT = r"""
import os
from magicvl.flows.runtime import ray_session
with ray_session(num_cpus=1):
    import ray
    @ray.remote
    def where():
        return os.getpgid(0)
    print("GROUPS", os.getpgid(0), ray.get(where.remote()), flush=True)
"""
_INET = re.compile(
    r"connect\(\d+, \{sa_family=AF_INET6?, sin6?_port=htons\((\d+)\), "
    r'(?:sin_addr=inet_addr|inet_pton\(AF_INET6, )\(?"([^"]+)"'
)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_local_ray_connects_only_to_loopback_and_keeps_workers_in_its_group(tmp_path):
    # the traced run is a fresh interpreter with its own Ray (own RAY_TMPDIR): a shared Ray in this process is not it
    short = tempfile.mkdtemp(prefix="mvl-")  # Ray's socket paths must stay short
    env = {**os.environ, "RAY_TMPDIR": short, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("RAY_process_group_cleanup_enabled", None)
    trace = tmp_path / "trace.txt"
    cmd = ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace), sys.executable, "-c", SCRIPT]
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    if r.returncode != 0 and "ptrace" in r.stderr:
        pytest.skip(f"strace cannot trace here: {r.stderr.strip()[:200]}")
    assert r.returncode == 0, r.stderr[-2000:]
    lines = trace.read_text().splitlines()
    inet = [(addr, int(port)) for line in lines if (m := _INET.search(line)) for port, addr in [m.groups()]]
    assert inet, "expected Ray's own loopback connections in the trace"
    assert [(a, p) for a, p in inet if a not in ("127.0.0.1", "::1")] == []  # no DNS, no 169.254.169.254
    driver_group, worker_group = map(int, re.search(r"GROUPS (\d+) (\d+)", r.stdout).groups())
    assert worker_group == driver_group  # a SIGKILL of the run's process group reaches its workers
