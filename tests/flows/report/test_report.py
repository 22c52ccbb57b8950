"""Inspection, plots and the HTML report on an output root with known contents; per-run records."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from magicvl.flows.cli import main
from magicvl.flows.report.inspect import inspect_folder
from magicvl.flows.report.report_data import gather
from magicvl.flows.report.report_html import write_report
from magicvl.flows.report.run_summary import markdown, reuse_line
from magicvl.storage.layout import OutputLayout
from magicvl.storage.runs import list_runs, recipe_label, write_run_record
from magicvl.storage.schema import CURATED_SCHEMA, DROPPED_SCHEMA, QUARANTINE_SCHEMA, SAMPLE_SCHEMA, scores_schema
from magicvl.tasks.artifacts import artifact_key

# (sample_id, category, S, stage); None category = dropped uncategorized
ROWS = [
    ("c0", "caption", 0.10, 1), ("c1", "caption", 0.30, 1), ("c2", "caption", 0.45, 1),
    ("c3", "caption", 0.55, 2), ("c4", "caption", 0.70, 2), ("c5", "caption", 0.90, 2),
    ("o0", "ocr", 0.20, 3), ("o1", "ocr", 0.40, 3), ("o2", "ocr", 0.60, 4), ("o3", "ocr", 0.80, 4),
    ("u0", None, None, None), ("u1", None, None, None),
]  # fmt: skip


def _png(color: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 20), (color, 10, 200)).save(buf, format="PNG")
    return buf.getvalue()


def _write(path: Path, rows: list[dict], schema: pa.Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


@pytest.fixture
def root(tmp_path) -> Path:
    layout = OutputLayout(tmp_path / "out")
    samples = [
        {
            "sample_id": sid, "dataset": "d", "source_key": sid, "source": f"d.jsonl:line {i}", "category": cat,
            "conversations": [
                {"from": "human", "value": f"<image>\nwhat is {sid}?"}, {"from": "gpt", "value": f"it is <{sid}>"}
            ],
            "image": {"bytes": _png(20 * i), "path": f"{sid}.png"}, "width": 40, "height": 20, "image_format": "png",
        }
        for i, (sid, cat, _, _) in enumerate(ROWS)
    ]  # fmt: skip
    _write(layout.samples_dir("d") / "part-000000-000.parquet", samples, SAMPLE_SCHEMA)
    scores = [
        {"sample_id": sid, "dataset": "d", "category": cat, "fate": "kept" if cat else "dropped",
         "reason": None if cat else "uncategorized", "stage": st, "complexity": s, "s_text": s, "s_image": None,
         "s_task": None, "token_length": 10.0 * (i + 1), "token_length_norm": s}
        for i, (sid, cat, s, st) in enumerate(ROWS)
    ]  # fmt: skip
    _write(layout.scores_dir("d") / "part-000000.parquet", scores, scores_schema(("token_length",)))
    for k in (1, 2, 3, 4):
        kept = [
            {**{c: v for c, v in smp.items() if c != "image"}, "stage": st, "complexity": s, "s_text": s,
             "s_image": None, "s_task": None, "samples_shard": "samples/d/part-000000-000.parquet", "samples_row": i}
            for i, (smp, (_, _, s, st)) in enumerate(zip(samples, ROWS))
            if st == k
        ]
        _write(layout.stage_dir(k) / "part-000000-000.parquet", kept, CURATED_SCHEMA)
    dropped = [
        {"sample_id": sid, "dataset": "d", "source": "d.jsonl", "category": None, "step": "combine",
         "reason": "uncategorized"}
        for sid, cat, _, _ in ROWS
        if cat is None
    ]  # fmt: skip
    _write(layout.dropped_dir("d") / "part-000000.parquet", dropped, DROPPED_SCHEMA)
    quarantined = [
        {"dataset": "d", "source": f"d.jsonl:line {90 + i}", "sample_id": None, "step": "ingest",
         "error_kind": kind, "error": f"bad {kind}", "raw": "{x" * 100, "raw_truncated": False}
        for i, kind in enumerate(["invalid_json", "invalid_json", "url_refused"])
    ]  # fmt: skip
    _write(layout.quarantine_dir("d") / "ingest-part-000000-000.parquet", quarantined, QUARANTINE_SCHEMA)
    (layout.root / "_state").mkdir()
    manifest = {
        "recipe": "r.yaml",
        "started": "2026-11-24T10:00:00+00:00",
        "steps": {
            "ingest": {"chunks": 13, "cached_chunks": 4, "seconds": 1.5},
            "combine": {"decision": {"cutoffs": {"caption": 4999, "ocr": 4999}, "units": {}}, "seconds": 0.5},
        },
        "accounting": {
            "records_in": 15, "kept": 10, "dropped": 2, "quarantined": 3, "balanced": True,
            "kept_by_stage_category": {"1|caption": 3, "2|caption": 3, "3|ocr": 2, "4|ocr": 2},
            "dropped_by_reason": {"uncategorized": 2}, "quarantined_by_error": {"invalid_json": 2, "url_refused": 1},
        },
    }  # fmt: skip
    layout.manifest.write_text(json.dumps(manifest))
    return layout.root


def test_gather_counts_cutoffs_quantiles_and_extremes(root):
    rep = gather(root)
    counts = {r["category"]: r for r in rep.counts.iter_rows(named=True)}
    assert (counts["caption"]["stage 1"], counts["caption"]["stage 2"], counts["caption"]["total"]) == (3, 3, 6)
    assert (counts["ocr"]["stage 3"], counts["ocr"]["stage 4"], counts["ocr"]["stage 1"]) == (2, 2, 0)
    assert [(c.split, c.low_stage, c.s_below) for c in rep.cutoffs] == [("caption", 1, 0.5), ("ocr", 3, 0.5)]
    q = {(int(r["stage"]), r["category"]): r for r in rep.quantiles.iter_rows(named=True)}  # "1".."4" (or "eval")
    assert q[(1, "caption")]["complexity|q0"] == 0.10 and q[(1, "caption")]["complexity|q100"] == 0.45
    assert q[(4, "ocr")]["token_length|q50"] in (90.0, 100.0) and q[(4, "ocr")]["n"] == 2
    assert rep.metrics == ["complexity", "s_text", "s_image", "s_task", "token_length"]
    ex = {(r["category"], r["end"]): r["sample_id"] for r in rep.extremes.iter_rows(named=True)}
    assert ex[("caption", "lowest")] in ("c0", "c1") and ex[("caption", "highest")] in ("c5", "c4")
    low = rep.extremes.filter((rep.extremes["category"] == "ocr") & (rep.extremes["end"] == "lowest"))
    assert low["sample_id"].to_list() == ["o0", "o1"]
    assert rep.dropped.to_dicts() == [{"reason": "uncategorized", "n": 2, "examples": ["u0", "u1"]}]
    assert rep.quarantined["error_kind"].to_list() == ["invalid_json", "url_refused"]
    assert rep.stage_examples[1] == ["c0", "c1", "c2"] and rep.stage_examples[3] == ["o0", "o1"]
    # the cut-off separates the stages it made
    for cut in rep.cutoffs:
        lo = q[(cut.low_stage, cut.split)]["complexity|q100"]
        hi = q[(cut.low_stage + 1, cut.split)]["complexity|q0"]
        assert lo < cut.s_below <= hi


def test_report_writes_plots_thumbnails_and_a_page_that_links_only_local_files(root):
    page = write_report(root)
    assert page == root / "report" / "index.html"
    text = page.read_text()
    plots = re.findall(r'class="plot" src="([^"]+)"', text)
    assert sorted(plots) == ["metrics.png", "reasons.png", "s_by_category_stage.png", "stage_category_heatmap.png"]
    for src in re.findall(r'src="([^"]+)"', text):
        f = page.parent / src
        assert not src.startswith(("/", "http")) and f.is_file() and f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(f) as im:
            assert im.size[0] > 0
    thumbs = list((page.parent / "thumbs").glob("*.png"))
    assert len(thumbs) >= 10  # stage examples, extremes and dropped examples, each with its image
    assert "what is c0?" in text and "it is &lt;c0&gt;" in text  # prompt and response, escaped
    assert "uncategorized" in text and "invalid_json" in text and "bad url_refused" in text
    assert "records in <b>15</b>" in text and "balanced" in text


def test_inspect_curated_shows_cutoffs_quantiles_extremes(root):
    text = inspect_folder(root / "curated", rows=0)
    assert "S cut-offs that made the stages" in text and "0.5" in text
    assert "complexity per stage and category (kept)" in text
    assert "lowest and highest S per category" in text and "o0" in text
    scores = inspect_folder(root / "scores", rows=0)
    assert "token_length per stage and category (kept)" in scores
    q = inspect_folder(root / "quarantine", rows=0)
    assert "rows per error_kind, with examples" in q and "d.jsonl:line 90" in q


def test_cli_report_and_inspect_plots(root, capsys):
    assert main(["report", str(root)]) == 0
    assert (root / "report" / "index.html").is_file()
    assert main(["inspect", str(root / "curated"), "--rows", "0", "--plots"]) == 0
    assert "plots and report written to" in capsys.readouterr().out
    assert main(["report", str(root / "nope")]) == 2


def test_run_summary_markdown_and_keys(root):
    manifest = json.loads(OutputLayout(root).manifest.read_text())
    md = markdown("score", manifest, OutputLayout(root), [str(root / "report" / "metrics.png")])
    assert md.startswith("# score: ")
    assert "ingest: 4 of 13 chunks cached" in md and "| uncategorized | 2 |" in md and "| caption | 1 | 0.5 |" in md
    assert "(file://" in md
    assert artifact_key("progress", "signal:image_entropy") == "progress-signal-image-entropy"
    assert reuse_line({"signals": {"a": {"shards": 3, "cached": 3}, "seconds": 1}}) == "signals: 3 of 3 shards cached"


def test_every_run_keeps_its_own_record(tmp_path):
    layout = OutputLayout(tmp_path / "out")
    recipe = tmp_path / "demo" / "recipe.yaml"
    recipe.parent.mkdir()
    for i in range(2):
        recipe.write_text(f"output: out  # version {i}\n")
        started = dt.datetime(2026, 11, 24, 10, i, tzinfo=dt.UTC)
        write_run_record(layout, {"run_id": f"run-{i}", "started": started.isoformat(), "n": i}, recipe)
    runs = list_runs(layout)
    assert [r["n"] for r in runs] == [0, 1]
    assert json.loads(layout.manifest.read_text())["n"] == 1  # the pointer is the latest
    first = layout.root / runs[0]["run_dir"]
    assert (first / "recipe.yaml").read_text() == "output: out  # version 0\n"  # the recipe as it was run
    assert recipe_label(recipe) == "demo" and recipe_label(tmp_path / "x" / "big.yaml") == "big"


def test_drops_group_by_rule_not_by_each_records_reason_text():
    import polars as pl

    from magicvl.flows.report import analysis as an

    lf = pl.LazyFrame({
        "sample_id": [f"s{i}" for i in range(5)],
        "rule": ["dedup:exact", "dedup:exact", "dedup:exact", None, "filter:repetition"],
        "reason": ["exact duplicate of a", "exact duplicate of b", "exact duplicate of c", "uncategorized", "rep=0.4"],
    })  # fmt: skip
    got = an.reason_counts(an.with_drop_rule(lf), "rule", limit=2).to_dicts()
    assert got == [{"rule": "dedup:exact", "n": 3, "examples": ["s0", "s1"]},
                   {"rule": "filter:repetition", "n": 1, "examples": ["s4"]}]  # fmt: skip


def test_strip_plot_draws_every_sample_up_to_the_limit_then_a_seeded_sample():
    import polars as pl

    from magicvl.flows.report.plots import strip_points

    df = pl.DataFrame(
        {"category": ["a"] * 50 + ["b"] * 5, "stage": [3] * 30 + [4] * 20 + [3] * 5, "complexity": range(55)},
        schema_overrides={"complexity": pl.Float64},
    )
    pts, sampled = strip_points(df, ["a", "b"], limit=1000)
    assert not sampled and sorted(pts) == [3, 4]
    assert sorted(pts[3][1].tolist()) == [float(i) for i in list(range(30)) + list(range(50, 55))]
    x = pts[3][0]
    assert ((x[:30] > -0.31) & (x[:30] < 0.31)).all() and ((x[30:] > 0.69) & (x[30:] < 1.31)).all()
    pts, sampled = strip_points(df, ["a", "b"], limit=10)
    assert sampled and len(pts[3][1]) == 10 + 5 and len(pts[4][1]) == 10  # b's 5 are all drawn
    assert set(pts[3][1][:10].tolist()) <= set(map(float, range(30)))
    again, _ = strip_points(df, ["a", "b"], limit=10)
    assert (again[3][1] == pts[3][1]).all()  # seeded: the same sample every run
