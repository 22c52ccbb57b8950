"""``magicvl inspect``: schema, row counts, stage × category table, numeric summaries and a few rows.

On curated/ and scores/ also the S cut-offs of the run, quantiles of S and of
every metric per stage and category, and the lowest- and highest-scoring
samples of each category; on dropped/ and quarantine/ counts per reason with
examples (``flows.report.analysis``; tables drawn with rich).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from magicvl.flows.report import analysis as an
from magicvl.scoring.eval_split import EVAL_KEY
from magicvl.storage.layout import find_root
from magicvl.storage.manifest import read_folder_manifest, read_json
from magicvl.storage.outfs import as_path, parquet_source
from magicvl.storage.readers import list_shards, scan
from magicvl.tasks.steps.combine.eval_split import EVAL_FOLDER

_TABLES = ("samples", "quarantine", "signals", "scores", "dropped", "curated")


def _short(v: object, width: int = 100) -> str:
    s = repr(v) if not isinstance(v, str) else v
    s = s.replace("\n", "\\n")
    return s if len(s) <= width else s[: width - 1] + "…"


def _preview(lf: pl.LazyFrame, n: int) -> list[str]:
    schema = lf.collect_schema()
    cols = []
    for name, dtype in schema.items():
        if name == "image":
            cols.append(pl.col("image").struct.field("path").alias("image.path"))
            cols.append(pl.col("image").struct.field("bytes").bin.size().alias("image.bytes"))
        elif isinstance(dtype, pl.List):
            cols.append(
                pl.col(name).list.eval(pl.element().cast(pl.String, strict=False)).list.join(" | ").alias(name)
                if name != "conversations"
                else pl.col(name).list.eval(pl.element().struct.field("value")).list.join(" ⏎ ").alias(name)
            )
        else:
            cols.append(pl.col(name))
    df = lf.select(cols).head(n).collect()
    out = []
    for i, row in enumerate(df.iter_rows(named=True)):
        out.append(f"  [{i}]")
        out += [f"    {k}: {_short(v)}" for k, v in row.items()]
    return out


def _stage_category(lf: pl.LazyFrame, names: list[str]) -> list[str]:
    """Rows per category × stage (``stage`` labelled by ``_scan``: the eval split is its own column)."""
    if not {"stage", "category"} <= set(names):
        if "category" in names:
            df = lf.group_by("category").len().sort("category").collect()
            return ["rows per category:"] + [f"  {r['category']}: {r['len']}" for r in df.iter_rows(named=True)]
        return []
    df = lf.filter(pl.col("stage").is_not_null()).group_by("category", "stage").len().collect()
    counts = {(r["category"], r["stage"]): r["len"] for r in df.iter_rows(named=True)}
    cats = sorted({c for c, _ in counts}, key=str)
    cols = ["1", "2", "3", "4"] + ([EVAL_KEY] if any(k == EVAL_KEY for _, k in counts) else [])
    name = lambda k: k if k == EVAL_KEY else f"stage {k}"  # noqa: E731
    out = ["rows per category × stage:", f"  {'category':<12}" + "".join(f"{name(k):>10}" for k in cols)]
    for c in cats:
        out.append(f"  {c!s:<12}" + "".join(f"{counts.get((c, k), 0):>10}" for k in cols))
    return out


def _scan(folder: Path, shards: list[Path]) -> pl.LazyFrame:
    """The folder's rows, ``stage`` as text with the held-out eval rows labelled ``eval`` (``analysis.label_eval``):
    in the scores ledger they are kept with reason ``eval_split``; under ``curated/`` they are the rows of
    ``curated/eval/``, whose ``stage`` is the one S gave them but which belong to no stage."""
    lf = scan(folder)
    schema = lf.collect_schema()
    if "stage" not in schema:
        return lf
    held = as_path(find_root(folder)) / "curated" / EVAL_FOLDER
    in_eval = [p for p in shards if p == held or held in p.parents]
    if not in_eval:
        return an.label_eval(lf, an.held_out(schema))
    if len(in_eval) == len(shards):
        return an.label_eval(lf, pl.lit(True))
    parts = [an.label_eval(scan(held), pl.lit(True))]  # curated/: the stage folders, then the eval split
    for sub in sorted(d for d in folder.iterdir() if d.is_dir() and d != held and list_shards(d)):
        parts.append(an.label_eval(scan(sub), pl.lit(False)))
    return pl.concat(parts[1:] + parts[:1], how="diagonal_relaxed")


def _numeric(lf: pl.LazyFrame, schema: pl.Schema) -> list[str]:
    nums = [n for n, t in schema.items() if t.is_numeric() and n not in ("width", "height", "stage")][:12]
    if not nums:
        return []
    aggs = []
    for n in nums:
        aggs += [
            pl.col(n).null_count().alias(f"{n}|nulls"),
            pl.col(n).min().alias(f"{n}|min"),
            pl.col(n).mean().alias(f"{n}|mean"),
            pl.col(n).max().alias(f"{n}|max"),
        ]
    row = lf.select(aggs).collect().row(0, named=True)
    out = ["numeric columns (nulls, min, mean, max):"]
    for n in nums:
        vals = [row[f"{n}|{k}"] for k in ("nulls", "min", "mean", "max")]
        fmt = [str(vals[0])] + [f"{v:.4g}" if v is not None else "-" for v in vals[1:]]
        out.append(f"  {n:<28} {fmt[0]:>8} {fmt[1]:>10} {fmt[2]:>10} {fmt[3]:>10}")
    return out


def _group_counts(lf: pl.LazyFrame, names: list[str]) -> list[str]:
    for col in ("error_kind", "reason", "fate"):
        if col in names:
            df = lf.group_by(col).len().sort("len", descending=True).collect()
            return [f"rows per {col}:"] + [f"  {r[col]}: {r['len']}" for r in df.iter_rows(named=True)]
    return []


def inspect_folder(folder: str | Path, rows: int = 3) -> str:
    """A readable description of an output folder (a run root or any table folder)."""
    folder = as_path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"{folder} does not exist")
    if (folder / "_manifest.json").is_file() and (folder / "samples").is_dir():
        return _inspect_run(folder)
    return _inspect_table(folder, rows)


def _inspect_table(folder: Path, rows: int) -> str:
    shards = list_shards(folder)
    if not shards:
        return f"{folder}: no Parquet shards"
    stored = scan(folder).collect_schema()
    lf = _scan(folder, shards)
    schema = lf.collect_schema()
    names = list(schema.names())
    total = lf.select(pl.len()).collect().item()
    out = [f"{folder}: {len(shards)} shard(s), {total} row(s)"]
    m = read_folder_manifest(folder)
    if m is not None:
        out.append(
            f"manifest: {m.get('rows')} rows in {len(m.get('shards', []))} shard(s), recipe {m.get('recipe_hash')}, "
            f"code {m.get('code_version')}"
        )
        sig = m.get("signal") or {}
        if sig.get("model"):
            random = "  — a TINY RANDOM model: values are not meaningful" if sig.get("model_is_tiny_random") else ""
            out.append(f"signal {sig.get('name')} v{sig.get('version')} by model {sig['model']}{random}")
    out += ["", "schema:"] + [f"  {n}: {t}" for n, t in stored.items()]
    for part in (_stage_category(lf, names), _group_counts(lf, names), _numeric(lf, schema)):
        if part:
            out += [""] + part
    out += _analysis(folder, lf, schema)
    if rows > 0:
        out += ["", f"first {rows} row(s):"] + _preview(lf, rows)
    return "\n".join(out)


def _rich(table) -> list[str]:
    """A rich table as plain text lines (no colour codes: it may go to a file or a test)."""
    import io

    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=160, color_system=None, force_terminal=False).print(table)
    return buf.getvalue().rstrip("\n").splitlines()


def _table(title: str, rows: list[dict], cols: list[str] | None = None) -> list[str]:
    from rich.table import Table

    if not rows:
        return []
    cols = cols or list(rows[0])
    t = Table(title=title, title_justify="left")
    for i, c in enumerate(cols):
        t.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*[f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in cols])
    return ["", *_rich(t)]


def _analysis(folder: Path, lf: pl.LazyFrame, schema: pl.Schema) -> list[str]:
    """Cut-offs, quantiles per stage × category, extremes; or reasons with examples."""
    out: list[str] = []
    names = set(schema.names())
    if {"stage", "category", "complexity"} <= names:
        cut = an.cutoffs(an.run_manifest(find_root(folder)))
        out += _table(
            "S cut-offs that made the stages (from the run manifest)",
            [{"split": c.split, "low stage": c.low_stage, "S below": c.s_below, "how": c.note} for c in cut],
        )
        kept = an.kept(lf, schema)
        q = an.quantile_table(kept, an.metric_columns(schema), ["stage", "category"])
        for c in an.metric_columns(schema):
            rows = [
                {
                    "stage": r["stage"],
                    "category": r["category"],
                    "n": r[f"{c}|count"],
                    **{f"q{round(x * 100)}": r[f"{c}|q{round(x * 100)}"] for x in an.QUANTILES},
                }
                for r in q.iter_rows(named=True)
                if r[f"{c}|count"]
            ]
            out += _table(f"{c} per stage and category (kept)", rows)
        ex = an.extremes(kept)
        out += _table(
            "lowest and highest S per category",
            ex.to_dicts(),
            [c for c in ("category", "end", "complexity", "stage", "dataset", "sample_id") if c in ex.columns],
        )
    if "rule" in names and "reason" in names:
        lf = an.with_drop_rule(lf)  # rule, else reason: reasons carry per-record detail
    for col in ("rule", "reason", "error_kind"):
        if col == "reason" and "rule" in names:
            continue
        if col in names and "fate" not in names:
            rc = an.reason_counts(lf, col, examples=2, limit=100)
            rows = [{col: r[col], "n": r["n"], "examples": ", ".join(r["examples"])} for r in rc.iter_rows(named=True)]
            out += _table(f"rows per {col}, with examples", rows)
    return out


def _inspect_run(root: Path) -> str:
    m = read_json(root / "_manifest.json")
    runs = sorted((root / "_runs").glob("*/manifest.json"))
    acc = m.get("accounting", {})
    out = [
        f"run at {root}",
        f"  recipe {m.get('recipe')} (hash {m.get('recipe_hash')}), code {m.get('code_version')}",
        f"  finished {m.get('finished')}",
        f"  records in {acc.get('records_in')} = kept {acc.get('kept')} + dropped {acc.get('dropped')} + "
        f"quarantined {acc.get('quarantined')} (balanced: {acc.get('balanced')})",
        f"  {len(runs)} recorded run(s) under {root / '_runs'}; report: magicvl report {root}",
        "",
    ]
    folders = [root / name for name in _TABLES if name != "signals"]
    folders.append(root / "curated" / EVAL_FOLDER)  # its own line: the held-out split, in no stage
    folders += sorted(p for p in (root / "signals").glob("*") if p.is_dir())
    for folder in folders:
        shards = list_shards(folder)
        if shards:
            n = sum(pq.ParquetFile(parquet_source(p)).metadata.num_rows for p in shards)
            label = folder.relative_to(root).as_posix() + "/"
            out.append(f"  {label:<28} {len(shards):>5} shard(s) {n:>9} row(s)   magicvl inspect {folder}")
    return "\n".join(out)
