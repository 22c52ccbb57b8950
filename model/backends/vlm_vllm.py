"""The optional vLLM engine for VLM response losses (GPU only; ``pip install .[vllm]`` in a GPU env).

Each sample is encoded by the Hugging Face processor (as in the transformers
engine: the same response mask), sent to vLLM as its rendered prompt plus
``multi_modal_data``, with ``SamplingParams(max_tokens=1, prompt_logprobs=0)``;
vLLM returns the log-probability of every prompt token, of which the response
positions are summed. vLLM expands the image itself: its prompt token ids must
equal the processor's, else the sample gets an error. Never imported by tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from magicvl.model.backends.placement import vllm_llm_kwargs
from magicvl.model.backends.vlm import LossResult, load_processor
from magicvl.model.backends.vlm_inputs import encode
from magicvl.model.backends.vlm_options import VlmOptions


class VllmLoss:
    """A vLLM engine + the model's processor; same ``score`` contract as ``VlmLoss``."""

    def __init__(self, llm: Any, processor: Any, options: VlmOptions):
        self.llm, self.processor, self.options = llm, processor, options

    @classmethod
    def load(cls, options: VlmOptions) -> VllmLoss:
        try:
            from vllm import LLM
        except ImportError as e:
            raise RuntimeError("engine 'vllm' needs the optional extra: pip install '.[vllm]' (GPU only)") from e
        llm = LLM(**vllm_args(options))
        return cls(llm, load_processor(options.model), options)

    def score(self, conversations: list, images: list) -> LossResult:
        from vllm import SamplingParams

        n = len(conversations)
        nll, tokens = np.full(n, np.nan), np.zeros(n, dtype=np.int64)
        errors: list[str | None] = [None] * n
        prompts, masks, ids, rows = [], [], [], []
        for i, (conv, img) in enumerate(zip(conversations, images)):
            try:
                enc = encode(self.processor, conv, img, self.options.count_end_of_turn)
            except Exception as e:
                errors[i] = f"{type(e).__name__}: {e}"
                continue
            text = self.processor.tokenizer.decode(_plain_ids(enc, self.processor), skip_special_tokens=False)
            prompts.append({"prompt": text, **({"multi_modal_data": {"image": img}} if img is not None else {})})
            masks.append(enc.response.numpy())
            ids.append(enc.tensors["input_ids"][0].tolist())
            rows.append(i)
        outs = self.llm.generate(prompts, SamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=False)
        for i, out, mask, want in zip(rows, outs, masks, ids):
            if list(out.prompt_token_ids) != want:
                errors[i] = "vllm tokenised the prompt differently from the processor"
                continue
            pos = np.flatnonzero(mask)  # response positions (never 0: a prompt precedes)
            nll[i] = -sum(out.prompt_logprobs[p][want[p]].logprob for p in pos)
            tokens[i] = len(pos)
        return LossResult(nll, tokens, errors)


def vllm_args(options: VlmOptions) -> dict[str, Any]:
    """``vllm.LLM`` kwargs of a VLM loss: model, dtype, ``tensor_parallel_size``, one image per prompt."""
    return vllm_llm_kwargs(options.model, options.dtype, options.tensor_parallel, limit_mm_per_prompt={"image": 1})


def _plain_ids(enc: Any, processor: Any) -> list[int]:
    """The processor's ids with each image-token run collapsed back to one placeholder token."""
    from magicvl.model.backends.vlm_inputs import image_token_id

    tid = image_token_id(processor)
    out: list[int] = []
    for t in enc.tensors["input_ids"][0].tolist():
        if t == tid and out and out[-1] == tid:
            continue
        out.append(t)
    return out
