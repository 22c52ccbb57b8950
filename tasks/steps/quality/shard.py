"""Per-shard quality work, pure of side effects: read one samples shard, return Arrow tables.

The pipeline step (unit of work: cache key → skip → compute → atomic write →
marker) calls these and writes what they return:

* ``filter_shard``  → ``filter_measures`` (every filter's stored measures) and
  ``filter_decisions`` (fate per sample: filter, measure, value vs threshold).
  ``decide_table`` re-applies thresholds to stored measures: no text is read.
* ``categorize_shard`` → ``categories`` (category and where it came from).
* ``judge_shard`` → ``judge`` (status pass | fail | unparseable, kept, detail, raw answer).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from magicvl.model.backends.generate import Generator
from magicvl.scoring.batch import prompt_text, response_text
from magicvl.scoring.categorize import CategorizeConfig, categorize_batch
from magicvl.scoring.filters import FILTERS
from magicvl.scoring.filters.base import Columns, Verdict
from magicvl.scoring.filters.config import Decisions, FiltersConfig, decide, measure_all, responses_of
from magicvl.scoring.judge import JudgeConfig, classify, judge
from magicvl.storage.readers import iter_batches, read_table
from magicvl.tasks.steps.quality.dedup_near import image_bytes_of

DECISIONS_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("keep", pa.bool_(), nullable=False),
        pa.field("reason", pa.string()),  # first failing filter's reason (null when kept)
        pa.field("measure", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("op", pa.string()),
        pa.field("threshold", pa.float64()),
        pa.field("detail", pa.string()),  # "reason: measure=value op threshold" (the dropped table's reason)
        pa.field("failures", pa.list_(pa.string())),  # every failing filter, described
    ]
)
CATEGORIES_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("category_source", pa.string(), nullable=False),  # label | inspection | vlm | rules
        pa.field("vlm_error", pa.string()),  # why the VLM's answer was not used
    ]
)
JUDGE_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("judge", pa.string(), nullable=False),  # coherence | hallucination
        pa.field("status", pa.string(), nullable=False),  # pass | fail | unparseable | error (generation failed)
        pa.field("keep", pa.bool_(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("answer", pa.string()),
    ]
)


def _batches(path: str, columns: list[str], batch_size: int) -> Iterator[dict[str, list]]:
    for b in iter_batches(path, columns=columns, batch_size=batch_size):
        yield b.to_pydict()


def measures_schema(cfg: FiltersConfig) -> pa.Schema:
    fields = [pa.field("sample_id", pa.string(), nullable=False)]
    for name in cfg.enabled():
        for c in FILTERS[name].columns:
            fields.append(pa.field(c, pa.string() if c.endswith("_first") else pa.float64()))
    return pa.schema(fields)


def decisions_table(sample_ids: list[str], d: Decisions) -> pa.Table:
    rows = {k: [] for k in DECISIONS_SCHEMA.names}
    for sid, v, fails in zip(sample_ids, d.first, d.failures):
        rows["sample_id"].append(sid)
        for k in ("keep", "reason", "measure", "value", "op", "threshold"):
            rows[k].append(getattr(v, k))
        rows["detail"].append(None if v.keep else v.describe())
        rows["failures"].append([f.describe() for f in fails])
    return pa.table(rows, schema=DECISIONS_SCHEMA)


def filter_shard(path: str, cfg: FiltersConfig, batch_size: int = 1024) -> tuple[pa.Table, pa.Table]:
    """(filter_measures, filter_decisions) of one samples shard, rows in shard order."""
    schema = measures_schema(cfg)
    ids: list[str] = []
    parts: list[Columns] = []
    for b in _batches(path, ["sample_id", "conversations"], batch_size):
        ids += b["sample_id"]
        parts.append(measure_all(responses_of(b["conversations"]), cfg))
    cols = {c: np.concatenate([p[c] for p in parts]) if parts else np.zeros(0) for c in schema.names[1:]}
    measures = pa.table({"sample_id": ids, **{c: list(v) for c, v in cols.items()}}, schema=schema)
    return measures, decisions_table(ids, decide(cols, cfg, len(ids)))


def decide_table(measures: pa.Table, cfg: FiltersConfig) -> pa.Table:
    """Re-apply thresholds to a stored ``filter_measures`` table (a threshold change reads no text)."""
    cols = {c: measures.column(c).to_numpy(zero_copy_only=False) for c in measures.column_names[1:]}
    return decisions_table(measures.column("sample_id").to_pylist(), decide(cols, cfg, measures.num_rows))


def categorize_shard(
    path: str,
    cfg: CategorizeConfig,
    inspection: str | None = None,
    classifier: Generator | None = None,
) -> pa.Table:
    """``categories`` of one samples shard: label > inspection > VLM (``cfg.vlm`` run by ``classifier``) > rules.

    ``inspection`` is the dataset's reviewed category (``scoring.review.inspection_category``: None for mixed).
    """
    t = read_table(path, columns=["sample_id", "category", "conversations", "image"])
    convs, labels = t.column("conversations").to_pylist(), t.column("category").to_pylist()
    structs = t.column("image").to_pylist()
    has_image = [i is not None for i in structs]
    vlm, errors = [None] * len(convs), [None] * len(convs)
    todo = [i for i, lab in enumerate(labels) if lab is None and inspection is None]
    if classifier is not None and cfg.vlm is not None and cfg.method == "vlm" and todo:
        got, errs = classify(
            classifier, cfg.vlm, *_texts([convs[i] for i in todo]), [image_bytes_of(structs[i]) for i in todo]
        )
        for i, c, e in zip(todo, got, errs):
            vlm[i], errors[i] = c, e
    cats, sources = categorize_batch(convs, has_image, labels, inspection, vlm)
    return pa.table(
        {"sample_id": t.column("sample_id"), "category": cats, "category_source": sources, "vlm_error": errors},
        schema=CATEGORIES_SCHEMA,
    )


def _texts(convs: list[list[dict[str, str]]]) -> tuple[list[str], list[str]]:
    return [prompt_text(c) for c in convs], [response_text(c) for c in convs]


def judge_shard(path: str, name: str, generator: Generator, cfg: JudgeConfig, batch_size: int = 64) -> pa.Table:
    """``judge`` rows of one samples shard for one configured judge (its policy already applied)."""
    rows: dict[str, list] = {k: [] for k in JUDGE_SCHEMA.names}
    for b in _batches(path, ["sample_id", "conversations", "image"], batch_size):
        images = [image_bytes_of(i) for i in b["image"]]
        res = judge(generator, cfg, *_texts(b["conversations"]), images)
        rows["sample_id"] += b["sample_id"]
        rows["judge"] += [name] * len(images)
        rows["status"] += res.status
        rows["keep"] += res.keep
        rows["detail"] += res.detail
        rows["answer"] += res.answers
    return pa.table(rows, schema=JUDGE_SCHEMA)


__all__ = [
    "CATEGORIES_SCHEMA",
    "DECISIONS_SCHEMA",
    "JUDGE_SCHEMA",
    "Verdict",
    "categorize_shard",
    "decide_table",
    "filter_shard",
    "judge_shard",
    "measures_schema",
]
