"""The CPU side of ``python -m bench.gpu``: refusal without CUDA, FLOPs/MFU arithmetic, table, and every
row's code path run on CPU with tiny shapes (the GPU run uses the same functions at the real shapes)."""

from __future__ import annotations

import pytest
import torch

from bench import gpu
from magicvl.model.config import QWEN25_1_5B

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")

TINY_LM = gpu.scaled(QWEN25_1_5B, vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2)  # fmt: skip
TINY_VL = gpu.scaled(
    gpu.QWEN2_VL_2B, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]},
    vision_config={**gpu.QWEN2_VL_2B["vision_config"], "depth": 1, "embed_dim": 32, "hidden_size": 32,
                   "num_heads": 2},
)  # fmt: skip


def test_without_cuda_it_refuses_in_one_line(capsys):
    assert gpu.main([]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == "bench.gpu needs a CUDA GPU (torch.cuda.is_available() is False); nothing was run\n"


def test_flops_and_mfu_arithmetic():
    per_layer = 2 * 1536**2 + 2 * 1536 * 256 + 3 * 1536 * 8960  # q,o + k,v (2 KV heads of 128) + MLP
    want = 6.0 * (28 * per_layer + 151936 * 1536) + 12.0 * 28 * 1536 * 16384
    assert gpu.train_flops_per_token(QWEN25_1_5B, 16384) == want  # ≈ 1.71e10 per token
    assert 1.6e10 < want < 1.8e10
    vit = gpu.paper_config().vit_config
    assert gpu.vit_flops_per_tile(vit) == 6.0 * (12 * (4 * 576 * 768**2 + 2 * 576**2 * 768 + 2 * 576 * 768 * 3072)
                                                 + 576 * 3 * 256 * 768)  # fmt: skip
    assert gpu.peak_flops("NVIDIA H100 80GB HBM3") == 989e12 and gpu.peak_flops("Tesla T4") is None
    assert gpu.mfu(20000.0, want, 989e12) == pytest.approx(20000 * want / 989e12)  # ≈ 0.35
    assert gpu.mfu(1.0, want, None) is None


def test_the_paper_preset_is_built_from_configs_without_download():
    cfg = gpu.paper_config()
    assert cfg.vit_path is None and cfg.lm_path is None and cfg.lm_config["hidden_size"] == 1536
    assert cfg.vit_config["hidden_size"] == 768 and cfg.tile_size == 384
    batch = gpu.pack(cfg, 16384, 16)
    assert batch["input_ids"].shape == (1, 16384) and batch["pixel_values"].shape == (16, 3, 384, 384)
    t = cfg.tokens_per_side
    assert int((batch["input_ids"] == cfg.image_token_id).sum()) == 16 * t * t  # one full tile per image
    assert int((batch["position_ids"] == 0).sum()) == 16  # 16 samples packed, positions restart


def test_table_has_one_line_per_row_with_ratios():
    rows = [gpu.Row("perplexity", 900.0, "tok/s", 1000.0, "bare forward loop"), gpu.Row("OCR", None, "img/s", note="x")]
    table = gpu.format_table(rows, "NVIDIA H100")
    assert table.splitlines()[0] == "GPU: NVIDIA H100"
    assert "| perplexity | 900.0 tok/s | 1,000.0 tok/s (bare forward loop) | 0.90× |  |" in table
    assert "| OCR | not run |  |  | x |" in table


def test_every_row_runs_on_cpu_at_a_tiny_shape():
    ppl = gpu.perplexity_row("cpu", TINY_LM, n=4, seq=16, batch=2, repeat=1)
    assert ppl.rate > 0 and ppl.baseline > 0 and ppl.unit == "tok/s"
    vlm = gpu.vlm_loss_row("cpu", TINY_VL, n=2, grid=4, text=8, response=4, batch=2, repeat=1)
    assert vlm.rate > 0 and vlm.baseline > 0
    ocr = gpu.ocr_row("cpu")
    assert ocr.rate is None and ocr.note.startswith("not available: ")  # no CUDA here: one line, no load


def test_the_train_step_and_detector_rows_run_on_cpu_at_a_tiny_shape(tmp_path):
    from transformers import AutoProcessor, GroundingDinoConfig

    from magicvl.model.config import MagicVLConfig
    from magicvl.model.tiny import build_tiny_grounding_dino, build_tiny_magicvl

    cfg = MagicVLConfig.from_pretrained(build_tiny_magicvl(tmp_path / "vl"))
    row = gpu.train_row("cpu", cfg, tokens=2 * cfg.tokens_per_side**2 + 64, images=2, deepspeed=False, repeat=1)
    assert row.rate > 0 and "MFU: unknown peak" in row.note
    folder = build_tiny_grounding_dino(tmp_path / "gd")
    det = gpu.detector_row("cpu", GroundingDinoConfig.from_pretrained(folder), AutoProcessor.from_pretrained(folder),
                           n=2, size=(64, 48), batch=2, repeat=1)  # fmt: skip
    assert det.rate > 0 and det.unit == "img/s"
