"""The end of a run: the report folder (plots + HTML) and a markdown artifact summarizing the run.

The artifact holds the accounting, stage × category counts, drop and
quarantine reasons, step timings and what was reused, the S cut-offs, and
links to the plots. Every artifact this project publishes has a key
(``prefect artifact ls`` needs one); keys are per step: ``curate-…``,
``score-…``, ``combine-…``.
"""

from __future__ import annotations

import logging
from typing import Any

from magicvl.flows.report import analysis as an
from magicvl.storage.layout import OutputLayout
from magicvl.tasks.artifacts import artifact_key

log = logging.getLogger("magicvl")


def reuse_line(steps: dict[str, Any]) -> str:
    """What a rerun skipped: "ingest: 4 of 13 chunks cached; signals: 9 of 9 shards cached"."""
    parts = []
    ing = steps.get("ingest")
    if isinstance(ing, dict) and "chunks" in ing:
        parts.append(f"ingest: {ing.get('cached_chunks', 0)} of {ing['chunks']} chunks cached")
    sig = steps.get("signals")
    if isinstance(sig, dict):
        shards = [v for v in sig.values() if isinstance(v, dict) and "shards" in v]
        if shards:
            parts.append(
                f"signals: {sum(v['cached'] for v in shards)} of {sum(v['shards'] for v in shards)} shards cached"
            )
        images = {k: v for k, v in sig.items() if isinstance(v, dict) and v.get("images")}
        parts += [
            f"{k}: {v['images_computed']} images computed, {v['images_reused']} reused"
            for k, v in images.items()
        ]
    return "; ".join(parts)


def _md_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["_none_"]
    cols = list(rows[0])
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    return [
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
        *("| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows),
    ]


def markdown(step: str, manifest: dict[str, Any], layout: OutputLayout, plots: list[str]) -> str:
    """The run summary as markdown (for the Prefect UI)."""
    acc = manifest["accounting"]
    from magicvl.flows.report.accounting import stage_table

    ok = "balanced" if acc["balanced"] else "**DOES NOT BALANCE**"
    steps = [
        {"step": k, "seconds": v.get("seconds", "")}
        for k, v in manifest.get("steps", {}).items()
        if isinstance(v, dict)
    ]
    cut = [{"split": c.split, "low stage": c.low_stage, "S below": c.s_below} for c in an.cutoffs(manifest)]
    out = [
        f"# {step}: {layout.root}",
        f"records in **{acc['records_in']}** = kept **{acc['kept']}** + dropped **{acc['dropped']}** + "
        f"quarantined **{acc['quarantined']}** ({ok})",
        "",
        reuse_line(manifest.get("steps", {})) or "",
        "",
        "## Kept per category and stage",
        *_md_table(stage_table(acc)),
        "",
        "## Dropped by reason",
        *_md_table([{"reason": r, "n": n, "examples": "; ".join(acc.get("drop_examples", {}).get(r, []))[:300]}
                    for r, n in acc["dropped_by_reason"].items()]),  # fmt: skip
        "",
        "## Quarantined by error",
        *_md_table([{"error": k, "n": n} for k, n in acc["quarantined_by_error"].items()]),
        "",
        "## Step timings",
        *_md_table(steps),
        "",
        "## S cut-offs that made the stages",
        *_md_table(cut),
        "",
        "## Low-stage share: target vs achieved",
        *_md_table(acc.get("stage_shares", [])),
        "",
        "## Report and plots",
        *[f"- [{p.rsplit('/', 1)[-1]}](file://{p})" for p in plots],
        f"- run manifest: `{layout.root / manifest.get('run_dir', '')}/manifest.json`",
    ]
    return "\n".join(out)


def finish_report(step: str, manifest: dict[str, Any], layout: OutputLayout) -> list[str]:
    """Write the report folder and publish the markdown artifact; a failure here never fails the run."""
    plots: list[str] = []
    try:
        from magicvl.flows.report.report_html import write_report

        page = write_report(layout.root)
        plots = [str(page)] + [str(p) for p in sorted(page.parent.glob("*.png"))]
    except Exception as e:  # the curriculum is written and accounted for; say why the report is not
        log.warning("run report not written: %s: %s", type(e).__name__, e)
    publish_markdown(step, markdown(step, manifest, layout, plots))
    return plots


def publish_markdown(step: str, text: str) -> None:
    """A keyed markdown artifact (no-op outside a Prefect run)."""
    try:
        from prefect.artifacts import create_markdown_artifact
        from prefect.context import get_run_context

        get_run_context()
    except Exception:
        return
    create_markdown_artifact(markdown=text, key=artifact_key(step, "summary"), description=f"{step} run summary")
