"""What the run report shows, gathered from an output root (tables via ``flows.report.analysis``, plots)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from magicvl.flows.report import analysis as an
from magicvl.flows.report import plots
from magicvl.storage.layout import OutputLayout
from magicvl.storage.readers import scan

MAX_REASONS = 30  # drop rules / error kinds shown (most frequent first) in the plots and the report


@dataclass
class Report:
    """What the report shows, gathered from an output root."""

    root: Path
    manifest: dict[str, Any]
    counts: pl.DataFrame | None = None
    quantiles: pl.DataFrame | None = None
    metrics: list[str] = field(default_factory=list)
    cutoffs: list[an.Cutoff] = field(default_factory=list)
    extremes: pl.DataFrame | None = None
    dropped: pl.DataFrame | None = None
    quarantined: pl.DataFrame | None = None
    stage_examples: dict[int, list[str]] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)


def gather(root: Path, per_stage: int = 3) -> Report:
    """Read the tables the report needs (scores/ for S and metrics; dropped/ and quarantine/ for reasons)."""
    layout = OutputLayout(root)
    rep = Report(root, an.run_manifest(root))
    rep.cutoffs = an.cutoffs(rep.manifest)
    if an.has_rows(layout.scores):
        lf = scan(layout.scores)
        schema = lf.collect_schema()
        kept = an.kept(lf, schema)
        shown = an.label_eval(kept, an.held_out(schema))  # the eval split: its own column and rows
        rep.metrics = an.metric_columns(schema)
        rep.counts = an.stage_category_counts(shown)
        rep.quantiles = an.quantile_table(shown, rep.metrics, ["stage", "category"])
        rep.extremes = an.extremes(shown)
        ranked = kept.select("sample_id", "stage", "complexity").drop_nulls("complexity").collect()
        for k in (1, 2, 3, 4):
            part = ranked.filter(pl.col("stage") == k).sort("complexity")
            if part.height:  # lowest, middle and highest S of the stage
                idx = sorted({round(i * (part.height - 1) / max(per_stage - 1, 1)) for i in range(per_stage)})
                rep.stage_examples[k] = [part["sample_id"][i] for i in idx]
    if an.has_rows(layout.dropped):
        lf = an.with_drop_rule(scan(layout.dropped))
        rep.dropped = an.reason_counts(lf, "rule", limit=MAX_REASONS).rename({"rule": "reason"})
    if an.has_rows(layout.quarantine):
        rep.quarantined = an.reason_counts(scan(layout.quarantine), "error_kind", limit=MAX_REASONS)
    return rep


def draw_plots(rep: Report, folder: Path) -> list[Path]:
    """The four plots, as PNG files in ``folder``."""
    layout = OutputLayout(rep.root)
    out = []
    if rep.counts is not None and rep.counts.height:
        lf = scan(layout.scores)
        kept = an.kept(lf, lf.collect_schema())
        df = kept.select("category", "stage", "complexity").drop_nulls("complexity").collect()
        out.append(plots.s_by_category_stage(df, folder / "s_by_category_stage.png"))
        out.append(plots.stage_category_heatmap(rep.counts, folder / "stage_category_heatmap.png"))
        raw = [m for m in rep.metrics if m not in an.SCORE_COLUMNS]
        if raw:
            out.append(plots.metric_histograms(scan(layout.scores, raw).collect(), raw, folder / "metrics.png"))
    out.append(plots.reasons(rep.dropped, rep.quarantined, folder / "reasons.png"))
    return out
