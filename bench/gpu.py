"""GPU benchmark of the model steps and one training step: ``python -m bench.gpu`` (one CUDA GPU, ≤ 8 min).

Nothing is downloaded: every model is built at its real shape from a config with random weights
(values do not matter, speed does). Rows, each measured in this one run:

* perplexity: ``TransformersCausalLM.score`` with a Qwen2.5-1.5B shape vs a bare forward loop over
  the same batches (tokens/s; target ≥ 0.9× the loop);
* VLM loss: ``VlmLoss.forward_nll`` with a Qwen2-VL-2B shape (448 px images) vs a bare forward loop;
* OCR: rapidocr on onnxruntime's CUDA provider vs one CPU core (the CPU default, OpenVINO bf16) on
  the same rendered documents; reported as not available when onnxruntime-gpu or CUDA is missing;
* object density: Grounding DINO-T shape (Swin-T + BERT-base), images/s through ``GroundingDinoDetector``;
* training: one optimizer step of the paper preset (SigLIP2-B/16 + Qwen2.5-1.5B, bf16, DeepSpeed
  ZeRO-2) on one 16,384-token pack with images; tokens/s and MFU (model FLOPs / peak bf16 FLOPs).

Without CUDA it refuses in one line (exit 2). The row functions take a device and a shape, so the
tests run them on CPU with tiny shapes (tests/bench/test_gpu_bench.py).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from magicvl.model.config import QWEN25_1_5B, MagicVLConfig

# Qwen2-VL-2B-Instruct (public config.json): Qwen2-1.5B-shaped LM + 675M ViT (depth 32, 1280 wide).
QWEN2_VL_2B = {
    "model_type": "qwen2_vl",
    "vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
    "num_attention_heads": 12, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "max_position_embeddings": 32768,
    "tie_word_embeddings": True, "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "rope_theta": 1000000.0, "image_token_id": 151655, "video_token_id": 151656,
    "vision_start_token_id": 151652, "vision_end_token_id": 151653,
    "vision_config": {"depth": 32, "embed_dim": 1280, "hidden_size": 1536, "mlp_ratio": 4, "num_heads": 16,
                      "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
}  # fmt: skip

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}  # dense, no sparsity


@dataclass(frozen=True)
class Row:
    """One line of the table: what ran, its rate, the baseline's rate and what the ratio means."""

    name: str
    rate: float | None  # units/s of the project's code path (None: not run)
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.rate / self.baseline if self.rate and self.baseline else None


def format_table(rows: list[Row], device: str) -> str:
    """The one table the benchmark prints (markdown, pasted into bench/README.md)."""
    lines = [f"GPU: {device}", "", "| row | rate | baseline | ratio | note |", "|---|---|---|---|---|"]
    for r in rows:
        rate = f"{r.rate:,.1f} {r.unit}" if r.rate is not None else "not run"
        base = f"{r.baseline:,.1f} {r.unit} ({r.baseline_name})" if r.baseline is not None else ""
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else ""
        lines.append(f"| {r.name} | {rate} | {base} | {ratio} | {r.note} |")
    return "\n".join(lines)


def peak_flops(device_name: str) -> float | None:
    """Dense bf16 peak of a known GPU from its name (e.g. 'NVIDIA H100 80GB HBM3'); None if unknown."""
    for key, flops in PEAK_BF16.items():
        if key in device_name.upper():
            return flops
    return None


def train_flops_per_token(lm: dict[str, Any], seq: int) -> float:
    """Training FLOPs per LM token: 6 × non-embedding weights + 12 × layers × hidden × seq (attention)."""
    d, f, n = lm["hidden_size"], lm["intermediate_size"], lm["num_hidden_layers"]
    kv = lm["num_key_value_heads"] * d // lm["num_attention_heads"]
    per_layer = 2 * d * d + 2 * d * kv + 3 * d * f  # q, o; k, v; gate, up, down
    head = lm["vocab_size"] * d  # the LM head is a matmul even when tied
    return 6.0 * (n * per_layer + head) + 12.0 * n * d * seq


