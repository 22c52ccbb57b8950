"""Shared fixtures: quiet offline settings, a tiny local tokenizer, one Ray and one Prefect harness per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before prefect/ray are imported anywhere: nothing in $HOME, nothing phoned home, loopback only.
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="magicvl-tests-"))
os.environ.setdefault("PREFECT_HOME", str(_SESSION_TMP / "prefect"))
os.environ.setdefault("RAY_TMPDIR", str(_SESSION_TMP / "ray"))
os.environ.setdefault("MAGICVL_CACHE", str(_SESSION_TMP / "cache"))  # remembered model hashes: not in $HOME

from magicvl.flows.runtime import set_quiet_env  # noqa: E402  (after the environment above)

set_quiet_env()


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """The tiny byte-level BPE tokenizer the demo uses (trained locally, deterministic)."""
    from magicvl.model.tiny import build_tokenizer

    return build_tokenizer(tmp_path_factory.mktemp("models") / "tokenizer")


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole session (2 CPUs, 127.0.0.1); flows reuse it."""
    import ray

    from magicvl.flows.runtime import ray_session

    with ray_session("local", num_cpus=2):
        yield ray
    # ray_session shuts Ray down on exit


@pytest.fixture(scope="session", autouse=True)
def _prefect_logging_on_session_streams():
    """Prefect binds its console log handler to ``sys.stderr`` when it first sets up logging. Do that
    here, while ``sys.stderr`` is pytest's session-wide capture: were the first flow of the process run
    inside a ``capsys`` test, the handler would keep that test's buffer, closed after it, and every
    later flow would fail on logging ("I/O operation on closed file")."""
    from prefect.logging.configuration import setup_logging

    setup_logging()


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API for flows under test."""
    import logging

    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
        logging.disable(logging.INFO)  # the harness logs its shutdown after pytest closed the streams
    logging.disable(logging.NOTSET)


@pytest.fixture(scope="session")
def causal_lm_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2ForCausalLM with the tiny tokenizer and chat template beside it."""
    from magicvl.model.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("models") / "causal_lm")


@pytest.fixture(scope="session")
def grounding_dino_dir(tmp_path_factory) -> Path:
    """A tiny random Grounding DINO (model + processor)."""
    from magicvl.model.tiny import build_tiny_grounding_dino

    return build_tiny_grounding_dino(tmp_path_factory.mktemp("models") / "grounding_dino")
