"""Model-backed signals through the task path: stored columns, boxes, cache keys, load errors, light tokenizers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from safetensors.torch import load_file, save_file

from magicvl.model.backends.base import BackendError, LightTokenizer
from magicvl.scoring.signals import get_signal
from magicvl.storage.ingest import DatasetConfig, IngestOptions, plan_dataset
from magicvl.storage.options import StorageOptions
from magicvl.tasks.backends import check_backend, load_backend
from magicvl.tasks.steps.ingest.units import fused_signals, ingest_chunk
from magicvl.tasks.steps.signals.units import SignalJob, SignalUnit

CFG = DatasetConfig(name="d", format="jsonl", path="d.jsonl", image_root="images", label_field="category")


def score_shard(job: SignalJob, dataset: str, sh: dict, out: str) -> dict:
    """One signal over one samples shard through the signal step's unit of work."""
    return SignalUnit(job, dataset, sh, out, StorageOptions(), 10**8, 10**8).run()


def shard(dataset, out):
    opts = IngestOptions(chunk_records=100)
    (chunk,) = plan_dataset(CFG, dataset, opts)
    return ingest_chunk(chunk, CFG, opts, StorageOptions(), str(out), str(dataset), [])["shards"][0]


def test_object_density_end_to_end_boxes_stored_and_counted(dataset, tmp_path, grounding_dino_dir):
    out = tmp_path / "out"
    sh = shard(dataset, out)
    s = get_signal("object_density")
    job = SignalJob.of(s, s.params(model=str(grounding_dino_dir), labels=("cat", "text"), box_threshold=0.05))
    res = score_shard(job, "d", sh, str(out))
    assert res["rows"] == 25 and res["errors"] == 0
    table = pq.read_table(res["path"]).to_pylist()
    samples = pq.read_table(sh["path"], columns=["sample_id", "width", "height"]).to_pylist()  # same row order
    n_images = sum(r["width"] is not None for r in samples)
    assert n_images >= 15 and sum(r["object_density_count"] or 0 for r in table) > 0
    for r, sample in zip(table, samples, strict=True):
        assert r["sample_id"] == sample["sample_id"]
        w, h = sample["width"], sample["height"]
        if w is None:
            assert r["object_density"] is None and r["object_density_boxes"] is None
            continue
        boxes = json.loads(r["object_density_boxes"])
        assert r["object_density_count"] == len(boxes)
        assert r["object_density"] == pytest.approx(len(boxes) / (w * h / 1e6))
        for b in boxes:
            x0, y0, x1, y1 = b["box"]
            assert -1 <= x0 <= x1 <= w + 1 and -1 <= y0 <= y1 <= h + 1 and b["score"] >= 0.05
            assert isinstance(b["label"], str)  # the phrase; empty when no query token passes text_threshold


def test_perplexity_through_score_shard(dataset, tmp_path, causal_lm_dir):
    out = tmp_path / "out"
    sh = shard(dataset, out)
    s = get_signal("perplexity")
    res = score_shard(SignalJob.of(s, s.params(model=str(causal_lm_dir))), "d", sh, str(out))
    t = pq.read_table(res["path"]).to_pydict()
    assert res["rows"] == 25 and res["errors"] == 0
    assert all(p > 1 for p in t["perplexity"])
    assert np.allclose(np.exp(t["perplexity_nll"]), t["perplexity"]) and min(t["perplexity_tokens"]) >= 1


def test_model_backed_signals_are_not_fused_into_ingestion(causal_lm_dir, tokenizer_dir, grounding_dino_dir):
    names = [
        ("perplexity", {"model": str(causal_lm_dir)}),
        ("ocr_text_density", {"tokenizer": str(tokenizer_dir)}),
        ("object_density", {"model": str(grounding_dino_dir)}),
        ("token_length", {"tokenizer": str(tokenizer_dir)}),
    ]
    fused = fused_signals([(n, get_signal(n).params(**p)) for n, p in names])
    assert [f.name for f in fused] == ["token_length"]


def test_cache_key_follows_the_weights_not_the_batch_size(causal_lm_dir, tmp_path):
    s = get_signal("perplexity")
    other = tmp_path / "other"
    shutil.copytree(causal_lm_dir, other)
    key = SignalJob.of(s, s.params(model=str(causal_lm_dir))).key("shard")
    assert SignalJob.of(s, s.params(model=str(other))).key("shard") == key  # same content, other folder
    assert SignalJob.of(s, s.params(model=str(causal_lm_dir), batch_size=64)).key("shard") == key
    assert SignalJob.of(s, s.params(model=str(causal_lm_dir), max_length=512)).key("shard") != key
    weights = load_file(other / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1.0  # same shapes, same file size, different values
    save_file(weights, other / "model.safetensors", metadata={"format": "pt"})
    assert (other / "model.safetensors").stat().st_size == (causal_lm_dir / "model.safetensors").stat().st_size
    assert SignalJob.of(s, s.params(model=str(other))).key("shard") != key


def test_a_model_that_cannot_load_is_one_clear_error(tmp_path, tokenizer_dir):
    s = get_signal("perplexity")
    with pytest.raises(BackendError, match=r"signal 'perplexity': cannot load causal LM .*nowhere"):
        check_backend(s, s.params(model=str(tmp_path / "nowhere")))
    d = get_signal("object_density")
    with pytest.raises(BackendError, match="signal 'object_density': cannot load detector"):
        check_backend(d, d.params(model=str(tokenizer_dir)))


def test_token_signals_load_a_light_tokenizer_with_identical_ids(tokenizer_dir):
    from transformers import AutoTokenizer

    s = get_signal("token_length")
    tok = load_backend(s, s.params(tokenizer=str(tokenizer_dir)))
    assert isinstance(tok, LightTokenizer)
    texts = ["A photograph of a cat.", "", "unseen wörds — 你好 <|im_end|> <image>", "  x  \n y"]
    want = AutoTokenizer.from_pretrained(tokenizer_dir)(texts, add_special_tokens=False)["input_ids"]
    assert tok(texts, add_special_tokens=False)["input_ids"] == want


def test_a_tokenizer_config_that_rewrites_the_pre_tokenizer_falls_back_to_transformers(tokenizer_dir, tmp_path):
    from magicvl.model.backends.base import load_text_tokenizer

    other = tmp_path / "tok"
    shutil.copytree(tokenizer_dir, other)
    cfg = json.loads((other / "tokenizer_config.json").read_text())
    (other / "tokenizer_config.json").write_text(json.dumps({**cfg, "add_prefix_space": True}))
    assert not isinstance(load_text_tokenizer(str(other)), LightTokenizer)
    assert isinstance(load_text_tokenizer(str(tokenizer_dir)), LightTokenizer)


def test_a_detector_query_longer_than_the_model_takes_is_one_clear_error(grounding_dino_dir):
    d = get_signal("object_density")
    check_backend(d, d.params(model=str(grounding_dino_dir)))  # the 16 default labels fit the tiny model
    many = tuple(f"object {k}" for k in range(40))
    with pytest.raises(BackendError, match=r"signal 'object_density': the query of 40 labels is \d+ tokens, over"):
        check_backend(d, d.params(model=str(grounding_dino_dir), labels=many))
