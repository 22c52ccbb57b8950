"""Generation backends for judges, classifiers and translation: requests in, answer strings out.

* ``transformers``: a text LLM through ``AutoModelForCausalLM`` (greedy, batched, left-padded).
* ``magicvl``: this project's MagicVL (``MagicVL.from_pretrained``) for prompts with an image.
* ``vllm``: optional (GPU); imported lazily inside ``load``, never needed by tests.

``load_generator(kind, path)`` loads once and raises GeneratorLoadError naming the
model when it cannot: a step calls it before any shard runs.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class GeneratorLoadError(RuntimeError):
    """A generation model that cannot be loaded (message names the backend and the path)."""


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt (a user turn) and, for a VLM, the encoded image it refers to."""

    prompt: str
    image: bytes | None = None
    system: str | None = None


class Generator(Protocol):
    identity: str  # backend + model path: part of any cache key

    def generate(self, requests: Sequence[GenerationRequest], max_new_tokens: int) -> list[str]: ...


def _messages(req: GenerationRequest) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": req.system}] if req.system else []
    return msgs + [{"role": "user", "content": req.prompt}]


class TransformersGenerator:
    """A causal LM from ``AutoModelForCausalLM.from_pretrained``; images are refused."""

    def __init__(self, path: str, dtype: str | None = None, device: str = "auto", tensor_parallel: int = 1) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from magicvl.model.backends.placement import from_pretrained

        self.identity = f"transformers:{path}"
        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        self.model = from_pretrained(AutoModelForCausalLM, path, dtype or "float32", device).eval()

    def generate(self, requests: Sequence[GenerationRequest], max_new_tokens: int) -> list[str]:
        import torch

        if any(r.image is not None for r in requests):
            raise ValueError("the transformers text backend cannot read images; configure a VLM backend")
        texts = [
            self.tokenizer.apply_chat_template(_messages(r), tokenize=False, add_generation_prompt=True)
            for r in requests
        ]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
        with torch.no_grad():
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )  # [B, T + new]
        return self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)


class MagicVLGenerator:
    """MagicVL (this project's VLM) with greedy decoding; requests may carry an image."""

    def __init__(self, path: str, dtype: str | None = None, device: str = "auto", tensor_parallel: int = 1) -> None:
        from magicvl.model.backends.base import torch_dtype
        from magicvl.model.backends.placement import resolve_device
        from magicvl.model.magicvl import MagicVL
        from magicvl.model.processor import MagicVLProcessor

        self.identity = f"magicvl:{path}"
        dt = torch_dtype(dtype) if dtype not in (None, "auto") else None
        self.model = MagicVL.from_pretrained(path, dtype=dt).to(resolve_device(device)).eval()
        self.processor = MagicVLProcessor.from_pretrained(path)

    def generate(self, requests: Sequence[GenerationRequest], max_new_tokens: int) -> list[str]:
        import torch
        from PIL import Image

        samples = []
        for r in requests:
            images = [Image.open(io.BytesIO(r.image)).convert("RGB")] if r.image is not None else []
            prompt = r.prompt if not images or "<image>" in r.prompt else f"<image>\n{r.prompt}"
            conv = ([{"from": "system", "value": r.system}] if r.system else []) + [{"from": "human", "value": prompt}]
            samples.append(self.processor(conv, images, add_generation_prompt=True))
        batch = self.processor.collate(samples, padding_side="left")
        batch.pop("labels")
        device = next(self.model.parameters()).device
        batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
        eos = self.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
        with torch.no_grad():
            new = self.model.generate(**batch, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=eos)
        return [self.processor.decode(row) for row in new]  # [B, <= new] → text


class VLLMGenerator:
    """vLLM (GPU, optional extra ``vllm``), text prompts through the model's chat template."""

    def __init__(self, path: str, dtype: str | None = None, device: str = "auto", tensor_parallel: int = 1) -> None:
        from vllm import LLM  # lazy: CUDA-only, separate environment

        from magicvl.model.backends.placement import vllm_llm_kwargs

        self.identity = f"vllm:{path}"
        self.llm = LLM(**vllm_llm_kwargs(path, dtype, tensor_parallel))

    def generate(self, requests: Sequence[GenerationRequest], max_new_tokens: int) -> list[str]:
        from vllm import SamplingParams

        if any(r.image is not None for r in requests):
            raise ValueError("the vllm backend here takes text prompts only")
        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        outs = self.llm.chat([_messages(r) for r in requests], params)
        return [o.outputs[0].text for o in outs]


GENERATORS: dict[str, Callable[..., Generator]] = {
    "transformers": TransformersGenerator,
    "magicvl": MagicVLGenerator,
    "vllm": VLLMGenerator,
}


def load_generator(kind: str, path: str, **options: Any) -> Generator:
    """Load a generation backend once; GeneratorLoadError names what failed.

    ``options``: dtype, device, tensor_parallel (``scoring.judge.ModelRef.load_options``)."""
    if kind not in GENERATORS:
        raise GeneratorLoadError(f"unknown generation backend {kind!r}; known: {', '.join(GENERATORS)}")
    try:
        return GENERATORS[kind](path, **options)
    except Exception as e:  # noqa: BLE001 - any load failure becomes one clear error
        raise GeneratorLoadError(f"cannot load {kind} generation model {path!r}: {type(e).__name__}: {e}") from e
