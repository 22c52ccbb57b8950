"""P: perplexity of the response given the prompt under a causal LM (paper: Qwen2.5-1.5B).

The conversation is rendered with the model's chat template (``<image>``
placeholders removed: the LM sees text only). Every assistant turn is scored
given everything before it; only the assistant content tokens are scored (not
the template's role headers; the end-of-turn token only with
``count_end_of_turn``: the rule ``vlm_loss`` shares, model/backends/response_spans.py). Per sample:

* ``perplexity`` = exp(``perplexity_nll``), the mean NLL (nats) over all scored tokens;
* ``perplexity_tokens``: how many tokens were scored;
* ``perplexity_truncated``: 1.0 when ``max_length`` cut scored tokens (the first
  ``max_length`` tokens are kept; values then cover the tokens that fit).

Templates that render each prefix as a prefix of the whole conversation (Qwen,
Llama, most) give one sequence per sample; others (e.g. ones that drop earlier
reasoning) are scored one assistant turn per sequence. A tokenizer without a
chat template renders turns as plain text separated by blank lines.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from magicvl.model.backends.causal_lm import ScoreRequest, TokenScore
from magicvl.model.backends.response_spans import NotPrefixStable, mark_tokens, response_spans, turn_span
from magicvl.scoring.batch import IMAGE_PLACEHOLDER, SampleBatch
from magicvl.scoring.signals.base import Columns, Signal, SignalParams

COLUMNS = ("perplexity", "perplexity_nll", "perplexity_tokens", "perplexity_truncated")
_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


class PerplexityParams(SignalParams):
    unkeyed: ClassVar[tuple[str, ...]] = ("batch_size", "device", "tensor_parallel")

    model: str = Field(description="Causal LM path or hub id (AutoModelForCausalLM); paper: Qwen/Qwen2.5-1.5B.")
    max_length: int = Field(default=2048, ge=8, le=1 << 20, description="Tokens per sequence; longer ones are cut.")
    batch_size: int = Field(default=8, ge=1, le=4096, description="Sequences per forward pass (length-sorted).")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(default="bfloat16", description="Weights dtype.")
    backend: Literal["transformers", "vllm"] = Field(
        default="transformers", description="transformers (CPU/GPU) or vllm (GPU only, optional extra)."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto: the actor's GPU(s) when num_gpus > 0 and torch sees CUDA, else cpu."
    )
    tensor_parallel: int = Field(
        default=1, ge=1, le=64, description="backend vllm: GPUs one model spans; equals resources num_gpus."
    )
    count_end_of_turn: bool = Field(
        default=False, description="Also score the template's end-of-turn token(s) (same rule as vlm_loss)."
    )

    @model_validator(mode="after")
    def _tensor_parallel(self) -> PerplexityParams:
        if self.tensor_parallel > 1 and self.backend != "vllm":
            raise ValueError(
                "tensor_parallel applies to backend vllm; transformers shards over the actor's num_gpus itself"
            )
        return self


def to_messages(turns: list[dict[str, str]]) -> list[dict[str, str]]:
    """LLaVA turns → chat messages, image placeholders removed."""
    return [{"role": _ROLES[t["from"]], "content": t["value"].replace(IMAGE_PLACEHOLDER, "").strip()} for t in turns]


def render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """The conversation as the model sees it: its chat template, or plain paragraphs without one."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    return "".join(m["content"] + "\n\n" for m in messages)


def _request(tokenizer: Any, text: str, spans: list[tuple[int, int]]) -> ScoreRequest:
    """Tokenize ``text``; a token is scored when its characters overlap a response span."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    target = mark_tokens(enc["offset_mapping"], spans)
    if target:
        target[0] = False  # nothing predicts the first token
    return ScoreRequest(tuple(enc["input_ids"]), tuple(target))


def requests_for(tokenizer: Any, turns: list[dict[str, str]], count_end_of_turn: bool = False) -> list[ScoreRequest]:
    """Score requests of one conversation: one sequence if the template allows, else one per assistant turn."""
    messages = to_messages(turns)
    try:
        full, spans = response_spans(
            lambda n, gen: render(tokenizer, messages[:n], add_generation_prompt=gen),
            [m["role"] for m in messages],
            [m["content"] for m in messages],
            count_end_of_turn,
        )
    except NotPrefixStable:
        return _per_turn(tokenizer, messages, count_end_of_turn)
    return [_request(tokenizer, full, spans)]


def _per_turn(tokenizer: Any, messages: list[dict[str, str]], count_end_of_turn: bool) -> list[ScoreRequest]:
    out = []
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            text = render(tokenizer, messages[: i + 1])
            out.append(_request(tokenizer, text, [turn_span(text, m["content"], count_end_of_turn)]))
    return out


def compute(batch: SampleBatch, params: PerplexityParams, lm) -> Columns:
    """Perplexity of each sample's assistant turns; per-row errors for empty or unrenderable ones."""
    n = len(batch)
    out = {c: np.full(n, np.nan) for c in COLUMNS}
    errors: list[str | None] = [None] * n
    owner: list[int] = []
    requests: list[ScoreRequest] = []
    for i, turns in enumerate(batch.conversations):
        try:
            reqs = requests_for(lm.tokenizer, turns, params.count_end_of_turn)
        except Exception as e:
            errors[i] = f"perplexity: {type(e).__name__}: {e}"
            continue
        requests += reqs
        owner += [i] * len(reqs)
    scores = lm.score(requests) if requests else []
    totals: dict[int, list[float]] = {}
    for i, s in zip(owner, scores):
        t = totals.setdefault(i, [0.0, 0, 0])
        t[0], t[1], t[2] = t[0] + s.nll_sum, t[1] + s.tokens, t[2] + s.truncated_tokens
    for i, (nll, tokens, cut) in totals.items():
        _fill(out, errors, i, TokenScore(nll, int(tokens), int(cut)))
    if any(errors):
        out["error"] = np.array(errors, dtype=object)
    return out


def _fill(out: Columns, errors: list[str | None], i: int, s: TokenScore) -> None:
    out["perplexity_tokens"][i] = s.tokens
    out["perplexity_truncated"][i] = float(s.truncated_tokens > 0)
    if s.tokens == 0:
        errors[i] = "perplexity: no response tokens " + ("within max_length" if s.truncated_tokens else "to score")
        return
    out["perplexity_nll"][i] = s.mean_nll
    out["perplexity"][i] = math.exp(min(s.mean_nll, 700.0))  # exp overflows float64 past ~709


SIGNAL = Signal(
    name="perplexity",
    version="1",
    axis="text",
    description="Perplexity of the assistant turns given everything before them, under a causal LM (P).",
    params=PerplexityParams,
    compute=compute,
    columns=COLUMNS,
    reads="text",
    backend="lm",
)