def vit_flops_per_tile(vit: dict[str, Any]) -> float:
    """Training FLOPs of one vision tile (forward 2×, backward 4× the multiply-adds)."""
    t, d, m = (vit["image_size"] // vit["patch_size"]) ** 2, vit["hidden_size"], vit["intermediate_size"]
    per_layer = 4 * t * d * d + 2 * t * t * d + 2 * t * d * m
    return 6.0 * (vit["num_hidden_layers"] * per_layer + t * 3 * vit["patch_size"] ** 2 * d)


def mfu(tokens_per_s: float, flops_per_token: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: achieved model FLOPs/s over the GPU's peak (None when the peak is unknown)."""
    return tokens_per_s * flops_per_token / peak if peak else None


def scaled(shape: dict[str, Any], **over: Any) -> dict[str, Any]:
    """A copy of a config dict with fields replaced (tests shrink the real shapes with it)."""
    return {**shape, **over}


def _timed(fn: Callable[[], Any], sync: Callable[[], None], repeat: int = 3) -> float:
    """Best wall time of ``fn`` over ``repeat`` runs after one warm-up."""
    fn()
    sync()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def _sync(device: str) -> Callable[[], None]:
    import torch

    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


# -- perplexity --------------------------------------------------------------------------------------
def perplexity_row(device: str, shape: dict[str, Any] = QWEN25_1_5B, n: int = 256, seq: int = 512,
                   batch: int = 32, repeat: int = 3) -> Row:  # fmt: skip
    """TransformersCausalLM.score vs a bare loop (full logits + cross-entropy) on the same batches."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from magicvl.model.backends.causal_lm import ScoreRequest, TransformersCausalLM

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    cfg = Qwen2Config(**{k: v for k, v in shape.items() if k != "model_type"})
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (n, seq), generator=g)  # [n, seq]
    reqs = [ScoreRequest(tuple(r.tolist()), (False,) + (True,) * (seq - 1)) for r in ids]
    tok = type("Tok", (), {"pad_token_id": 0, "eos_token_id": 0})()
    scorer = TransformersCausalLM(model, tok, max_length=seq, batch_size=batch)

    def bare() -> None:
        with torch.inference_mode():
            for i in range(0, n, batch):
                x = ids[i : i + batch].to(device)  # [B, T]
                logits = model(input_ids=x).logits[:, :-1].float()  # [B, T-1, V]
                torch.nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten(), reduction="sum")

    sync = _sync(device)
    tokens = n * (seq - 1)
    ours = tokens / _timed(lambda: scorer.score(reqs), sync, repeat)
    base = tokens / _timed(bare, sync, repeat)
    return Row("perplexity (Qwen2.5-1.5B shape)", ours, "tok/s", base, "bare forward loop",
               f"{n} × {seq} tokens, batch {batch}")  # fmt: skip


# -- VLM loss ----------------------------------------------------------------------------------------
def qwen2_vl_sample(shape: dict[str, Any], grid: int, text: int, response: int) -> Any:
    """One encoded Qwen2-VL sample: an image of ``grid × grid`` patches, ``text`` prompt and ``response`` tokens."""
    import torch

    from magicvl.model.backends.vlm_inputs import Encoded

    vc = shape["vision_config"]
    merged = grid * grid // vc["spatial_merge_size"] ** 2
    g = torch.Generator().manual_seed(grid + text)
    body = torch.randint(10, 1000, (text + response,), generator=g).tolist()
    ids = [shape["vision_start_token_id"]] + [shape["image_token_id"]] * merged + [shape["vision_end_token_id"]]
    ids = torch.tensor([ids + body])  # [1, T]
    patch = vc["in_channels"] * vc["temporal_patch_size"] * vc["patch_size"] ** 2
    tensors = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
               "mm_token_type_ids": (ids == shape["image_token_id"]).long(),  # [1, T]: 1 on image tokens
               "pixel_values": torch.randn(grid * grid, patch, generator=g),  # [patches, C·t·p·p]
               "image_grid_thw": torch.tensor([[1, grid, grid]])}  # fmt: skip
    resp = torch.zeros(ids.shape[1], dtype=torch.bool)
    resp[-response:] = True
    return Encoded(tensors, resp)


def vlm_loss_row(device: str, shape: dict[str, Any] = QWEN2_VL_2B, n: int = 64, grid: int = 32, text: int = 64,
                 response: int = 128, batch: int = 8, repeat: int = 3) -> Row:  # fmt: skip
    """VlmLoss.forward_nll (LM head on response positions only) vs a bare forward with full logits."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    from magicvl.model.backends.vlm import VlmLoss
    from magicvl.model.backends.vlm_inputs import collate
    from magicvl.model.backends.vlm_options import VlmOptions

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    cfg = Qwen2VLConfig(**{k: v for k, v in shape.items() if k != "model_type"})
    with torch.device(device):
        model = Qwen2VLForConditionalGeneration._from_config(cfg, dtype=dtype).eval()
    samples = [qwen2_vl_sample(shape, grid, text, response) for _ in range(n)]
    proc = type("Proc", (), {"tokenizer": type("Tok", (), {"pad_token_id": 0, "eos_token_id": 0})()})()
    loss = VlmLoss(model, proc, VlmOptions(model="bench", batch_size=batch))

    def ours() -> None:
        for i in range(0, n, batch):
            loss.forward_nll(samples[i : i + batch])

    def bare() -> None:
        with torch.inference_mode():
            for i in range(0, n, batch):
                inputs, resp = collate(samples[i : i + batch], 0)
                inputs = {k: v.to(device) for k, v in inputs.items()}
                logits = model(**inputs, use_cache=False).logits[:, :-1].float()  # [B, T-1, V]
                ids = inputs["input_ids"][:, 1:]
                nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids.flatten(), reduction="none")
                (nll.view_as(ids) * resp[:, 1:].to(device)).sum(-1)

    sync = _sync(device)
    tokens = sum(s.length for s in samples)
    rate, base = tokens / _timed(ours, sync, repeat), tokens / _timed(bare, sync, repeat)
    return Row("VLM loss (Qwen2-VL-2B shape)", rate, "tok/s", base, "bare forward loop",
               f"{n} samples, {grid * 14} px images, batch {batch}")  # fmt: skip


# -- object density ----------------------------------------------------------------------------------
def detector_row(device: str, config: Any = None, processor: Any = None, n: int = 32,
                 size: tuple[int, int] = (1333, 800), batch: int = 8, repeat: int = 2) -> Row:  # fmt: skip
    """Grounding DINO images/s through GroundingDinoDetector.detect (processor + forward + post-processing)."""
    import numpy as np
    import torch
    from PIL import Image
    from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection

    from magicvl.model.backends.detector import GroundingDinoDetector
    from magicvl.scoring.signals.object_density import DEFAULT_LABELS

    config = config or GroundingDinoConfig()  # the defaults are grounding-dino-tiny's shape (Swin-T, BERT-base)
    if processor is None:
        processor = _detector_processor()
    with torch.device(device):
        model = GroundingDinoForObjectDetection(config).eval()
    det = GroundingDinoDetector(model, processor)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(n)]

    def run() -> None:
        for i in range(0, n, batch):
            det.detect(images[i : i + batch], DEFAULT_LABELS, 0.35, 0.25)

    rate = n / _timed(run, _sync(device), repeat)
    return Row(
        "object density (Grounding DINO-T shape)", rate, "img/s", note=f"{size[0]}×{size[1]} images, batch {batch}"
    )


