"""Re-tuning: what changed since the previous run, and which samples moved between stages.

Re-tuning (``magicvl combine`` after changing β, δ, λ, the split rule or the
granularity) is a decision over stored signals: no model is loaded and no
image byte is copied (``curated/`` rows reference their image, see
``tasks.steps.combine.units``). Each combine unit compares its new stages with the
previous ledger in ``scores/`` and reports the moves; here they add up to a
stage × stage transition table, printed and published as a Prefect artifact,
next to the recipe parameters that changed since the previous recorded run
(``_runs/<run>/recipe.yaml``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from magicvl.storage.layout import OutputLayout
from magicvl.storage.outfs import as_path, parquet_source
from magicvl.storage.readers import list_shards, read_table

if TYPE_CHECKING:
    from magicvl.tasks.recipe import Recipe

NEW = "new"  # a sample no previous ledger holds
OUT = 0  # not kept (dropped or quarantined)
EVAL = 5  # kept but held out in the eval split (curated/eval/): in no stage, shown as ``eval``
_SEP = ">"
RETUNED = ("combine", "cross_modal")  # recipe sections a re-tune compares


# -- per shard (inside a combine unit) -------------------------------------------------------------
def previous_stages(folder: Path, prefix: str) -> dict[str, int]:
    """sample_id → stage (0: not kept, ``EVAL``: held out) from the ledger files of one shard, if any."""
    from magicvl.scoring.eval_split import EVAL_REASON

    out: dict[str, int] = {}
    for p in list_shards(folder) if folder.is_dir() else []:
        if p.name.startswith(prefix):
            names = pq.read_schema(parquet_source(p)).names
            t = read_table(p, columns=["sample_id", "stage"] + (["reason"] if "reason" in names else []))
            stages = pc.fill_null(t.column("stage"), OUT).to_numpy().astype(np.int64)
            if "reason" in names:  # a held-out row has no stage in the ledger, and reason eval_split
                stages[pc.fill_null(pc.equal(t.column("reason"), EVAL_REASON), False).to_numpy()] = EVAL
            out.update(zip(t.column("sample_id").to_pylist(), stages.tolist()))
    return out


def _label(code: int) -> str:
    return NEW if code < 0 else "eval" if code == EVAL else str(code)


def moves(
    before: dict[str, int], sample_ids: list[str], stages: list[Any], held_out: np.ndarray | None = None
) -> dict[str, int]:
    """Counts of ``"<from>><to>"`` (from: previous stage, 0 not kept, ``eval``, ``new``; to: new stage,
    0 not kept, ``eval`` where ``held_out``: an eval row is no stage member, whatever stage S gave it)."""
    n = len(sample_ids)
    prev = np.fromiter((before.get(sid, -1) for sid in sample_ids), np.int64, n)  # -1: new
    if isinstance(stages, np.ndarray):
        to = stages.astype(np.int64)
    else:
        to = np.array([int(st) if st else OUT for st in stages], dtype=np.int64).reshape(n)
    if held_out is not None:
        to[np.asarray(held_out, dtype=bool)] = EVAL
    pairs, counts = np.unique(np.stack([prev, to], axis=1), axis=0, return_counts=True) if n else ([], [])
    return {f"{_label(a)}{_SEP}{_label(b)}": int(k) for (a, b), k in zip(pairs, counts)}


# -- over the step -----------------------------------------------------------------------------------
def transitions(results: list[dict[str, Any]]) -> dict[str, int]:
    """The step's moves; a unit answered from its marker (same inputs, same decision) moved nothing."""
    total: Counter[str] = Counter()
    for r in results:
        if r.get("cached"):
            for key, n in r["kept"].items():
                st = key.split("|", 1)[0]
                total[f"{st}{_SEP}{st}"] += n
            total[f"{OUT}{_SEP}{OUT}"] += sum(r["dropped"].values()) + r["quarantined"]
        else:
            total.update(r.get("moves", {}))
    return dict(total)


