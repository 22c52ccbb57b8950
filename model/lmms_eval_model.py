"""MagicVL as an lmms-eval model: ``lmms_eval --model magicvl --model_args pretrained=<stage>/final``.

Imported only by lmms-eval (the optional ``lmms`` extra; its own environment
when its pins collide with this project's). Registered through the
``lmms_eval.models`` entry point (``model.lmms_entry.manifest``, in pyproject.toml). A
"simple" lmms-eval model: prompts arrive as text plus ``doc_to_visual`` images,
answered one by one by ``model.lmms.MagicVLRunner``.
"""

from __future__ import annotations

from typing import Any

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from PIL import Image

from magicvl.model.lmms import MagicVLRunner


def _images(visuals: Any) -> list[Image.Image]:
    """``doc_to_visual``'s result as a flat list of PIL images (None → none)."""
    if visuals is None:
        return []
    items = visuals if isinstance(visuals, (list, tuple)) else [visuals]
    out: list[Image.Image] = []
    for v in items:
        if isinstance(v, (list, tuple)):
            out += _images(v)
        elif isinstance(v, Image.Image):
            out.append(v)
        else:
            raise TypeError(f"magicvl takes images only; doc_to_visual gave a {type(v).__name__}")
    return out


class MagicVLLmms(lmms):
    """lmms-eval's interface over one MagicVL checkpoint (CPU or one device, batch size 1)."""

    def __init__(
        self, pretrained: str, device: str = "cpu", batch_size: int | str = 1, max_new_tokens: int = 64, **kwargs: Any
    ) -> None:
        super().__init__()
        if kwargs:
            raise ValueError(
                f"magicvl: unknown model_args {sorted(kwargs)} (known: pretrained, device, max_new_tokens)"
            )
        if int(batch_size) != 1:
            raise ValueError("magicvl answers one request at a time: use --batch_size 1")
        self.runner = MagicVLRunner(pretrained, device=device)
        self.max_new_tokens = int(max_new_tokens)

    def _doc(self, task: str, split: str, doc_id: int) -> dict:
        return self.task_dict[task][split][doc_id]

    def generate_until(self, requests: list[Instance]) -> list[str]:
        out = []
        for req in requests:
            context, gen_kwargs, doc_to_visual, doc_id, task, split = req.args
            kw = dict(gen_kwargs or {})
            until = kw.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            images = _images(doc_to_visual(self._doc(task, split, doc_id)))
            limit = int(kw.get("max_new_tokens", self.max_new_tokens))
            out.append(self.runner.generate(context, images, max_new_tokens=limit, until=until))
        return out

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        """Per request ``(mean token loss of the continuation, is greedy)``: the convention of lmms-eval's own
        models (e.g. ``llava_hf``), whose ``multiple_choice`` scoring picks the choice with the lowest value."""
        out = []
        tok = self.runner.processor.tokenizer
        for req in requests:
            context, doc_to_target, doc_to_visual, doc_id, task, split = req.args
            doc = self._doc(task, split, doc_id)
            continuation = str(doc_to_target if isinstance(doc_to_target, str) else doc_to_target(doc))
            logp, greedy = self.runner.loglikelihood(context, continuation, _images(doc_to_visual(doc)))
            n = max(1, len(tok(continuation, add_special_tokens=False)["input_ids"]))
            out.append((-logp / n, greedy))
        return out

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError("magicvl: multi-round generation is not supported; use single-round tasks")
