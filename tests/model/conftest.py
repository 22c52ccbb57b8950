"""Tiny random MagicVL checkpoints, built once per session (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """Tiny MagicVL with a Qwen2 LM, saved with ``save_pretrained`` next to its tokenizer."""
    from magicvl.model.tiny import build_tiny_magicvl

    return build_tiny_magicvl(tmp_path_factory.mktemp("magicvl") / "tiny-qwen2", lm="qwen2")


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory) -> Path:
    """Tiny MagicVL with a Qwen3 LM."""
    from magicvl.model.tiny import build_tiny_magicvl

    return build_tiny_magicvl(tmp_path_factory.mktemp("magicvl") / "tiny-qwen3", lm="qwen3")


@pytest.fixture(scope="session")
def tiny_model(tiny_dir):
    """The Qwen2 tiny model in eval mode; tests must not modify it."""
    from magicvl.model.magicvl import MagicVL

    return MagicVL.from_pretrained(tiny_dir)


@pytest.fixture(scope="session")
def processor(tiny_dir):
    from magicvl.model.processor import MagicVLProcessor

    return MagicVLProcessor.from_pretrained(tiny_dir)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny matmuls are faster on one thread; with 2 threads on a busy 2-core box they spin (100x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
