"""Held-out eval rows belong to no stage: `magicvl inspect` (curated/, scores/, the run root), the HTML
report's stage × category counts and quantiles, and a re-tune's stage transitions count them on their own
``eval`` line, never as stage members or stage moves."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import yaml

from magicvl.storage.readers import list_shards
from tests.helpers import make_dataset

pytestmark = pytest.mark.slow  # one curate and two re-tunes (Ray + Prefect)


def _recipe(root: Path, tokenizer: Path, caption_low_share: float) -> Path:
    recipe = {
        "output": "out",
        "datasets": [{"name": "d", "format": "jsonl", "path": "data/d.jsonl", "image_root": "data/images",
                      "label_field": "category"}],
        "storage": {"shard_max_rows": 7},
        "signals": {"token_length": {"tokenizer": str(tokenizer)}, "image_entropy": {"max_side": 64}},
        "combine": {"granularity": "sample", "stages": {"caption_low_share": caption_low_share},
                    "eval": {"share": 0.25, "min_per_category": 1, "max_per_category": 3}},
        "filters": {"repetition": {"enabled": False}},  # tests.helpers' responses are synthetic repeats
    }  # fmt: skip
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return root / "recipe.yaml"


def _rows(folder: Path, columns: list[str]) -> list[dict]:
    shards = list_shards(folder)
    return pads.dataset([str(p) for p in shards]).to_table(columns=columns).to_pylist() if shards else []


def _where(out: Path) -> dict[str, str]:
    """sample_id → "1".."4" or "eval", from the scores ledger (kept rows only)."""
    ledger = _rows(out / "scores", ["sample_id", "fate", "reason", "stage"])
    return {r["sample_id"]: "eval" if r["reason"] == "eval_split" else str(r["stage"])
            for r in ledger if r["fate"] == "kept"}  # fmt: skip


def _inspect_counts(text: str) -> tuple[list[str], dict[str, dict[str, int]]]:
    """The header and rows of inspect's "rows per category × stage" table."""
    lines = text.split("rows per category × stage:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    header = re.split(r"\s{2,}", lines[0].strip())
    rows = {}
    for line in lines[1:]:
        cat, *ns = line.split()
        rows[cat] = dict(zip(header[1:], map(int, ns)))
    return header, rows


def test_eval_rows_are_their_own_line_in_inspect_report_and_retune(tmp_path, tokenizer_dir, ray_local,
                                                                  prefect_harness) -> None:  # fmt: skip
    from magicvl.flows.curate import combine, curate
    from magicvl.flows.report.inspect import inspect_folder
    from magicvl.flows.report.report_data import gather

    make_dataset(tmp_path / "data", n=40)
    acc = curate(str(_recipe(tmp_path, tokenizer_dir, 0.3)))["accounting"]
    out = tmp_path / "out"
    cats = {r["sample_id"]: r["category"] for r in _rows(out / "curated", ["sample_id", "category"])}
    where = _where(out)
    held = {s for s, w in where.items() if w == "eval"}
    assert len(held) == acc["eval_split"] > 0 and set(where) == set(cats)
    staged = {f"stage {k}": {r["sample_id"] for r in _rows(out / "curated" / f"stage-{k}", ["sample_id"])}
              for k in (1, 2, 3, 4)}  # fmt: skip
    want: dict[str, Counter] = {c: Counter() for c in set(cats.values())}  # by hand: category → column → n
    for s, w in where.items():
        want[cats[s]]["eval" if w == "eval" else f"stage {w}"] += 1
        assert w == "eval" or s in staged[f"stage {w}"]

    for folder in (out / "curated", out / "scores"):  # curated/eval rows carry the stage S gave them
        header, got = _inspect_counts(inspect_folder(folder, rows=0))
        assert header == ["category", "stage 1", "stage 2", "stage 3", "stage 4", "eval"], folder
        assert {c: {k: n for k, n in v.items() if n} for c, v in got.items()} == want, folder
    header, got = _inspect_counts(inspect_folder(out / "curated" / "eval", rows=0))
    assert header[-1] == "eval" and sum(v["eval"] for v in got.values()) == len(held)
    assert sum(sum(v.values()) for v in got.values()) == len(held)  # no stage column counts them
    run = inspect_folder(out)
    assert re.search(rf"curated/eval/\s+\d+ shard\(s\)\s+{len(held)} row\(s\)", run)

    rep = gather(out)  # the HTML report's stage × category table and quantiles (from scores/)
    assert rep.counts is not None and "eval" in rep.counts.columns
    for r in rep.counts.iter_rows(named=True):
        assert {k: n for k, n in r.items() if k not in ("category", "total") and n} == dict(want[r["category"]])
        assert r["total"] == sum(want[r["category"]].values())
    assert rep.quantiles is not None and set(rep.quantiles["stage"]) <= {"1", "2", "3", "4", "eval"}
    assert rep.quantiles.filter(rep.quantiles["stage"] == "eval")["n"].sum() == len(held)

    cached = combine(str(tmp_path / "recipe.yaml"))["transitions"]  # nothing changed: every unit cached
    assert cached.get("eval>eval") == len(held) and not any(k.startswith("0>") and k != "0>0" for k in cached)

    before = where  # a real re-tune: more captions in stage 1, the eval split unchanged
    res = combine(str(_recipe(tmp_path, tokenizer_dir, 0.7)))
    after = _where(out)
    moved = Counter(f"{before.get(s, '0')}>{after.get(s, '0')}" for s in set(before) | set(after))  # 0: not kept
    assert {k: n for k, n in res["transitions"].items() if k != "0>0"} == dict(moved)
    assert res["transitions"]["eval>eval"] == len(held) and {s for s, w in after.items() if w == "eval"} == held
    assert any(a != b for a, b in (k.split(">") for k in moved)), "the re-tune moved no sample: weak check"
