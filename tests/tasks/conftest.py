"""Task-level fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import HOSTILE_LINES, make_dataset


@pytest.fixture
def dataset(tmp_path) -> Path:
    """``d.jsonl`` with 24 good records over all categories and 5 hostile lines, images in ``images/``."""
    make_dataset(tmp_path, extra=HOSTILE_LINES)
    return tmp_path


from tests.scoring.conftest import tiny_lm_dir, tiny_vlm_dir  # noqa: E402,F401  (tiny local judge/classifier)
