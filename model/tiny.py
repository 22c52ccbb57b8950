"""Tiny, randomly initialised checkpoints built locally (no downloads).

Tests and the demo load these through the ordinary ``from_pretrained(path)``
code path, exactly as they would load real weights. Anything scored with them
is scored by a *random* model: the output says so.
"""

from __future__ import annotations

import json
from pathlib import Path

# Qwen2/Qwen2.5/Qwen3 special tokens, in Qwen's order.
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen2.5's chat template, reduced to text turns (images are spliced by the processor).
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TINY_MARKER = "tiny-random"  # written into every tiny checkpoint's config/metadata

_CORPUS = """
A photograph of a cat sitting on a wooden table next to a cup of coffee.
The chart shows revenue growing from 2019 to 2024, with a dip in 2020.
Question: What is written on the sign? Answer: The sign says STOP.
Click the Settings button in the top right corner of the screen to open preferences.
The document is an invoice dated March 3, listing three items and a total of 42.50 dollars.
Let us reason step by step. If x + 3 = 7 then x = 4, so the answer is 4.
The bounding box of the red car is [0.12, 0.40, 0.55, 0.83].
An astronaut in a white suit stands in front of a flag. A rocket launches into a blue sky.
Describe the image in detail. How many people are in the picture? Two people are walking.
Read the text in the image. Summarize the table. Which bar is the tallest? The tallest bar is B.
Translate the following sentence into French. The quick brown fox jumps over the lazy dog.
0 1 2 3 4 5 6 7 8 9 10 100 1000 % $ + - * / = ( ) [ ] { } , . ; : ? ! ' " < > # @ & _
"""