def transition_rows(moved: dict[str, int]) -> list[dict[str, Any]]:
    """The stage × stage table as rows: ``from`` then one column per new stage (0 = not kept)."""
    froms = sorted({k.split(_SEP)[0] for k in moved}, key=lambda s: (s == NEW, s))
    tos = sorted({k.split(_SEP)[1] for k in moved} | {"1", "2", "3", "4"})
    return [{"from": f, **{f"to {t}": moved.get(f"{f}{_SEP}{t}", 0) for t in tos}} for f in froms]


def format_transitions(moved: dict[str, int]) -> str:
    """A printable table; the line under it counts the samples whose stage changed."""
    rows = transition_rows(moved)
    if not rows:
        return "stage transitions: no samples"
    cols = list(rows[0])
    width = max(8, *(len(c) for c in cols))
    lines = ["stage transitions (rows: previous stage, columns: new stage; 0 = not kept, eval = held out):"]
    lines.append("".join(c.rjust(width) for c in cols))
    lines += ["".join(str(r[c]).rjust(width) for c in cols) for r in rows]
    changed = sum(n for k, n in moved.items() if k.split(_SEP)[0] not in (k.split(_SEP)[1], NEW))
    lines.append(f"{changed} of {sum(moved.values())} samples changed stage")
    return "\n".join(lines)


def previous_sections(layout: OutputLayout) -> dict[str, Any] | None:
    """The re-tunable sections of the newest recorded run's recipe (None: no run recorded)."""
    recipes = sorted(layout.runs.glob("*/recipe.yaml")) if layout.runs.is_dir() else []
    if not recipes:
        return None
    data = yaml.safe_load(recipes[-1].read_text(encoding="utf-8")) or {}
    return {k: data.get(k) for k in RETUNED}


def changed_parameters(recipe: Recipe, previous: dict[str, Any] | None) -> list[str]:
    """``combine.task.beta: 1.05 → 1.5`` lines: the re-tunable parameters that differ from ``previous``."""
    if previous is None:
        return []
    fields = type(recipe).model_fields
    now = {k: _dump(getattr(recipe, k)) for k in RETUNED}
    before = {}
    for k in RETUNED:
        v = previous.get(k)
        ann = fields[k].annotation
        before[k] = _dump(_validate(ann, v)) if v is not None else None
    return [f"{k}: {_short(a)} → {_short(b)}" for k, a, b in _diff(before, now)]


def _validate(annotation: Any, value: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(annotation).validate_python(value)


def _dump(v: Any) -> Any:
    return v.model_dump(mode="json") if hasattr(v, "model_dump") else v


def _diff(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            out += _diff(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        return out
    return [] if a == b else [(path, a, b)]


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def publish(moved: dict[str, int], changed: list[str]) -> None:
    """The transition table as a Prefect table artifact (key ``stage-transitions``); no-op outside a run."""
    try:
        from prefect.artifacts import create_table_artifact
        from prefect.context import get_run_context

        get_run_context()
    except Exception:
        return
    create_table_artifact(
        key="stage-transitions",
        table=transition_rows(moved),
        description="Samples per (previous stage, new stage); 0 = not kept. Changed: "
        + ("; ".join(changed) if changed else "nothing recorded"),
    )


# -- readers -------------------------------------------------------------------------------------
def with_images(curated: pa.Table, root: str | Path) -> pa.Table:
    """Curated rows with their ``image`` column attached from the samples shards they reference."""
    root = as_path(root)
    images: list[Any] = [None] * curated.num_rows
    shards = curated.column("samples_shard").to_pylist()
    rows = curated.column("samples_row").to_pylist()
    by_shard: dict[str, list[int]] = {}
    for i, s in enumerate(shards):
        by_shard.setdefault(s, []).append(i)
    for shard, idx in by_shard.items():
        col = pq.read_table(parquet_source(root / shard), columns=["image"]).column("image")
        picked = col.take(pa.array([rows[i] for i in idx], pa.int64())).to_pylist()
        for i, img in zip(idx, picked):
            images[i] = img
    from magicvl.storage.schema import CURATED_WITH_IMAGE_SCHEMA, IMAGE_TYPE

    return curated.append_column("image", pa.array(images, IMAGE_TYPE)).cast(CURATED_WITH_IMAGE_SCHEMA)
