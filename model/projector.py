"""MLP projector: unshuffled patch features (4 x D_vit) -> LLM hidden size.

Same shape as InternVL2.5's ``mlp1`` (MagicVL builds on that framework):
LayerNorm over the concatenated 2x2 patch features, Linear, GELU, Linear.
"""

from __future__ import annotations

import torch
from torch import nn

from magicvl.model.config import MagicVLConfig


class Projector(nn.Module):
    """Two-layer MLP ``[M, r*r*D_vit] -> [M, D_lm]``."""

    def __init__(self, config: MagicVLConfig):
        super().__init__()
        self.norm = nn.LayerNorm(config.mp_input_size)
        self.fc1 = nn.Linear(config.mp_input_size, config.lm_hidden_size)
        self.act = nn.GELU(approximate="tanh" if config.mp_hidden_act == "gelu_tanh" else "none")
        self.fc2 = nn.Linear(config.lm_hidden_size, config.lm_hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))  # [M, D_lm]