def build_tokenizer(out_dir: str | Path, vocab_size: int = 1024) -> Path:
    """Train a byte-level BPE tokenizer with Qwen2's pre-tokenizer, special tokens and chat template.

    Saved as a ``Qwen2Tokenizer``, so a folder holding only the tokenizer and a
    checkpoint folder holding it beside a Qwen2 config load as the same class
    and tokenize identically (Qwen2's rules: NFC, digits split one by one).
    Deterministic: the same corpus and vocab size give the same tokenizer.
    Returns ``out_dir``, loadable with ``AutoTokenizer.from_pretrained``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    out = Path(out_dir)
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(  # what Qwen2Tokenizer sets on load
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.strip().splitlines() * 4, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    qwen = Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=[tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]],
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]),
    )
    qwen.chat_template = QWEN_CHAT_TEMPLATE
    qwen.model_max_length = 32768
    qwen.save_pretrained(out)
    _mark(out)
    return out


def _mark(out: Path) -> None:
    """Leave a note beside the files saying these are random, locally built weights."""
    (out / "TINY_RANDOM_CHECKPOINT.json").write_text(
        json.dumps({"marker": TINY_MARKER, "note": "randomly initialised, built locally; not real weights"}) + "\n"
    )


def is_tiny(path: str | Path) -> bool:
    """True when ``path`` is a tiny random checkpoint built by this module."""
    return (Path(path) / "TINY_RANDOM_CHECKPOINT.json").is_file()


# Tiny MagicVL: the real geometry (384 tiles, patch 16, unshuffle 2, 24 tiles) with tiny widths.
TINY_VIT = {
    "model_type": "siglip_vision_model",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 384,
    "patch_size": 16,
    "vision_use_head": False,
}
TINY_LMS = {
    "qwen2": {"model_type": "qwen2"},
    "qwen3": {"model_type": "qwen3", "head_dim": 16},
}


def tiny_magicvl_config(vocab_size: int, image_token_id: int, lm: str = "qwen2"):
    """A ``MagicVLConfig`` with a 2-layer 32-wide SigLIP and a 2-layer 64-wide Qwen2/Qwen3."""
    from magicvl.model.config import MagicVLConfig

    if lm not in TINY_LMS:
        raise ValueError(f"lm must be one of {sorted(TINY_LMS)}, got {lm!r}")
    lm_config = {
        **TINY_LMS[lm],
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": True,
        "initializer_range": 0.2,  # wide enough that a random model's greedy output varies
    }
    return MagicVLConfig(vit_config=dict(TINY_VIT), lm_config=lm_config, image_token_id=image_token_id)


def build_tiny_magicvl(out_dir: str | Path, lm: str = "qwen2", seed: int = 0) -> Path:
    """Build and save a tiny random MagicVL (model, config, tokenizer) into ``out_dir``.

    Load it back with ``MagicVL.from_pretrained(out_dir)`` and
    ``MagicVLProcessor.from_pretrained(out_dir)``. Deterministic for a given seed;
    the global torch RNG is left untouched.
    """
    import torch
    from transformers import AutoTokenizer

    from magicvl.model.magicvl import MagicVL

    out = build_tokenizer(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(out)
    config = tiny_magicvl_config(len(tokenizer), tokenizer.convert_tokens_to_ids("<|image_pad|>"), lm)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MagicVL(config)
    model.save_pretrained(out)
    _mark(out)
    return out


# Causal LMs for perplexity: the tiny one for tests/demo, Qwen2.5-0.5B's shape for benchmarks.
QWEN2_SHAPES: dict[str, dict] = {
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "qwen2.5-0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
    },
}


def qwen2_causal_config(vocab_size: int, shape: str = "tiny"):
    """A ``Qwen2Config`` of the named shape (``QWEN2_SHAPES``) for a tokenizer of ``vocab_size``."""
    from transformers import Qwen2Config

    if shape not in QWEN2_SHAPES:
        raise ValueError(f"shape must be one of {sorted(QWEN2_SHAPES)}, got {shape!r}")
    return Qwen2Config(
        vocab_size=vocab_size,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        initializer_range=0.2 if shape == "tiny" else 0.02,
        **QWEN2_SHAPES[shape],
    )


def build_tiny_causal_lm(out_dir: str | Path, seed: int = 0) -> Path:
    """A tiny random Qwen2ForCausalLM with the tiny tokenizer (and chat template) saved beside it.

    Loads with ``AutoModelForCausalLM.from_pretrained(out_dir)`` and
    ``AutoTokenizer.from_pretrained(out_dir)``; deterministic for a seed, global RNG untouched.
    """
    import torch
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    out = build_tokenizer(out_dir)
    config = qwen2_causal_config(len(AutoTokenizer.from_pretrained(out)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.save_pretrained(out)
    _mark(out)
    return out


# Grounding DINO: Swin embed 16, depths [1,1,1,1], BERT hidden 32, d_model 32, 2 decoder layers (1 fails tying).
DETECTOR_VOCAB: tuple[str, ...] = (
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "a", "an", "the",
    "person", "people", "car", "cat", "dog", "text", "table", "chart", "button", "icon",
    "sign", "tree", "building", "screen", "window", "logo", "bar", "line", "object", "animal",
)  # fmt: skip


def build_tiny_grounding_dino(out_dir: str | Path, seed: int = 0) -> Path:
    """A tiny random Grounding DINO (model + processor) loadable with AutoModelForZeroShotObjectDetection."""
    import torch
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessorPil,
        GroundingDinoProcessor,
        SwinConfig,
    )

    out = Path(out_dir)
    # transformers 5 ignores BertTokenizer(vocab_file=...): pass the vocabulary itself.
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(DETECTOR_VOCAB)})
    backbone = SwinConfig(
        embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], out_features=["stage2", "stage3", "stage4"]
    )
    text = BertConfig(
        vocab_size=len(DETECTOR_VOCAB),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    config = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_queries=20,
        max_text_len=64,  # the 16 default object_density labels take 34 query tokens
        num_feature_levels=3,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GroundingDinoForObjectDetection(config)
    image_processor = GroundingDinoImageProcessorPil(size={"shortest_edge": 128, "longest_edge": 256})
    model.save_pretrained(out)
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    _mark(out)
    return out


TINY_BUILDERS = {
    "tokenizer": build_tokenizer,
    "causal_lm": build_tiny_causal_lm,
    "grounding_dino": build_tiny_grounding_dino,
}  # folder name under the models root → builder; `magicvl build-tiny-models` builds them all
