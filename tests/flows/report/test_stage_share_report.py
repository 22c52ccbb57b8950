"""The run summary, markdown artifact and HTML report show target vs achieved low-stage share (issue 20, defect 7)."""

from __future__ import annotations

from magicvl.scoring.stages import StageRule, achieved_shares


def _accounting() -> dict:
    return {"records_in": 100, "kept": 100, "dropped": 0, "quarantined": 0, "balanced": True,
            "kept_by_stage_category": {"1|caption": 60, "2|caption": 40}, "dropped_by_reason": {},
            "quarantined_by_error": {},
            "stage_shares": achieved_shares({("caption", 1): 60, ("caption", 2): 40}, StageRule())}  # fmt: skip


def test_the_summary_and_markdown_show_the_table(tmp_path):
    from magicvl.flows.curate import kept_counts
    from magicvl.flows.report.accounting import format_summary
    from magicvl.flows.report.run_summary import markdown
    from magicvl.storage.layout import OutputLayout

    acc = _accounting()
    assert achieved_shares(kept_counts(acc), StageRule()) == acc["stage_shares"]
    text = format_summary(acc, OutputLayout(tmp_path), [])
    assert "low-stage share, target vs achieved:" in text
    row = next(line for line in text.splitlines() if line.startswith("caption") and "0.6" in line)
    assert row.split()[-4:] == ["0.3", "0.6", "30.0", "True"]
    md = markdown("curate", {"accounting": acc}, OutputLayout(tmp_path), [])
    assert "## Low-stage share: target vs achieved" in md and "| caption | 1 | 100 | 0.3 | 0.6 | 30 | True |" in md


def test_the_html_report_shows_the_table(tmp_path):
    from magicvl.flows.report.report_data import Report
    from magicvl.flows.report.report_page import render

    page = render(Report(tmp_path, {"accounting": _accounting()}), tmp_path)
    assert "<h2>Low-stage share: target vs achieved</h2>" in page
    assert "<td>caption</td><td>1</td><td>100</td><td>0.3</td><td>0.6</td><td>30</td><td>True</td>" in page
