"""Combine, per samples shard: gather statistics, score, and write the curated stages.

No model runs here: only signal tables and sample metadata are read. The
final write (``CombineUnit``) puts each kept sample's row into
``curated/stage-<k>/`` with a reference to its image (``samples_shard``,
``samples_row``), never the image bytes, so a re-tune rewrites metadata only;
it also reports how many of its samples moved between stages. Rows the dedup
step quarantined (later duplicates, matched by their ``source``) are left out
of every pass. Rows the quality step dropped (``tasks.steps.quality.verdicts``) are left out
of scoring and written to ``dropped/`` and ``scores/`` with their step, rule
and reason; the others take their category and ``category_source`` from the
verdicts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from magicvl.model.costs import CostModel
from magicvl.scoring.combine import CombineConfig
from magicvl.scoring.eval_split import id_hashes, shard_candidates
from magicvl.scoring.score import Decision, gather_stats, score_rows, split_histograms
from magicvl.scoring.signals import base_name
from magicvl.storage.fingerprint import stable_hash
from magicvl.storage.options import StorageOptions
from magicvl.storage.outfs import as_path
from magicvl.storage.readers import column_values, iter_batches, read_table
from magicvl.storage.schema import CURATED_SCHEMA, DROPPED_SCHEMA, QUARANTINE_SCHEMA, SAMPLE_SCHEMA, scores_schema
from magicvl.tasks.steps.combine.eval_split import apply_eval, eval_dir
from magicvl.tasks.steps.combine.retune import moves, previous_stages
from magicvl.tasks.unit import Outputs, Unit, UnitKey

COMBINE_VERSION = "5"  # 2: dedup's rows left out; 3: quality verdicts; 4: curated rows reference their image;
# 5: curated rows carry their packing costs (text_tokens, visual_tokens, token_counter)
_META = ["sample_id", "dataset", "category", "source"]


@dataclass(frozen=True)
class ShardInputs:
    """One samples shard and, per metric, the signal file holding it."""

    dataset: str
    path: str
    sha256: str
    signal_paths: dict[str, str]  # metric → signal file
    signal_keys: dict[str, str]  # metric → cache key (for the write marker)
    duplicate_paths: tuple[str, ...] = ()  # the dataset's dedup quarantine files (their rows are left out)
    verdict_path: str | None = None  # the quality step's verdicts (tasks.steps.quality.verdicts): fates and categories
    verdict_sha: str | None = None

    @property
    def stem(self) -> str:
        return Path(self.path).name.removesuffix(".parquet")


@dataclass
class ShardColumns:
    """The rows of a shard that combine scores (later duplicates left out), with their metrics."""

    n_rows: int  # rows in the shard
    index: np.ndarray  # int64, shard positions of the rows below
    sample_ids: list[str]
    datasets: list[str]
    categories: list[str | None]
    sources: list[str]
    metrics: dict[str, np.ndarray]
    errors: list[list[str]]
    category_sources: list[str | None]
    pre_dropped: list[dict[str, Any]]  # rows the quality step dropped (step, rule, reason): in dropped/ and scores/


def load_columns(inp: ShardInputs) -> ShardColumns:
    """Sample metadata joined with every signal (errors gathered per row); later duplicates left out.

    Columnar throughout (Arrow masks and takes): a re-tune reads every shard three times."""
    meta_t = read_table(inp.path, columns=_META)
    n = meta_t.num_rows
    not_dup = np.ones(n, dtype=bool)
    if inp.duplicate_paths:
        dups = pa.array(sorted(set(column_values(list(inp.duplicate_paths), "source"))), pa.string())
        not_dup = ~pc.fill_null(pc.is_in(meta_t.column("source"), value_set=dups), False).to_numpy(zero_copy_only=False)
    verdict = _verdicts(inp, meta_t)
    keep = verdict.column("keep").to_numpy(zero_copy_only=False).astype(bool)
    index = np.flatnonzero(not_dup & keep).astype(np.int64)
    pre_rows = np.flatnonzero(not_dup & ~keep)
    pre = pa.Table.from_arrays(
        [meta_t.column(c).take(pre_rows) for c in ("sample_id", "dataset", "source")]
        + [verdict.column(c).take(pre_rows) for c in ("category", "category_source", "step", "rule", "reason")],
        names=["sample_id", "dataset", "source", "category", "category_source", "step", "rule", "reason"],
    )
    pre_dropped = pre.to_pylist()
    take = pa.array(index, pa.int64())
    pick = lambda col: col.take(take).to_pylist()  # noqa: E731
    ids = pick(meta_t.column("sample_id"))
    errors: list[list[str]] = [[] for _ in ids]
    metrics = {}
    for metric, path in inp.signal_paths.items():
        col = base_name(metric)  # vlm_loss@7b: column vlm_loss of that instance's files
        t = read_table(path, columns=["sample_id", col, "error"])
        if t.column("sample_id").equals(meta_t.column("sample_id")):  # the file follows the shard: columnar
            values = pc.fill_null(t.column(col), np.nan).to_numpy()
            err_col = t.column("error")
        else:
            values, err_col = _signal_column(t, col, meta_t.column("sample_id"))
        if err_col.null_count < len(err_col):
            errs = err_col.take(take)
            for j in np.flatnonzero(pc.is_valid(errs).to_numpy(zero_copy_only=False)):
                errors[j].append(f"{metric}: {errs[int(j)].as_py()}")
        metrics[metric] = values[index]
    return ShardColumns(n, index, ids, pick(meta_t.column("dataset")), pick(verdict.column("category")),
                        pick(meta_t.column("source")), metrics, errors, pick(verdict.column("category_source")),
                        pre_dropped)  # fmt: skip


def _verdicts(inp: ShardInputs, meta: pa.Table) -> pa.Table:
    """The quality step's fate and category per row (shard order); without one, every row kept with its label."""
    if inp.verdict_path is None:
        labels = meta.column("category")
        source = pc.if_else(pc.is_valid(labels), "label", pa.scalar(None, pa.string()))
        nulls = pa.nulls(meta.num_rows, pa.string())
        return pa.table({"keep": pa.array(np.ones(meta.num_rows, dtype=bool)), "category": labels,
                         "category_source": source, "step": nulls, "rule": nulls, "reason": nulls})  # fmt: skip
    v = read_table(inp.verdict_path)
    if not v.column("source").equals(meta.column("source")):
        raise ValueError(f"verdicts {inp.verdict_path} do not follow samples shard {inp.path}: rerun the quality step")
    return v


