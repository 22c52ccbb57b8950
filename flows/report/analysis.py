"""What a run produced, as small tables: per stage × category quantiles, S cut-offs, extremes, reasons.

Pure reads of an output root (polars scans; only the columns asked for), shared
by ``magicvl inspect``, the plots and the HTML report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from magicvl.scoring.eval_split import EVAL_KEY, EVAL_REASON
from magicvl.storage.layout import OutputLayout
from magicvl.storage.manifest import read_json
from magicvl.storage.readers import find_rows, list_shards, read_rows

QUANTILES = (0.0, 0.1, 0.5, 0.9, 1.0)
SCORE_COLUMNS = ("complexity", "s_text", "s_image", "s_task")
_NOT_METRICS = {"stage", "width", "height"}


def has_rows(folder: Path) -> bool:
    return bool(list_shards(folder))


def metric_columns(schema: pl.Schema) -> list[str]:
    """S, its axes, then each raw metric (normalised copies left out) present in a table."""
    nums = [n for n, t in schema.items() if t.is_numeric() and n not in _NOT_METRICS and not n.endswith("_norm")]
    return [c for c in SCORE_COLUMNS if c in nums] + [c for c in nums if c not in SCORE_COLUMNS]


def quantile_table(lf: pl.LazyFrame, columns: list[str], by: list[str]) -> pl.DataFrame:
    """Per group: the row count and, for each column, its non-null count and quantiles (q0 = min, q100 = max)."""
    aggs: list[pl.Expr] = [pl.len().alias("n")]
    for c in columns:
        aggs.append(pl.col(c).is_not_null().sum().alias(f"{c}|count"))
        aggs += [pl.col(c).quantile(q, "nearest").alias(f"{c}|q{round(q * 100)}") for q in QUANTILES]
    return lf.group_by(by).agg(aggs).sort(by, nulls_last=True).collect()


def kept(lf: pl.LazyFrame, schema: pl.Schema) -> pl.LazyFrame:
    """Rows that made the curriculum (scores/ holds every fate; curated/ only kept ones)."""
    return lf.filter(pl.col("fate") == "kept") if "fate" in schema else lf


def held_out(schema: pl.Schema) -> pl.Expr:
    """True on the scores ledger's held-out eval rows (kept, reason ``eval_split``, no stage)."""
    if "fate" in schema and "reason" in schema:
        return ((pl.col("fate") == "kept") & (pl.col("reason") == EVAL_REASON)).fill_null(False)
    return pl.lit(False)


def label_eval(lf: pl.LazyFrame, held: pl.Expr) -> pl.LazyFrame:
    """``stage`` as text for the tables: ``"1"``..``"4"``, ``"eval"`` on held-out rows (they belong to no
    stage, whatever stage S gave them), null where not kept."""
    label = pl.when(held).then(pl.lit(EVAL_KEY)).otherwise(pl.col("stage").cast(pl.String))
    return lf.with_columns(label.alias("stage"))


def stage_category_counts(lf: pl.LazyFrame) -> pl.DataFrame:
    """Kept rows per category, one column per stage (and one for the eval split when ``stage`` is labelled
    by ``label_eval`` and holds any), with totals."""
    df = lf.filter(pl.col("stage").is_not_null()).group_by("category", "stage").len().collect()
    df = df.with_columns(pl.col("stage").cast(pl.String))
    wide = df.pivot(on="stage", index="category", values="len", sort_columns=True).fill_null(0).sort("category")
    for k in (1, 2, 3, 4):
        if str(k) not in wide.columns:
            wide = wide.with_columns(pl.lit(0, pl.UInt32).alias(str(k)))
    extra = [pl.col(EVAL_KEY)] if EVAL_KEY in wide.columns else []
    wide = wide.select("category", *[pl.col(str(k)).alias(f"stage {k}") for k in (1, 2, 3, 4)], *extra)
    return wide.with_columns(pl.sum_horizontal(pl.exclude("category")).alias("total"))


