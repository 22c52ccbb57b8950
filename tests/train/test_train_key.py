"""The training key: what a stage's weights depend on changes it, what they do not leaves it; a stage folder
of another key is cleared before training, one of the same key resumes or is done."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from magicvl.flows.train_process import prepare_stage, seal_stage
from magicvl.model.train_config import TrainConfig
from magicvl.model.train_key import KEY_FILE, training_key


def config(tiny: Path, **update) -> TrainConfig:
    base = {"model": str(tiny), "stages": {3: {"steps": 4, "lr": 1e-3, "warmup_steps": 1}}}
    return TrainConfig.model_validate({**base, **update})


def test_the_key_follows_data_config_and_start(tmp_path, tiny_dir):
    from magicvl.sample_data.synthetic_curated import write_curated

    curated = write_curated(tmp_path / "out", n_per_stage=8)
    init = tmp_path / "init"
    shutil.copytree(tiny_dir, init)
    key = lambda cfg, start=init: training_key(curated, cfg, 3, start)["key"]  # noqa: E731
    base = key(config(tiny_dir))
    assert key(config(tiny_dir)) == base  # deterministic
    same = [
        config(tiny_dir, log_every=1, checkpoint_every=2, record_samples=True, output="elsewhere"),
        config(tiny_dir, launch={"master_port": 29555, "launcher": "deepspeed"}),
    ]
    assert all(key(c) == base for c in same)  # logging, checkpoint cadence, paths: same weights
    changed = [
        config(tiny_dir, stages={3: {"steps": 4, "lr": 2e-3, "warmup_steps": 1}}),
        config(tiny_dir, seed=1),
        config(tiny_dir, order="all_at_once"),  # other curated data
        config(tiny_dir, launch={"nproc_per_node": 2}),  # another world size splits the data differently
    ]
    assert len({key(c) for c in changed} | {base}) == len(changed) + 1
    # the curated data: one answer edited in one shard of curated stage 3
    shard = sorted((curated / "stage-3").glob("*.parquet"))[0]
    table = pq.read_table(shard).to_pylist()
    table[0]["conversations"][1]["value"] += " edited"
    pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(shard)), shard)
    after_edit = key(config(tiny_dir))
    assert after_edit != base
    # the start: other weights, or a stage output whose own key changed
    (init / "model.safetensors").write_bytes((init / "model.safetensors").read_bytes()[:-1] + b"\0")
    assert key(config(tiny_dir)) != after_edit
    (init / KEY_FILE).write_text(json.dumps({"key": "a"}))
    with_a = key(config(tiny_dir))
    (init / KEY_FILE).write_text(json.dumps({"key": "b"}))
    assert key(config(tiny_dir)) != with_a


def test_prepare_stage_resumes_the_same_key_and_clears_another(tmp_path):
    folder = tmp_path / "stage=3"
    key_a, key_b = {"key": "a"}, {"key": "b"}
    assert prepare_stage(folder, key_a) == "fresh"
    (folder / "checkpoints" / "step-00000002").mkdir(parents=True)
    (folder / "metrics.jsonl").write_text('{"step": 1}\n')
    assert prepare_stage(folder, key_a) == "resume"  # a killed run of the same key: checkpoints stay
    assert (folder / "checkpoints" / "step-00000002").is_dir()
    (folder / "final").mkdir()
    (folder / "final" / "model.safetensors").write_bytes(b"w")
    assert prepare_stage(folder, key_a) == "resume"  # final/ without its key: not known to be done
    seal_stage(folder)
    assert prepare_stage(folder, key_a) == "done"
    (folder / "eval.json").write_text("{}")
    assert prepare_stage(folder, key_b) == "retrain"  # a re-tuned stage: everything of key a is gone
    assert sorted(p.name for p in folder.iterdir()) == ["train_key.json"]
    assert json.loads((folder / "train_key.json").read_text()) == key_b
