"""Tiny Qwen2-VL / Qwen2.5-VL checkpoints: three real sizes, marked tiny, loadable with the Auto classes."""

from __future__ import annotations

import json

from magicvl.model.tiny import is_tiny
from magicvl.model.tiny_vl import SIZES, build_tiny_vlms


def test_three_sizes_marked_tiny_and_loadable(tmp_path):
    from transformers import AutoModelForImageTextToText

    from magicvl.model.backends.vlm import load_processor

    built = build_tiny_vlms(tmp_path, families=("qwen2_5_vl",))
    assert list(built) == ["qwen2_5_vl-s", "qwen2_5_vl-m", "qwen2_5_vl-l"]
    widths = []
    for path in built.values():
        assert is_tiny(path)
        cfg = json.loads((path / "config.json").read_text())
        assert cfg["model_type"] == "qwen2_5_vl"
        text = cfg["text_config"]
        head_dim = text["hidden_size"] // text["num_attention_heads"]
        assert sum(text["rope_parameters"]["mrope_section"]) == head_dim // 2
        widths.append(text["hidden_size"])
    assert widths == list(SIZES.values())
    model = AutoModelForImageTextToText.from_pretrained(built["qwen2_5_vl-l"])
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    proc = load_processor(str(built["qwen2_5_vl-l"]))
    assert proc.image_processor.size["longest_edge"] == 28 * 28 * 16 and not hasattr(proc, "video_processor")
