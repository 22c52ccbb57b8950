"""A MagicVL checkpoint as an evaluator sees it: greedy answers and continuation log-likelihoods.

``MagicVLRunner`` needs nothing but this package; ``model.lmms_eval_model``
wraps it as an lmms-eval model (``lmms_eval --model magicvl --model_args
pretrained=<stage>/final``). Prompts are single human turns rendered with the
checkpoint's chat template; images go where the prompt has ``<image>``, else
first (the processor's rule, as in training).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from magicvl.model.magicvl import MagicVL
from magicvl.model.processor import END_OF_TURN, MagicVLProcessor

IMAGE_KEYS = ("pixel_values", "image_grid", "patch_mask", "tile_image_index")


class MagicVLRunner:
    """Loads ``pretrained`` (a ``<stage>/final`` folder: weights + tokenizer) once; answers prompts one by one."""

    def __init__(self, pretrained: str | Path, device: str = "cpu", dtype: torch.dtype | None = None) -> None:
        self.device = torch.device(device)
        self.model = MagicVL.from_pretrained(pretrained, dtype=dtype).to(self.device).eval()
        self.processor = MagicVLProcessor.from_pretrained(pretrained)
        self.eos_id = self.processor.tokenizer.convert_tokens_to_ids(END_OF_TURN)

    def _prompt(self, context: str, images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        rgb = [im.convert("RGB") for im in images]
        enc = self.processor([{"from": "human", "value": context}], rgb, add_generation_prompt=True)
        return {k: v.to(self.device) for k, v in enc.items() if k != "labels"}

    def _images(self, enc: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: enc[k] for k in IMAGE_KEYS} if enc["image_grid"].numel() else {}

    @torch.no_grad()
    def generate(
        self, context: str, images: Sequence[Image.Image] = (), max_new_tokens: int = 64, until: Sequence[str] = ()
    ) -> str:
        """The greedy answer to ``context`` (cut at the first of ``until``)."""
        enc = self._prompt(context, images)
        new = self.model.generate(
            enc["input_ids"][None],  # [1, T]
            enc["attention_mask"][None],
            **self._images(enc),
            max_new_tokens=max_new_tokens,
            eos_token_id=self.eos_id,
            pad_token_id=self.processor.tokenizer.pad_token_id or 0,
        )[0]  # [n]
        text = self.processor.decode(new)
        for stop in until:
            if stop and stop in text:
                text = text[: text.index(stop)]
        return text

    @torch.no_grad()
    def loglikelihood(self, context: str, continuation: str, images: Sequence[Image.Image] = ()) -> tuple[float, bool]:
        """``(log p(continuation | prompt), continuation is the greedy one)``, the prompt as ``generate`` builds it."""
        enc = self._prompt(context, images)
        cont = self.processor.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        if not cont:
            return 0.0, True
        ids = torch.cat([enc["input_ids"], torch.tensor(cont, device=self.device)])[None]  # [1, T+C]
        mask = torch.ones_like(ids)
        logits = self.model(ids, mask, **self._images(enc)).logits[0, -len(cont) - 1 : -1].float()  # [C, V]
        logp = torch.log_softmax(logits, dim=-1)
        target = ids[0, -len(cont) :]  # [C]
        total = float(logp.gather(1, target[:, None]).sum())
        greedy = bool((logits.argmax(-1) == target).all())
        return total, greedy