def _detector_processor() -> Any:
    """Grounding DINO's processor: the tiny checkpoint's tokenizer (random weights: vocabulary size is all that
    matters) with the real image processor (shortest side 800, longest 1333)."""
    import tempfile
    from pathlib import Path

    from transformers import AutoProcessor

    from magicvl.model.tiny import build_tiny_grounding_dino

    folder = build_tiny_grounding_dino(Path(tempfile.mkdtemp(prefix="bench-gdino-")) / "gdino")
    proc = AutoProcessor.from_pretrained(folder)
    proc.image_processor.size = {"shortest_edge": 800, "longest_edge": 1333}
    return proc


# -- OCR ---------------------------------------------------------------------------------------------
def ocr_row(device: str, n: int = 8) -> Row:
    """rapidocr on onnxruntime's CUDA provider (f32) vs one CPU core with the CPU default (OpenVINO bf16)."""
    import io

    from PIL import Image

    from bench.ocr import images
    from magicvl.model.backends import ocr
    from magicvl.model.backends.base import BackendError
    from magicvl.model.backends.ocr_runtime import OcrRuntime

    name = "OCR (PP-OCR, rapidocr)"
    try:  # first: without CUDA (or without onnxruntime-gpu) the row is one line, and nothing else loads
        cuda = ocr.load_ocr("rapidocr", 1, OcrRuntime(provider="onnxruntime", device="cuda", precision="f32"))
    except BackendError as e:
        return Row(name, None, "img/s", note=f"not available: {str(e).splitlines()[0][:160]}")
    docs = [Image.open(io.BytesIO(b)).convert("RGB") for b in images(n)]
    cpu = ocr.load_ocr("rapidocr", 1, OcrRuntime(threads=1))
    rate = n / _timed(lambda: [cuda.read(d) for d in docs], lambda: None, 1)
    base = n / _timed(lambda: [cpu.read(d) for d in docs], lambda: None, 1)
    return Row(name, rate, "img/s", base, "one CPU core (OpenVINO bf16)", f"{n} rendered documents")


# -- training ----------------------------------------------------------------------------------------
def paper_config() -> MagicVLConfig:
    """The paper preset (SigLIP2-B/16 @384 + Qwen2.5-1.5B) without checkpoint paths: built randomly."""
    return dataclasses.replace(MagicVLConfig.paper("qwen2.5"), vit_path=None, lm_path=None)


