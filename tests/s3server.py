"""A local S3-compatible server for tests: moto in server mode on 127.0.0.1, a free port, its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# moto signs nothing and checks nothing; the AWS SDK still wants credentials to sign with
# (without them it would probe the instance-metadata endpoint)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server(timeout: float = 60.0) -> Iterator[str]:
    """Start ``moto.server`` on 127.0.0.1; yield its endpoint URL; stop it (this process only) on exit."""
    pytest.importorskip("moto.server", reason="moto[server] is in the dev extra")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **CREDENTIALS},
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on 127.0.0.1:{port}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def s3fs_for(endpoint: str):
    """A pyarrow S3 filesystem on the test server that may create buckets (the tests' own uploader)."""
    from pyarrow.fs import S3FileSystem

    return S3FileSystem(
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        endpoint_override=endpoint.split("://", 1)[1],
        scheme="http",
        allow_bucket_creation=True,
    )


def upload_tree(s3, local: Path, dest: str) -> list[str]:
    """Copy every file under ``local`` to ``dest`` (``bucket/prefix``); returns the keys written."""
    keys = []
    for p in sorted(local.rglob("*")):
        if p.is_file():
            key = f"{dest}/{p.relative_to(local).as_posix()}"
            with s3.open_output_stream(key) as f:
                f.write(p.read_bytes())
            keys.append(key)
    return keys
