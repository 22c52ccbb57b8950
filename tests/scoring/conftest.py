"""Tiny local generation models for the judge and classifier tests (built offline, random weights)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """A 2-layer Qwen2 causal LM with the project's tiny tokenizer (``model.tiny.build_tiny_causal_lm``)."""
    from magicvl.model.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("judge") / "tiny-lm")


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory) -> Path:
    from magicvl.model.tiny import build_tiny_magicvl

    return build_tiny_magicvl(tmp_path_factory.mktemp("judge") / "tiny-magicvl")