def _signal_column(t: pa.Table, metric: str, ids: pa.ChunkedArray) -> tuple[np.ndarray, pa.ChunkedArray]:
    """A signal's values and errors in shard order, joined by id (first row of an id wins); a sample
    the file lacks gets the error ``no value computed for this sample``."""
    pos = pc.index_in(ids, value_set=t.column("sample_id").combine_chunks())  # null where the file lacks the id
    found = pc.is_valid(pos)
    safe = pc.fill_null(pos, 0)
    values = pc.fill_null(t.column(metric).take(safe), np.nan).to_numpy(zero_copy_only=False).astype(np.float64)
    values[~found.to_numpy(zero_copy_only=False)] = np.nan
    errors = pc.if_else(found, t.column("error").take(safe), pa.scalar("no value computed for this sample"))
    return values, errors


def shard_stats(inp: ShardInputs, cfg: CombineConfig) -> dict[str, Any]:
    """Pass 1: mergeable statistics of one shard."""
    c = load_columns(inp)
    return gather_stats(c.datasets, c.categories, c.metrics, c.errors, cfg).to_dict()


def shard_histograms(inp: ShardInputs, cfg: CombineConfig, decision: dict[str, Any]) -> dict[str, np.ndarray]:
    """Pass 2 (sample granularity): histograms of S per split unit."""
    c = load_columns(inp)
    rows = score_rows(c.datasets, c.categories, c.metrics, c.errors, cfg, _decision(decision))
    return split_histograms(c.categories, rows, cfg.stages)  # int64 arrays: compact to ship and to add


def _decision(d: dict[str, Any]) -> Decision:
    from magicvl.scoring.normalize import Moments

    return Decision(
        d["granularity"],
        d["metric_axes"],
        {m: Moments.from_dict(v) for m, v in d["moments"].items()},
        dict(d["cutoffs"]),
        d["units"],
        list(d["absent_axes"]),
    )


def shard_eval_candidates(inp: ShardInputs, cfg: CombineConfig, decision: dict[str, Any]) -> dict:
    """One shard's kept rows per category: count and smallest ``max_per_category`` id hashes."""
    c = load_columns(inp)
    rows = score_rows(c.datasets, c.categories, c.metrics, c.errors, cfg, _decision(decision))
    kept = np.array([f == "kept" for f in rows.fate], dtype=bool)
    assert cfg.eval is not None
    return shard_candidates(c.categories, kept, id_hashes(c.sample_ids), cfg.eval.max_per_category)