def pack(config: MagicVLConfig, tokens: int, images: int, seed: int = 0) -> dict[str, Any]:
    """One packed sequence ``[1, tokens]`` with ``images`` one-tile images (positions restart per sample)."""
    import torch

    t = config.tokens_per_side
    g = torch.Generator().manual_seed(seed)
    per_sample = tokens // max(images, 1)
    if images and per_sample <= t * t:
        raise ValueError(f"{tokens} tokens cannot hold {images} samples of {t * t} image tokens each")
    ids, pos = [], []
    for i in range(max(images, 1)):
        n = per_sample if i < max(images, 1) - 1 else tokens - per_sample * (max(images, 1) - 1)
        body = torch.randint(0, min(1000, config.lm_config["vocab_size"]) - 1, (n,), generator=g)
        body[body == config.image_token_id] += 1  # text never reads as an image placeholder
        if images:
            body[: t * t] = config.image_token_id
        ids.append(body)
        pos.append(torch.arange(n))
    input_ids = torch.cat(ids)[None]  # [1, tokens]
    out = {"input_ids": input_ids, "position_ids": torch.cat(pos)[None], "labels": input_ids.clone()}
    if images:
        out["pixel_values"] = torch.randn(images, 3, config.tile_size, config.tile_size, generator=g)  # [I, 3, S, S]
        out["image_grid"] = torch.tensor([[t, t]] * images)  # [I, 2]: one full tile each
    return out


def train_row(device: str, config: MagicVLConfig | None = None, tokens: int = 16384, images: int = 16,
              deepspeed: bool = True, repeat: int = 2, checkpointing: bool = True) -> Row:  # fmt: skip
    """One optimizer step (forward, backward, AdamW) on one pack: tokens/s and MFU (ZeRO-2 under DeepSpeed).

    ``checkpointing``: the LLM recomputes its layers' activations in the backward pass (a 16,384-token
    pack's activations, ~40 GB in bf16, plus fp32 Adam states do not fit 80 GB otherwise); MFU counts
    model FLOPs only (6 × weights per token), not the recomputation."""
    import torch

    from magicvl.model.magicvl import MagicVL
    from magicvl.model.packing import token_losses

    config = config or paper_config()
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = MagicVL(config).to(device=device, dtype=dtype).train()
    if checkpointing:
        model.language.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    step_fn = opt.step
    engine: Any = model
    if deepspeed:
        engine = _zero2(model, opt)
        step_fn = engine.step
    batch = {k: v.to(device) for k, v in pack(config, tokens, images).items()}
    labels = batch.pop("labels")

    def step() -> None:
        loss_sum, mask = token_losses(engine(**batch).logits, labels)
        loss = loss_sum.sum() / mask.sum().clamp(min=1)
        (engine.backward if deepspeed else lambda x: x.backward())(loss)
        step_fn()
        if not deepspeed:
            opt.zero_grad(set_to_none=True)

    rate = tokens / _timed(step, _sync(device), repeat)
    flops = train_flops_per_token(config.lm_config, tokens) + images * vit_flops_per_tile(config.vit_config) / tokens
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    util = mfu(rate, flops, peak_flops(name))
    how = ("ZeRO-2" if deepspeed else "plain AdamW") + (", LLM grad checkpointing" if checkpointing else "")
    note = f"{tokens} tokens, {images} tiles, {how}, " + (
        f"MFU {util:.1%}" if util is not None else "MFU: unknown peak"
    )
    return Row("train step (SigLIP2-B/16 + Qwen2.5-1.5B, bf16)", rate, "tok/s", note=note)


def _zero2(model: Any, opt: Any) -> Any:
    """A one-process DeepSpeed ZeRO-2 engine (bf16) around ``model``."""
    import os

    import deepspeed

    for k, v in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": "29517"}.items():  # fmt: skip
        os.environ.setdefault(k, v)
    deepspeed.init_distributed(dist_backend="nccl")
    ds = {"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1, "gradient_clipping": 1.0,
          "zero_optimization": {"stage": 2}, "bf16": {"enabled": True}, "zero_allow_untested_optimizer": True,
          "steps_per_print": 1 << 30}  # fmt: skip
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=opt, config=ds)
    return engine


def main(argv: list[str] | None = None) -> int:
    import torch

    if not torch.cuda.is_available():
        print("bench.gpu needs a CUDA GPU (torch.cuda.is_available() is False); nothing was run", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name()
    rows = []
    for fn in (perplexity_row, vlm_loss_row, ocr_row, detector_row, train_row):
        try:
            rows.append(fn("cuda"))
        except Exception as e:  # noqa: BLE001 - one failing row is reported, the others still run
            rows.append(Row(fn.__name__.removesuffix("_row"), None, "", note=f"failed: {type(e).__name__}: {e}"[:200]))
        torch.cuda.empty_cache()
    print(format_table(rows, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
