"""The HTML of the run report (sections rendered from a gathered ``report_data.Report``)."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import polars as pl

from magicvl.flows.report import analysis as an
from magicvl.flows.report.report_data import Report
from magicvl.storage.layout import OutputLayout
from magicvl.storage.readers import scan

THUMB_SIDE = 160
CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
.ok{color:#2a7a2a}.bad{color:#b00}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px;width:260px;font-size:12px}
.card img{max-width:240px;max-height:160px;display:block;margin-bottom:4px}
.card .p{color:#555}.card .r{color:#000}
img.plot{max-width:100%;border:1px solid #eee;margin:0.5em 0}
"""


def thumbnail(image_bytes: bytes | None, path: Path) -> str | None:
    """A small PNG of an image (None when there is none or it does not decode)."""
    if not image_bytes:
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(image_bytes)) as im:
            im.thumbnail((THUMB_SIDE, THUMB_SIDE))
            path.parent.mkdir(parents=True, exist_ok=True)
            im.convert("RGB").save(path, format="PNG")
    except Exception:
        return None
    return path.name


def esc(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape("" if v is None else str(v))


def table(rows: list[dict[str, Any]], cols: list[str] | None = None) -> str:
    if not rows:
        return "<p><i>none</i></p>"
    cols = cols or list(rows[0])
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{esc(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _accounting(m: dict[str, Any]) -> str:
    acc = m.get("accounting", {})
    if not acc:
        return "<p>no run manifest found</p>"
    ok = '<b class="ok">balanced</b>' if acc.get("balanced") else '<b class="bad">DOES NOT BALANCE</b>'
    steps = [
        {"step": k, "seconds": v.get("seconds"), "cached": v.get("cached_chunks", "")}
        for k, v in m.get("steps", {}).items()
        if isinstance(v, dict)
    ]
    return (
        f"<p>records in <b>{acc['records_in']}</b> = kept <b>{acc['kept']}</b> + dropped <b>{acc['dropped']}</b>"
        f" + quarantined <b>{acc['quarantined']}</b> — {ok}</p>"
        f"<p>recipe {esc(m.get('recipe'))} (hash {esc(m.get('recipe_hash'))}), code {esc(m.get('code_version'))},"
        f" finished {esc(m.get('finished'))}</p>" + table(steps)
    )


def _quantiles(rep: Report) -> str:
    if rep.quantiles is None:
        return ""
    parts = []
    for c in rep.metrics:
        rows = [
            {
                "stage": r["stage"],
                "category": r["category"],
                "n": r[f"{c}|count"],
                **{f"q{round(q * 100)}": r[f"{c}|q{round(q * 100)}"] for q in an.QUANTILES},
            }
            for r in rep.quantiles.iter_rows(named=True)
            if r[f"{c}|count"]
        ]
        if rows:
            parts.append(f"<h3>{esc(c)}</h3>" + table(rows))
    return "<h2>Quantiles per stage and category (kept samples)</h2>" + "".join(parts)


def _card(d: dict[str, Any] | None, sid: str, label: str, thumbs: Path) -> str:
    if d is None:
        return f'<div class="card">{esc(label)}<br>{esc(sid)} (not in samples/)</div>'
    img = thumbnail(d.get("image_bytes"), thumbs / f"{sid[:24]}.png")
    tag = f'<img src="thumbs/{img}" alt="{esc(sid)}">' if img else "<i>no image</i>"
    return (
        f'<div class="card">{tag}<b>{esc(label)}</b> · {esc(d.get("dataset"))}/{esc(d.get("category"))}<br>'
        f'<span class="p">Q: {esc(d["prompt"][:200])}</span><br><span class="r">A: {esc(d["response"][:300])}</span>'
        f"<br><small>{esc(sid[:16])}…</small></div>"
    )


def _examples(rep: Report, folder: Path) -> str:
    ids = [s for v in rep.stage_examples.values() for s in v]
    if rep.extremes is not None:
        ids += rep.extremes["sample_id"].to_list()
    if rep.dropped is not None:
        ids += [s for ex in rep.dropped["examples"] for s in ex]
    details = an.sample_details(rep.root, ids)
    scores = _score_of(rep.root, ids)
    thumbs = folder / "thumbs"
    out = ["<h2>Examples per stage (lowest, middle, highest S)</h2>"]
    for k, sids in rep.stage_examples.items():
        cards = "".join(
            _card(details.get(s), s, f"stage {k}, S={scores.get(s, float('nan')):.3f}", thumbs) for s in sids
        )
        out.append(f"<h3>stage {k}</h3><div class='cards'>{cards}</div>")
    if rep.extremes is not None:
        out.append("<h2>Lowest and highest S per category</h2>")
        for cat in rep.extremes["category"].unique(maintain_order=True).to_list():
            rows = rep.extremes.filter(pl.col("category") == cat).iter_rows(named=True)
            cards = "".join(
                _card(
                    details.get(r["sample_id"]),
                    r["sample_id"],
                    f"{r['end']}, stage {r['stage']}, S={r['complexity']:.3f}",
                    thumbs,
                )
                for r in rows
            )
            out.append(f"<h3>{esc(cat)}</h3><div class='cards'>{cards}</div>")
    if rep.dropped is not None:
        out.append("<h2>Dropped, per reason</h2>")
        for r in rep.dropped.iter_rows(named=True):
            cards = "".join(_card(details.get(s), s, f"dropped: {r['reason']}", thumbs) for s in r["examples"])
            out.append(f"<h3>{esc(r['reason'])} ({r['n']})</h3><div class='cards'>{cards}</div>")
    return "".join(out)


def _score_of(root: Path, ids: list[str]) -> dict[str, float]:
    layout = OutputLayout(root)
    if not ids or not an.has_rows(layout.scores):
        return {}
    df = scan(layout.scores, ["sample_id", "complexity"]).filter(pl.col("sample_id").is_in(ids)).collect()
    return {
        r["sample_id"]: (r["complexity"] if r["complexity"] is not None else float("nan"))
        for r in df.iter_rows(named=True)
    }


def _quarantine(rep: Report) -> str:
    if rep.quarantined is None:
        return ""
    layout = OutputLayout(rep.root)
    rows = []
    for r in rep.quarantined.iter_rows(named=True):
        ex = (
            scan(layout.quarantine, ["error_kind", "source", "error", "raw"])
            .filter(pl.col("error_kind") == r["error_kind"])
            .head(2)
            .collect()
        )
        for e in ex.iter_rows(named=True):
            rows.append(
                {
                    "error kind": r["error_kind"],
                    "count": r["n"],
                    "source": e["source"],
                    "error": e["error"],
                    "raw (start)": (e["raw"] or "")[:120],
                }
            )
    return "<h2>Quarantined, per error kind (with examples)</h2>" + table(rows)


def render(rep: Report, folder: Path) -> str:
    """The whole page."""
    cut = [{"split": c.split, "low stage": c.low_stage, "S below": c.s_below, "how": c.note} for c in rep.cutoffs]
    reasons = (
        [{"reason": r["reason"], "dropped": r["n"]} for r in rep.dropped.iter_rows(named=True)]
        if rep.dropped is not None
        else []
    )
    imgs = "".join(f'<img class="plot" src="{p.name}" alt="{p.stem}">' for p in rep.plots)
    body = [
        f"<h1>Run report: {esc(rep.root)}</h1>",
        "<h2>Accounting</h2>" + _accounting(rep.manifest),
        "<h2>S cut-offs that made the stages</h2>" + table(cut),
        "<h2>Low-stage share: target vs achieved</h2>"
        + table(rep.manifest.get("accounting", {}).get("stage_shares", [])),
        "<h2>Kept samples: stage × category</h2>" + (table(rep.counts.to_dicts()) if rep.counts is not None else ""),
        "<h2>Drop reasons</h2>" + table(reasons),
        "<h2>Plots</h2>" + imgs,
        _quantiles(rep),
        _examples(rep, folder),
        _quarantine(rep),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>magicvl run report</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    )
