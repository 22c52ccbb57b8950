"""Fixtures for training tests: a tiny MagicVL, its processor, synthetic curated shards, a DeepSpeed op cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def _torch_extensions_cache():
    """DeepSpeed compiles a CPU comm op on first use (~40 s+): one cache per checkout, under work/."""
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / "work" / ".torch_extensions"))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    from magicvl.model.tiny import build_tiny_magicvl

    return build_tiny_magicvl(tmp_path_factory.mktemp("magicvl") / "tiny")


@pytest.fixture(scope="session")
def processor(tiny_dir):
    from magicvl.model.processor import MagicVLProcessor

    return MagicVLProcessor.from_pretrained(tiny_dir)


@pytest.fixture(scope="session")
def curated(tmp_path_factory) -> Path:
    """Synthetic curated shards, 16 rows per stage in 2 shards each."""
    from magicvl.sample_data.synthetic_curated import write_curated

    return write_curated(tmp_path_factory.mktemp("curated-root"))


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
