"""The summary's stage × category table shows the held-out eval split as its own column, and the stage
shares leave eval rows out."""

from __future__ import annotations


def test_eval_keys_become_an_eval_column_and_stay_out_of_stage_shares(tmp_path) -> None:
    from magicvl.flows.curate import kept_counts
    from magicvl.flows.report.accounting import format_summary, stage_table
    from magicvl.storage.layout import OutputLayout

    acc = {"records_in": 12, "kept": 12, "dropped": 0, "quarantined": 0, "balanced": True,
           "kept_by_stage_category": {"1|caption": 6, "2|caption": 3, "eval|caption": 2, "eval|ocr": 1},
           "dropped_by_reason": {}, "quarantined_by_error": {}}  # fmt: skip
    rows = stage_table(acc)
    assert rows[1] == {"category": "caption", "stage 1": 6, "stage 2": 3, "stage 3": 0, "stage 4": 0, "eval": 2,
                       "total": 11}  # fmt: skip
    assert rows[-1]["eval"] == 3 and rows[-1]["total"] == 12
    assert kept_counts(acc) == {("caption", 1): 6, ("caption", 2): 3}
    text = format_summary(acc, OutputLayout(tmp_path), [])
    assert "(3 kept samples held out, in no stage)" in text
    assert "eval" not in stage_table({**acc, "kept_by_stage_category": {"1|caption": 1}})[0]  # no split, no column
