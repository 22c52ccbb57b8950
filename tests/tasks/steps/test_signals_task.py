"""One signal over one shard: keyed paths, skipping, --force, stale versions, per-row errors."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals import get_signal
from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset
from magicvl.storage.options import StorageOptions
from magicvl.storage.readers import file_metadata
from magicvl.tasks.steps.ingest.units import ingest_chunk
from magicvl.tasks.steps.signals.units import SignalJob, SignalUnit, compute_rows


def score_shard(job, dataset, sh, out, force=False):
    return SignalUnit(job, dataset, sh, out, StorageOptions(), 10**8, 10**8).run(force)


CFG = DatasetConfig(name="d", format="jsonl", path="d.jsonl", image_root="images", label_field="category")


def shard(dataset, out):
    opts = IngestOptions(chunk_records=100)
    (chunk,) = plan_dataset(CFG, dataset, opts)
    return ingest_chunk(chunk, CFG, opts, StorageOptions(), str(out), str(dataset), [])["shards"][0]


def test_cache_key_path_skip_and_force(dataset, tmp_path, tokenizer_dir):
    out = tmp_path / "out"
    sh = shard(dataset, out)
    s = get_signal("token_length")
    job = SignalJob.of(s, s.params(tokenizer=str(tokenizer_dir)))
    first = score_shard(job, "d", sh, str(out))
    assert not first["cached"] and first["rows"] == 25 and first["errors"] == 0
    assert first["path"].endswith(f"part-000000-000-{first['key'][:16]}.parquet")
    meta = file_metadata(first["path"])
    assert meta["input_sha256"] == sh["sha256"] and meta["signal"] == "token_length"
    second = score_shard(job, "d", sh, str(out))
    assert second["cached"] and _sans_mtime(second["outputs"]) == _sans_mtime(first["outputs"])
    forced = score_shard(job, "d", sh, str(out), force=True)
    assert not forced["cached"] and forced["outputs"][0]["sha256"] == first["outputs"][0]["sha256"]  # deterministic


def test_new_params_give_a_new_key_and_replace_the_stale_file(dataset, tmp_path, tokenizer_dir):
    out = tmp_path / "out"
    sh = shard(dataset, out)
    s = get_signal("type_token_ratio")
    a = score_shard(SignalJob.of(s, s.params(tokenizer=str(tokenizer_dir), unit="token")), "d", sh, str(out))
    b = score_shard(SignalJob.of(s, s.params(tokenizer=str(tokenizer_dir), unit="word")), "d", sh, str(out))
    assert a["key"] != b["key"] and not b["cached"]
    files = sorted(p.name for p in (out / "signals" / "type_token_ratio" / "d").glob("*.parquet"))
    assert files == [b["path"].rsplit("/", 1)[1]]


def test_model_identity_is_part_of_the_key(dataset, tmp_path, tokenizer_dir):
    import shutil

    s = get_signal("token_length")
    copy = tmp_path / "tok2"
    shutil.copytree(tokenizer_dir, copy)
    same = SignalJob.of(s, s.params(tokenizer=str(copy))).key("x")
    assert same == SignalJob.of(s, s.params(tokenizer=str(tokenizer_dir))).key("x")  # a copy is the same model
    (copy / "tokenizer_config.json").write_text((copy / "tokenizer_config.json").read_text().replace("32768", "1000"))
    assert SignalJob.of(s, s.params(tokenizer=str(copy))).key("x") != SignalJob.of(
        s, s.params(tokenizer=str(tokenizer_dir))
    ).key("x")


def test_one_failing_row_does_not_sink_the_batch():
    s = get_signal("image_entropy")
    job = SignalJob.of(s, s.params())
    batch = SampleBatch(["a", "b"], [[], []], [b"junk", None])
    cols, errors = compute_rows(job, batch, None)
    assert errors[0] and errors[1] is None and np.isnan(cols["image_entropy"]).all()


def test_signal_rows_follow_the_shard(dataset, tmp_path):
    out = tmp_path / "out"
    sh = shard(dataset, out)
    s = get_signal("image_entropy")
    res = score_shard(SignalJob.of(s, s.params()), "d", sh, str(out))
    ids = pq.read_table(sh["path"], columns=["sample_id"]).column("sample_id")
    t = pq.read_table(res["path"])
    assert t.column("sample_id").equals(ids)
    ent = t.column("image_entropy").to_numpy(zero_copy_only=False)
    images = pq.read_table(sh["path"], columns=["image"]).column("image").to_pylist()
    assert all(np.isnan(e) == (img is None) for e, img in zip(ent, images))


def _sans_mtime(outputs: list[dict]) -> list[dict]:
    """Output records without the mtime the marker stamps (see storage.verify)."""
    return [{k: v for k, v in o.items() if k != "mtime_ns"} for o in outputs]