class CombineUnit(Unit):
    """Pass 3 of one samples shard: scores ledger, dropped, quarantined and curated rows."""

    step = "combine"

    def __init__(self, inp: ShardInputs, cfg: CombineConfig, decision: dict[str, Any], storage: StorageOptions,
                 out_root: str, batch_size: int = 256, costs: CostModel = CostModel()) -> None:  # fmt: skip
        super().__init__(out_root, storage)
        self.inp, self.cfg, self.decision, self.batch_size = inp, cfg, decision, batch_size
        self.costs = costs

    @property
    def marker_name(self) -> str:
        return f"{self.inp.dataset}/{self.inp.stem}"

    def key(self) -> UnitKey:
        params = {
            "cfg": self.cfg.model_dump(mode="json"),
            "decision": stable_hash(self.decision),
            "signals": self.inp.signal_keys,
            "verdicts": self.inp.verdict_sha,
            "duplicates": [Path(p).name for p in self.inp.duplicate_paths],
            "storage": self.storage.model_dump(),
            "costs": self.costs.files_digest,
        }
        return UnitKey(self.inp.sha256, "combine", COMBINE_VERSION, params)

    def compute(self, out: Outputs, backend: Any) -> dict[str, Any]:
        inp, layout = self.inp, self.layout
        stem = f"{inp.dataset}-{inp.stem}"
        c = load_columns(inp)
        rows = score_rows(c.datasets, c.categories, c.metrics, c.errors, self.cfg, _decision(self.decision))
        is_eval = apply_eval(rows, c.sample_ids, c.categories, self.decision)  # held out: curated/eval/
        before = previous_stages(layout.scores_dir(inp.dataset), f"{stem}-")  # read before the ledger is replaced
        for d in (*(layout.stage_dir(k) for k in (1, 2, 3, 4)), eval_dir(layout)):  # this shard's rows or none
            out.own(d, f"{stem}-")
        for d in (layout.scores_dir(inp.dataset), layout.dropped_dir(inp.dataset)):
            out.own(d, f"{stem}-")
        out.own(layout.quarantine_dir(inp.dataset), f"combine-{stem}-")
        _write_ledger(out, layout, inp, stem, c, rows, is_eval)
        _write_curated(out, layout, inp, stem, c, rows, self.batch_size, self.costs, is_eval)
        label = ["eval" if e else str(s) for s, e in zip(rows.stage, is_eval)]  # eval rows: "eval|<category>"
        kept = Counter(f"{label[i]}|{c.categories[i]}" for i, f in enumerate(rows.fate) if f == "kept")
        dropped = Counter(r for f, r in zip(rows.fate, rows.reason) if f == "dropped")
        dropped.update(d["rule"] for d in c.pre_dropped)
        return {
            "dataset": inp.dataset,
            "shard": inp.stem,
            "rows": len(c.sample_ids),
            "kept": dict(kept),
            "dropped": dict(dropped),
            "drop_examples": drop_examples(c.pre_dropped),
            "quarantined": sum(f == "quarantined" for f in rows.fate),
            "moves": moves(before, c.sample_ids, rows.stage, is_eval),
        }


def _write_ledger(out: Outputs, layout, inp: ShardInputs, stem: str, c: ShardColumns, rows, is_eval) -> None:
    metrics = tuple(c.metrics)
    ledger = {
        "sample_id": c.sample_ids,
        "dataset": c.datasets,
        "category": c.categories,
        "category_source": c.category_sources,
        "fate": rows.fate,
        "reason": rows.reason,
        "stage": [int(s) if s and not e else None for s, e in zip(rows.stage, is_eval)],  # eval rows: no stage
        "complexity": _opt(rows.complexity),
        "s_text": _opt(rows.axes["text"]),
        "s_image": _opt(rows.axes["image"]),
        "s_task": _opt(rows.axes["task"]),
    }
    for m in metrics:
        ledger[m] = _opt(c.metrics[m])
        ledger[f"{m}_norm"] = _opt(rows.normalized[m])
    ledger_writer = out.writer(layout.scores_dir(inp.dataset), stem, scores_schema(metrics))
    ledger_writer.write(pa.table(ledger, schema=scores_schema(metrics)))
    ledger_writer.write_rows([{**d, "fate": "dropped"} for d in c.pre_dropped])  # the quality step's drops
    dropped = [
        {
            "sample_id": c.sample_ids[i],
            "dataset": c.datasets[i],
            "source": c.sources[i],
            "category": c.categories[i],
            "step": "combine",
            "rule": f"combine:{rows.reason[i]}",
            "reason": rows.reason[i],
        }
        for i, f in enumerate(rows.fate)
        if f == "dropped"
    ] + c.pre_dropped
    quarantined = [
        {
            "dataset": c.datasets[i],
            "source": c.sources[i],
            "sample_id": c.sample_ids[i],
            "step": "signal",
            "error_kind": "signal_error",
            "error": rows.reason[i],
            "raw": None,
            "raw_truncated": False,
        }
        for i, f in enumerate(rows.fate)
        if f == "quarantined"
    ]
    for directory, prefix, schema, data in (
        (layout.dropped_dir(inp.dataset), stem, DROPPED_SCHEMA, dropped),
        (layout.quarantine_dir(inp.dataset), f"combine-{stem}", QUARANTINE_SCHEMA, quarantined),
    ):
        if data:
            out.writer(directory, prefix, schema).write_rows(data)