def extremes(lf: pl.LazyFrame, k: int = 2, column: str = "complexity") -> pl.DataFrame:
    """The ``k`` lowest- and highest-scoring kept samples of each category."""
    names = lf.collect_schema().names()
    cols = [c for c in ("sample_id", "dataset", "category", "stage", column) if c in names]
    base = lf.filter(pl.col(column).is_not_null()).select(cols)
    low = (
        base.sort(column).group_by("category", maintain_order=True).head(k).with_columns(pl.lit("lowest").alias("end"))
    )
    high = (
        base.sort(column, descending=True)
        .group_by("category", maintain_order=True)
        .head(k)
        .with_columns(pl.lit("highest").alias("end"))
    )
    return pl.concat([low, high]).sort(["category", "end", column], descending=[False, True, False]).collect()


def reason_counts(lf: pl.LazyFrame, column: str, examples: int = 2, limit: int | None = None) -> pl.DataFrame:
    """Rows per reason (or rule, or error kind), most frequent first, with a few example sample ids /
    sources; at most ``limit`` reasons (the most frequent)."""
    ex = "source" if column == "error_kind" else "sample_id"
    out = lf.group_by(column).agg(pl.len().alias("n"), pl.col(ex).head(examples).alias("examples"))
    out = out.sort(["n", column], descending=[True, False])
    return (out.head(limit) if limit else out).collect()


def with_drop_rule(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Dropped rows with a ``rule`` to group them by: the rule (``dedup:exact``) where recorded, else the
    reason; never the per-record reason text alone (``exact duplicate of <id>``: one group per record)."""
    names = lf.collect_schema().names()
    if "rule" in names and "reason" in names:
        return lf.with_columns(pl.coalesce("rule", "reason").alias("rule"))
    return lf if "rule" in names else lf.with_columns(pl.col("reason").alias("rule"))


@dataclass(frozen=True)
class Cutoff:
    """Where a split unit's low stage ends: S below ``s_below`` went to ``low_stage``."""

    split: str
    low_stage: int
    s_below: float | None
    note: str = ""


def cutoffs(manifest: dict[str, Any]) -> list[Cutoff]:
    """The S cut-offs that made the stages, from a run manifest's combine decision."""
    from magicvl.scoring.stages import BINS, group_of

    decision = (manifest.get("steps", {}).get("combine") or {}).get("decision")
    if not decision:
        return []
    out = []
    for split, b in sorted(decision.get("cutoffs", {}).items()):
        low = 1 if group_of(split) == "caption" else 3
        out.append(Cutoff(split, low, None if b < 0 else (b + 1) / BINS, "histogram of S, 1/10000 bins"))
    for unit, u in sorted(decision.get("units", {}).items()):
        out.append(Cutoff(unit, int(u["stage"]), u.get("complexity"), f"whole unit (dataset|category), n={u['n']}"))
    return out


def run_manifest(root: Path) -> dict[str, Any]:
    """The latest run manifest of an output root ({} if none)."""
    path = OutputLayout(root).manifest
    return read_json(path) if path.is_file() else {}


def turns(conversations: list[dict] | None) -> tuple[str, str]:
    """(first prompt, first response) of a conversation, ``<image>`` placeholders removed."""
    prompt = response = ""
    for t in conversations or []:
        if t["from"] in ("human", "user") and not prompt:
            prompt = t["value"].replace("<image>", "").strip()
        elif t["from"] in ("gpt", "assistant") and not response:
            response = t["value"].strip()
    return prompt, response


def sample_details(root: Path, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Prompt, response, image bytes and category of the given samples (read from samples/)."""
    layout = OutputLayout(root)
    if not ids or not has_rows(layout.samples):
        return {}
    cols = ["sample_id", "dataset", "category", "conversations", "image", "source"]
    out = {}
    # ids first, then only the row groups holding them: the report never reads a whole shard of images
    hits = find_rows(list_shards(layout.samples), "sample_id", set(ids))
    for path, rows in hits.items():
        for r in read_rows(path, rows, cols):
            if r["sample_id"] in out:  # a later duplicate id: the first copy is the sample
                continue
            prompt, response = turns(r["conversations"])
            image = (r["image"] or {}).get("bytes")
            out[r["sample_id"]] = {**r, "prompt": prompt, "response": response, "image_bytes": image}
    return out
