"""Cross-modal complexity end to end: three tiny Qwen2-VL sizes → per-model losses → S_task → stages;
then a β re-tune that loads no model, copies no image byte and moves exactly the expected samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from magicvl.scoring import crossmodal as cm
from magicvl.storage.layout import OutputLayout
from magicvl.storage.readers import list_shards
from magicvl.tasks.steps.combine import retune
from magicvl.tasks.steps.signals import step as signals_step
from tests.helpers import make_dataset

pytestmark = pytest.mark.slow
SIZES = ("s", "m", "l")


@pytest.fixture(scope="module")
def vlms(tmp_path_factory) -> dict[str, Path]:
    from magicvl.model.tiny_vl import build_tiny_vlms

    built = build_tiny_vlms(tmp_path_factory.mktemp("vlm"), families=("qwen2_vl",))
    return {s: built[f"qwen2_vl-{s}"] for s in SIZES}


def recipe_data(tokenizer: Path, vlms: dict[str, Path], beta: float) -> dict:
    return {
        "output": "out",
        "datasets": [{"name": "d", "format": "jsonl", "path": "data/d.jsonl", "image_root": "data/images",
                      "label_field": "category"}],  # fmt: skip
        "storage": {"shard_max_rows": 6},
        "filters": {"repetition": {"enabled": False}},  # tests.helpers' responses are synthetic repeats
        "signals": {"token_length": {"tokenizer": str(tokenizer)}},
        "cross_modal": {"models": {s: {"model": str(p), "resources": {"actors": 1}} for s, p in vlms.items()}},
        "combine": {"granularity": "sample", "task": {"beta": beta, "delta": 0.0}},
        "ray": {"num_cpus": 2},
    }


def write(root: Path, data: dict) -> Path:
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # model order (smallest first) sets the pairs
    return path


def scores(out: Path) -> dict[str, dict]:
    rows = [r for p in list_shards(out / "scores") for r in pq.read_table(p).to_pylist()]
    return {r["sample_id"]: r for r in rows}


def check_s_task(rows: dict[str, dict], beta: float) -> None:
    """S_task per sample: mean over the pairs (s, m), (m, l) of the indicator loss_s > β·loss_l > δ (δ = 0)."""
    for r in rows.values():
        ls, lm, ll = (r[cm.loss_metric(s)] for s in SIZES)
        want = (float(ls > beta * lm > 0.0) + float(lm > beta * ll > 0.0)) / 2
        assert r["s_task"] == pytest.approx(want), r


def test_three_vlms_give_s_task_and_a_beta_retune_loads_no_model(
    tmp_path, tokenizer_dir, vlms, ray_local, prefect_harness, monkeypatch
):
    from magicvl.flows.curate import combine, curate

    make_dataset(tmp_path / "data", n=16)
    path = write(tmp_path, recipe_data(tokenizer_dir, vlms, beta=1.0))
    res = curate(str(path))
    assert res["accounting"]["balanced"] and res["accounting"]["kept"] == 16
    out, layout = tmp_path / "out", OutputLayout(tmp_path / "out")
    for s in SIZES:  # one signal table per model, with the summed NLL and the token count
        files = list_shards(layout.signal_dir(cm.loss_metric(s), "d"))
        t = pq.read_table(files[0]).to_pydict()
        assert {"vlm_loss", "vlm_loss_nll", "vlm_loss_tokens"} <= set(t)
        nll, tok, mean = (np.array(t[c], dtype=float) for c in ("vlm_loss_nll", "vlm_loss_tokens", "vlm_loss"))
        assert (tok > 0).all() and np.allclose(nll / tok, mean)
    first = scores(out)
    assert all(r["s_task"] is not None for r in first.values())
    assert "axes not computed: task" not in res["summary"]
    check_s_task(first, 1.0)

    # re-tune β: no model may load, no image byte is copied, and exactly the expected samples move
    def refuse(*_a, **_k):
        raise AssertionError("re-tuning loaded a model")

    monkeypatch.setattr("magicvl.tasks.backends.load_backend", refuse)
    monkeypatch.setattr("magicvl.model.backends.vlm.load_vlm_backend", refuse)
    monkeypatch.setattr("magicvl.tasks.step.run_on_actors", refuse)
    samples_before = {p: p.stat().st_mtime_ns for p in list_shards(out / "samples")}
    ratios = [r[cm.loss_metric("s")] / r[cm.loss_metric("m")] for r in first.values()]
    beta = float(np.median(ratios))  # about half the samples pass loss_s > β·loss_m: ranks change
    write(tmp_path, recipe_data(tokenizer_dir, vlms, beta=beta))
    again = combine(str(path))
    assert again["changed"] == [f"combine.task.beta: 1.0 → {beta!r}"]
    second = scores(out)
    check_s_task(second, beta)
    assert len({r["s_task"] for r in second.values()}) > 1
    moved = {sid for sid in first if first[sid]["stage"] != second[sid]["stage"]}
    table = again["transitions"]
    assert sum(n for k, n in table.items() if k.split(">")[0] != k.split(">")[1]) == len(moved)
    assert sum(table.values()) == 16
    for sid in moved:
        key = f"{first[sid]['stage']}>{second[sid]['stage']}"
        assert table[key] >= 1
    assert {p: p.stat().st_mtime_ns for p in list_shards(out / "samples")} == samples_before
    curated = [pq.read_schema(p) for p in list_shards(out / "curated")]
    assert curated and all("image" not in s.names and "samples_row" in s.names for s in curated)
    one = pq.read_table(list_shards(out / "curated")[0])
    with_img = retune.with_images(one, out)
    assert with_img.num_rows == one.num_rows and "image" in with_img.column_names
    assert signals_step.signal_jobs  # the steps module stayed importable with run_on_actors patched
