"""Target vs achieved low-stage share per split unit, and the warning when they differ (issue 20, defect 7)."""

from __future__ import annotations

from magicvl.scoring.stages import StageRule, achieved_shares, share_warnings, split_units


def test_dataset_granularity_overshoot_is_reported_and_warned():
    # the case: 100 captions in two units; the lower-S unit holds 60, the 0.30 share needs 30
    low = split_units([0.1, 0.9], [60, 40], ["a|caption", "b|caption"], 0.30)
    assert low == {"a|caption"}
    kept = {("caption", 1): 60, ("caption", 2): 40, ("vqa", 3): 44, ("vqa", 4): 56, ("ocr", 4): 10}
    rows = achieved_shares(kept, StageRule())
    assert rows == [
        {"split": "caption", "low stage": 1, "kept": 100, "target": 0.3, "achieved": 0.6, "off (points)": 30.0,
         "warn": True},
        {"split": "ocr", "low stage": 3, "kept": 10, "target": 0.45, "achieved": 0.0, "off (points)": -45.0,
         "warn": True},
        {"split": "vqa", "low stage": 3, "kept": 100, "target": 0.45, "achieved": 0.44, "off (points)": -1.0,
         "warn": False},
    ]  # fmt: skip
    lines = share_warnings(rows, "dataset")
    assert len(lines) == 2 and lines[0].startswith("warning: stage 1 holds 60% of caption (kept 100), target 30%")
    assert "+30.0 points" in lines[0] and "whole (dataset, category) units" in lines[0]
    assert "whole" not in share_warnings(rows, "sample")[0]


def test_group_split_pools_the_instruction_categories_and_ten_points_is_allowed():
    kept = {("vqa", 3): 30, ("vqa", 4): 20, ("ocr", 3): 5, ("ocr", 4): 45, ("caption", 1): 40, ("caption", 2): 60}
    rows = achieved_shares(kept, StageRule(split_within="group"))
    assert [(r["split"], r["kept"], r["achieved"], r["warn"]) for r in rows] == [
        ("caption", 100, 0.4, False),  # exactly 10 points over: not more than 10
        ("instruction", 100, 0.35, False),
    ]
    assert share_warnings(rows, "dataset") == []