def _opt(a: np.ndarray) -> pa.Array:
    """Floats with NaN as null (vectorised: a ledger of 1M rows must not loop in Python)."""
    return pa.array(np.asarray(a, dtype=np.float64), pa.float64(), from_pandas=True)


def _write_curated(out: Outputs, layout, inp: ShardInputs, stem: str, c: ShardColumns, rows, batch_size: int,
                   costs: CostModel, is_eval: np.ndarray | None = None) -> None:  # fmt: skip
    """Write kept samples' rows into their stage folders, in shard order: metadata, conversations, scores
    and packing costs, with a reference to the image (samples shard + row) instead of its bytes (re-tune
    copies no image)."""
    n_all = c.n_rows
    stage_all = np.zeros(n_all, dtype=np.int8)  # 0: not kept (dropped, quarantined, later duplicate)
    stage_all[c.index] = [int(s) if s else 0 for s in rows.stage]
    eval_all = np.zeros(n_all, dtype=bool)  # held-out rows: curated/eval/ (with the stage S gave them), no stage folder
    if is_eval is not None:
        eval_all[c.index] = is_eval
    category_all: list[str | None] = [None] * n_all
    source_all: list[str | None] = [None] * n_all
    for j, i in enumerate(c.index):
        category_all[i], source_all[i] = c.categories[j], c.category_sources[j]
    full_all = {}
    for name, arr in (("complexity", rows.complexity), *((f"s_{a}", rows.axes[a]) for a in ("text", "image", "task"))):
        v = np.full(n_all, np.nan)
        v[c.index] = arr
        full_all[name] = v
    shard_ref = as_path(inp.path).resolve().relative_to(layout.root.resolve()).as_posix()
    columns = [f.name for f in CURATED_SCHEMA if f.name in SAMPLE_SCHEMA.names]
    writers = {}
    offset = 0
    for rb in iter_batches(inp.path, columns=columns, batch_size=batch_size):
        n = rb.num_rows
        stage = stage_all[offset : offset + n]
        table = pa.Table.from_batches([rb])
        cat = table.schema.get_field_index("category")
        table = table.set_column(cat, "category", pa.array(category_all[offset : offset + n], pa.string()))
        table = table.append_column("category_source", pa.array(source_all[offset : offset + n], pa.string()))
        table = table.append_column("stage", pa.array(stage, pa.int8()))
        for name, v in full_all.items():
            table = table.append_column(name, pa.array(v[offset : offset + n], pa.float64(), from_pandas=True))
        table = table.append_column("samples_shard", pa.array([shard_ref] * n, pa.string()))
        table = table.append_column("samples_row", pa.array(np.arange(offset, offset + n), pa.int64()))
        table = _append_costs(table, costs, np.flatnonzero(stage > 0))
        held = eval_all[offset : offset + n]
        for k in (1, 2, 3, 4, 0):  # 0: the eval split
            mask = held & (stage > 0) if k == 0 else (stage == k) & ~held
            if mask.any():
                if k not in writers:
                    writers[k] = out.writer(layout.stage_dir(k) if k else eval_dir(layout), stem, CURATED_SCHEMA)
                writers[k].write(table.filter(pa.array(mask)))
        offset += n


def _append_costs(table: pa.Table, costs: CostModel, kept: np.ndarray) -> pa.Table:
    """Packing costs of the kept rows (``model.costs``; null elsewhere), from width/height: no image decoded."""
    sub = table.take(pa.array(kept, pa.int64())).select(["conversations", "height", "width"]).to_pydict()
    counted = costs.columns(sub["conversations"], list(zip(sub["height"], sub["width"])))
    for name, typ in (("text_tokens", pa.int32()), ("visual_tokens", pa.int32()), ("token_counter", pa.string())):
        full: list[Any] = [None] * table.num_rows
        for j, i in enumerate(kept):
            full[i] = counted[name][j]
        table = table.append_column(name, pa.array(full, typ))
    return table


def drop_examples(pre_dropped: list[dict[str, Any]], per_rule: int = 2) -> dict[str, list[str]]:
    """A few ``dataset/sample_id: reason`` lines per quality rule (for the run summary)."""
    out: dict[str, list[str]] = {}
    for d in pre_dropped:
        ex = out.setdefault(d["rule"], [])
        if len(ex) < per_rule:
            ex.append(f"{d['dataset']}/{d['sample_id']}: {d['reason']}")
    return out
