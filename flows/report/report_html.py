"""``magicvl report RUN``: a static HTML report of a run that opens from disk.

``<root>/report/index.html`` with the accounting, the S cut-offs, stage ×
category counts, quantiles of S and every metric, the plots (PNG next to it)
and example samples (thumbnail, prompt, response) from each stage and each
drop or quarantine reason. Everything is relative to the report folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from magicvl.flows.report.report_data import draw_plots, gather
from magicvl.flows.report.report_page import render
from magicvl.flows.report.train_report import link_html, write_train_page
from magicvl.storage.layout import OutputLayout
from magicvl.storage.outfs import OutPath, S3Path, as_path


def write_report(root: str | Path, out: str | Path | None = None) -> OutPath:
    """Gather, plot and write ``index.html`` (default ``<root>/report/``); returns its path.

    An object-store report folder is rendered in a local temporary folder, then each file is put."""
    root = as_path(root)
    folder = as_path(out) if out else OutputLayout(root).report
    if isinstance(folder, S3Path):
        with tempfile.TemporaryDirectory(prefix="magicvl-report-") as tmp:
            page = write_report(root, tmp)
            for f in sorted(p for p in Path(tmp).rglob("*") if p.is_file()):
                (folder / f.relative_to(tmp).as_posix()).write_bytes(f.read_bytes())
        return folder / page.name
    folder.mkdir(parents=True, exist_ok=True)
    rep = gather(root)
    rep.plots = draw_plots(rep, folder)
    page = render(rep, folder)
    trained = not isinstance(root, S3Path)  # training refuses s3:// roots: no stages to show there
    if trained and write_train_page(root, folder):  # the training page (flows.report.train_report), linked on top
        page = page.replace("<body>", "<body>" + link_html(), 1)
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
