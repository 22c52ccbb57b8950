"""Tiny random Qwen2-VL and Qwen2.5-VL checkpoints, built locally (no downloads).

Three sizes per family (hidden 32 / 64 / 96, the stand-ins for the paper's
2B / 7B / 72B), so the cross-modal pairs compare genuinely different models.
Each folder holds the model (``save_pretrained``), the project's tiny
tokenizer with a Qwen2-VL chat template, and an image-only processor; it is
marked tiny like every checkpoint of ``model.tiny``. Load them with the same
code as real checkpoints: ``model.backends.vlm.load_vlm(path)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicvl.model.tiny import _mark, build_tokenizer

# Qwen2-VL's chat template (images and videos as content items; string content allowed).
QWEN_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# name → text hidden size; the vision tower stays 2 layers, 32 wide for all.
SIZES: dict[str, int] = {"s": 32, "m": 64, "l": 96}
FAMILIES = ("qwen2_vl", "qwen2_5_vl")
MIN_PIXELS = 28 * 28 * 4  # tiny images: 4..16 merged visual tokens per image
MAX_PIXELS = 28 * 28 * 16
_HEADS = 4


def _image_only_processor_class() -> type:
    """``Qwen2VLProcessor`` without its video processor (which needs torchvision)."""
    from transformers import Qwen2VLProcessor

    class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
        attributes = ["image_processor", "tokenizer"]

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs: Any):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    return ImageOnlyQwen2VLProcessor


def image_only_processor(path_or_id: str | Path) -> Any:
    """A Qwen2-VL-style processor from a checkpoint: PIL image processor + tokenizer, no video part."""
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tok = AutoTokenizer.from_pretrained(path_or_id)
    images = Qwen2VLImageProcessorPil.from_pretrained(path_or_id)
    return _image_only_processor_class()(images, tok, chat_template=tok.chat_template)


def tiny_vl_config(family: str, hidden: int, tokenizer: Any) -> Any:
    """A 2-layer Qwen2-VL / Qwen2.5-VL config of text width ``hidden`` over the tiny tokenizer."""
    from transformers import Qwen2_5_VLConfig, Qwen2VLConfig

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    head_dim = hidden // _HEADS
    third = head_dim // 2 // 3
    mrope = [head_dim // 2 - 2 * third, third, third]  # sums to head_dim / 2 (Qwen's rule)
    tid = tokenizer.convert_tokens_to_ids
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": 2,
        "num_attention_heads": _HEADS,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
        "bos_token_id": tid("<|endoftext|>"),
        "eos_token_id": tid("<|im_end|>"),
        "pad_token_id": tid("<|endoftext|>"),
    }
    vision: dict[str, Any] = {"depth": 2, "num_heads": 2, "patch_size": 14, "spatial_merge_size": 2}
    if family == "qwen2_vl":
        cls, vision = Qwen2VLConfig, {**vision, "embed_dim": 32, "mlp_ratio": 2, "hidden_size": hidden}
    else:
        cls = Qwen2_5_VLConfig
        vision = {**vision, "hidden_size": 32, "intermediate_size": 64, "out_hidden_size": hidden}
        vision |= {"fullatt_block_indexes": [1], "window_size": 56}
    return cls(
        text_config=text,
        vision_config=vision,
        image_token_id=tid("<|image_pad|>"),
        video_token_id=tid("<|video_pad|>"),
        vision_start_token_id=tid("<|vision_start|>"),
        vision_end_token_id=tid("<|vision_end|>"),
        tie_word_embeddings=True,
    )


def build_tiny_vlm(out_dir: str | Path, family: str = "qwen2_vl", hidden: int = 64, seed: int = 0) -> Path:
    """Build and save one tiny random VLM (model, tokenizer, image-only processor) into ``out_dir``.

    Deterministic for a given seed; the global torch RNG is left untouched.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    out = build_tokenizer(out_dir)
    tok = AutoTokenizer.from_pretrained(out)
    tok.chat_template = QWEN_VL_CHAT_TEMPLATE
    config = tiny_vl_config(family, hidden, tok)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    images = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    _image_only_processor_class()(images, tok, chat_template=QWEN_VL_CHAT_TEMPLATE).save_pretrained(out)
    _mark(out)
    return out


def build_tiny_vlms(out_dir: str | Path, families: tuple[str, ...] = FAMILIES) -> dict[str, Path]:
    """Three sizes of each family under ``out_dir``: name (e.g. ``qwen2_vl-s``) → checkpoint folder."""
    out = Path(out_dir)
    built = {}
    for family in families:
        for k, (size, hidden) in enumerate(SIZES.items()):
            name = f"{family}-{size}"
            built[name] = build_tiny_vlm(out / name, family, hidden, seed=k)
    return built
