"""``magicvl report RUN``: a static HTML report of a run that opens from disk.

``<root>/report/index.html`` with the accounting, the S cut-offs, stage ×
category counts, quantiles of S and every metric, the plots (PNG next to it)
and example samples (thumbnail, prompt, response) from each stage and each
drop or quarantine reason. Everything is relative to the report folder.
"""

from __future__ import annotations

from pathlib import Path

from magicvl.flows.report_data import draw_plots, gather
from magicvl.flows.report_page import render
from magicvl.storage.layout import OutputLayout


def write_report(root: str | Path, out: str | Path | None = None) -> Path:
    """Gather, plot and write ``index.html`` (default ``<root>/report/``); returns its path."""
    root = Path(root)
    folder = Path(out) if out else OutputLayout(root).report
    folder.mkdir(parents=True, exist_ok=True)
    rep = gather(root)
    rep.plots = draw_plots(rep, folder)
    page = render(rep, folder)
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
