"""MagicVLConfig: one flat, validated config for encoder, projector, LLM and image geometry.

Field groups (nanoVLM style): ``vit_*`` the vision encoder, ``mp_*`` the
projector, ``lm_*`` the language model, and the image geometry shared by the
processor and the model (``tile_size``, ``patch_size``, ``unshuffle_ratio``,
``max_tiles``). ``vit_config`` / ``lm_config`` hold the Hugging Face
architecture dicts (``PretrainedConfig.to_diff_dict()``), so a checkpoint's
``config.json`` rebuilds every module without the original weights.
``vit_path`` / ``lm_path`` only say where pretrained weights come from in
``MagicVL.from_parts``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

# SigLIP2-Base-384/16 vision tower (google/siglip2-base-patch16-384). The attention-pooling
# head is not used by the VLM: dropped (vision_use_head=False); the paper's 93M counts it.
SIGLIP2_BASE_384 = {
    "model_type": "siglip_vision_model",
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_channels": 3,
    "image_size": 384,
    "patch_size": 16,
    "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
    "attention_dropout": 0.0,
    "vision_use_head": False,
}

# Architecture fields of the two LLMs of the paper (from their public config.json files).
QWEN25_1_5B = {
    "model_type": "qwen2",
    "vocab_size": 151936,
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "tie_word_embeddings": True,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
}
QWEN3_1_7B = {
    "model_type": "qwen3",
    "vocab_size": 151936,
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "tie_word_embeddings": True,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
}
PAPER_LMS = {
    "qwen2.5": ("Qwen/Qwen2.5-1.5B-Instruct", QWEN25_1_5B),
    "qwen3": ("Qwen/Qwen3-1.7B", QWEN3_1_7B),
}
QWEN_IMAGE_PAD_ID = 151655  # "<|image_pad|>" in the Qwen2/2.5/3 vocabulary


@dataclass
class MagicVLConfig:
    """Everything needed to build a MagicVL model and its processor."""

    vit_config: dict[str, Any] = field(default_factory=dict)
    vit_path: str | None = None
    mp_hidden_act: str = "gelu"  # projector activation: "gelu" (erf, as InternVL) or "gelu_tanh"
    lm_config: dict[str, Any] = field(default_factory=dict)
    lm_path: str | None = None
    tile_size: int = 384
    patch_size: int = 16
    unshuffle_ratio: int = 2
    max_tiles: int = 24
    image_token: str = "<|image_pad|>"
    vision_start_token: str = "<|vision_start|>"
    vision_end_token: str = "<|vision_end|>"
    image_token_id: int = QWEN_IMAGE_PAD_ID

    def __post_init__(self) -> None:
        for name in ("tile_size", "patch_size", "unshuffle_ratio", "max_tiles"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"MagicVLConfig.{name} must be a positive int, got {value!r}")
        if self.tile_size % self.token_px:
            raise ValueError(
                f"MagicVLConfig.tile_size ({self.tile_size}) must be a multiple of "
                f"patch_size * unshuffle_ratio ({self.token_px})"
            )
        if self.mp_hidden_act not in ("gelu", "gelu_tanh"):
            raise ValueError(f"MagicVLConfig.mp_hidden_act must be 'gelu' or 'gelu_tanh', got {self.mp_hidden_act!r}")
        self._check_vit()
        if not self.lm_config.get("model_type"):
            raise ValueError("MagicVLConfig.lm_config must be a Hugging Face config dict with a 'model_type'")
        if not self.lm_config.get("hidden_size"):
            raise ValueError("MagicVLConfig.lm_config must give 'hidden_size'")
        if self.image_token_id < 0 or self.image_token_id >= self.lm_config.get("vocab_size", 1 << 62):
            raise ValueError(f"MagicVLConfig.image_token_id {self.image_token_id} is outside the LM vocabulary")

    def _check_vit(self) -> None:
        vit = self.vit_config
        if not vit.get("hidden_size"):
            raise ValueError("MagicVLConfig.vit_config must give 'hidden_size'")
        if vit.get("image_size") != self.tile_size:
            raise ValueError(
                f"MagicVLConfig.vit_config['image_size'] ({vit.get('image_size')}) must equal "
                f"tile_size ({self.tile_size}): the encoder runs at its fixed resolution"
            )
        if vit.get("patch_size") != self.patch_size:
            raise ValueError(
                f"MagicVLConfig.vit_config['patch_size'] ({vit.get('patch_size')}) must equal "
                f"patch_size ({self.patch_size})"
            )

    # ---- derived values -------------------------------------------------------------
    @property
    def token_px(self) -> int:
        """Pixels of image per LLM token along one side (patch 16 x unshuffle 2 = 32)."""
        return self.patch_size * self.unshuffle_ratio

    @property
    def patches_per_side(self) -> int:
        """Encoder patches along one tile side (24 for 384 / 16)."""
        return self.tile_size // self.patch_size

    @property
    def tokens_per_side(self) -> int:
        """LLM tokens along one tile side (12 for 384 / 32)."""
        return self.tile_size // self.token_px

    @property
    def vit_hidden_size(self) -> int:
        return int(self.vit_config["hidden_size"])

    @property
    def mp_input_size(self) -> int:
        """Projector input: ``unshuffle_ratio**2`` concatenated patch features."""
        return self.vit_hidden_size * self.unshuffle_ratio**2

    @property
    def lm_hidden_size(self) -> int:
        return int(self.lm_config["hidden_size"])

    # ---- (de)serialisation ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MagicVLConfig:
        """Build from a dict; unknown keys are an error naming the key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"MagicVLConfig: unknown field(s) {unknown}")
        return cls(**data)

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write ``config.json`` into ``out_dir``."""
        path = Path(out_dir) / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path) -> MagicVLConfig:
        """Read ``config.json`` from a checkpoint directory (or the file itself)."""
        p = Path(path)
        p = p / "config.json" if p.is_dir() else p
        return cls.from_dict(json.loads(p.read_text()))

    @classmethod
    def paper(cls, lm: str = "qwen2.5") -> MagicVLConfig:
        """The paper's MagicVL-2B: SigLIP2-Base-384/16 + Qwen2.5-1.5B-Instruct or Qwen3-1.7B."""
        if lm not in PAPER_LMS:
            raise ValueError(f"lm must be one of {sorted(PAPER_LMS)}, got {lm!r}")
        lm_path, lm_config = PAPER_LMS[lm]
        return cls(
            vit_config=dict(SIGLIP2_BASE_384),
            vit_path="google/siglip2-base-patch16-384",
            lm_config=json.loads(json.dumps(lm_config)),
            lm_path=lm_path,
        )
