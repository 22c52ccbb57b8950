"""Issue 20, defect 1: every filter off and no dedup is a valid quality step that keeps every record."""

from __future__ import annotations

import pytest

from magicvl.tasks.steps.quality.step import quality
from tests.tasks.steps.test_quality_step import make_data, recipe_of, run

pytestmark = pytest.mark.slow

ALL_OFF = {
    "filters": {
        n: {"enabled": False} for n in ("response_length", "abnormal_chars", "synthetic_keywords", "repetition")
    },
    "dedup": {"exact": False, "near_image": False},
}


def test_no_filters_and_no_dedup_keep_every_record(tmp_path, tokenizer_dir, ray_local):
    make_data(tmp_path)
    recipe = recipe_of(tmp_path, tokenizer_dir, **ALL_OFF)
    q, acc = run(recipe)
    assert acc["balanced"] and acc["records_in"] == 12 and acc["kept"] == 12 and acc["dropped"] == 0
    assert q["dropped_by_rule"] == {} and q["dedup"]["duplicates"] == {}
    again = quality(recipe)  # a rerun answers every part from its markers
    assert again["verdicts"]["cached"] == again["verdicts"]["units"] == 2
