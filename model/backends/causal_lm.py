"""Summed NLL of chosen tokens under a causal LM: the scoring core of perplexity.

A request is a token sequence and a mask of the tokens to score (each scored
token is predicted from everything before it). Requests are sorted by length
and cut into batches so padding stays small; sequences longer than
``max_length`` keep their first ``max_length`` tokens (right truncation) and
say so. Two backends share one ``score`` interface:

* ``TransformersCausalLM``: any ``AutoModelForCausalLM`` path or hub id, CPU or
  GPU, any dtype (bf16 works on CPU). The LM head runs only on the scored
  positions, so a 150k vocabulary never materialises ``[B, T, V]`` logits.
* ``VllmCausalLM``: vLLM prompt log-probabilities (GPU only, optional extra,
  imported lazily when it is loaded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from magicvl.model.backends.base import BackendError
from magicvl.model.backends.placement import from_pretrained, vllm_llm_kwargs

Padding = Literal["right", "left"]


@dataclass(frozen=True)
class ScoreRequest:
    """Token ids and, per token, whether it is scored (``target[0]`` must be False: nothing predicts it)."""

    input_ids: tuple[int, ...]
    target: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.target):
            raise ValueError(f"input_ids ({len(self.input_ids)}) and target ({len(self.target)}) differ in length")
        if self.target and self.target[0]:
            raise ValueError("the first token cannot be scored: nothing precedes it")


@dataclass(frozen=True)
class TokenScore:
    """Summed NLL (nats) over the scored tokens kept, their count, and how many were cut by max_length."""

    nll_sum: float
    tokens: int
    truncated_tokens: int

    @property
    def mean_nll(self) -> float:
        return self.nll_sum / self.tokens if self.tokens else float("nan")


@dataclass
class BatchStats:
    """Accounting of the last ``score`` call: real tokens vs padded slots, forward batches."""

    tokens: int = 0
    slots: int = 0
    batches: int = 0

    @property
    def padding_share(self) -> float:
        return 1.0 - self.tokens / self.slots if self.slots else 0.0


class CausalLMScorer(Protocol):
    """What the perplexity signal needs from a backend."""

    tokenizer: Any
    max_length: int

    def score(self, requests: list[ScoreRequest]) -> list[TokenScore]: ...


def truncate(req: ScoreRequest, max_length: int) -> tuple[ScoreRequest, int]:
    """The request cut to its first ``max_length`` tokens and the number of scored tokens dropped."""
    if len(req.input_ids) <= max_length:
        return req, 0
    dropped = sum(req.target[max_length:])
    return ScoreRequest(req.input_ids[:max_length], req.target[:max_length]), dropped


def length_batches(lengths: list[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Indices sorted by length (longest first) cut into batches of ≤ batch_size rows and ≤ max_tokens slots."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        cur = batches[-1] if batches else None
        if cur is not None and len(cur) < batch_size:
            longest = lengths[cur[0]]
            if max_tokens is None or longest * (len(cur) + 1) <= max_tokens:
                cur.append(i)
                continue
        batches.append([i])
    return batches


class TransformersCausalLM:
    """A causal LM loaded with ``AutoModelForCausalLM.from_pretrained``; scores batches of requests."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        max_length: int = 2048,
        batch_size: int = 8,
        padding_side: Padding = "right",
        max_batch_tokens: int | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.padding_side = padding_side
        self.max_batch_tokens = max_batch_tokens
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = pad if pad is not None else (getattr(tokenizer, "eos_token_id", None) or 0)
        self.stats = BatchStats()

    @classmethod
    def load(
        cls,
        path_or_id: str,
        dtype: str = "float32",
        device: str = "auto",
        max_length: int = 2048,
        batch_size: int = 8,
        padding_side: Padding = "right",
    ) -> TransformersCausalLM:
        """Load model and tokenizer from a local folder or hub id; BackendError names the model on failure.

        ``device``: auto|cpu|cuda (``placement.pick_device``); over several of the actor's GPUs the
        model is sharded (``device_map="auto"``)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(path_or_id)
            model = from_pretrained(AutoModelForCausalLM, path_or_id, dtype, device)
        except BackendError:
            raise
        except Exception as e:
            raise BackendError(f"cannot load causal LM {path_or_id!r}: {type(e).__name__}: {e}") from e
        return cls(model, tokenizer, max_length, batch_size, padding_side)

    def score(self, requests: list[ScoreRequest]) -> list[TokenScore]:
        """One TokenScore per request, in order; batches built from length-sorted requests."""
        cut = [truncate(r, self.max_length) for r in requests]
        lengths = [len(r.input_ids) for r, _ in cut]
        out: list[TokenScore | None] = [None] * len(requests)
        self.stats = BatchStats()
        for idx in length_batches(lengths, self.batch_size, self.max_batch_tokens):
            sums, counts = self._forward([cut[i][0] for i in idx])
            for j, i in enumerate(idx):
                out[i] = TokenScore(sums[j], counts[j], cut[i][1])
        return out  # type: ignore[return-value]

    def _forward(self, reqs: list[ScoreRequest]) -> tuple[list[float], list[int]]:
        """Summed NLL and count of scored tokens per request of one padded batch."""
        import torch

        device = next(self.model.parameters()).device
        ids, mask, target = pad_batch(reqs, self.pad_id, self.padding_side)  # [B, T] each
        ids, mask, target = ids.to(device), mask.to(device), target.to(device)
        self.stats.tokens += int(mask.sum())
        self.stats.slots += mask.numel()
        self.stats.batches += 1
        position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)  # [B, T]: padding side does not move positions
        with torch.inference_mode():
            hidden = self.model.base_model(
                input_ids=ids, attention_mask=mask, position_ids=position_ids
            ).last_hidden_state  # [B, T, D]
            pred = target[:, 1:]  # [B, T-1]: token t+1 is scored from the state at t
            states = hidden[:, :-1][pred]  # [N, D]
            labels = ids[:, 1:][pred]  # [N]
            logits = self._logits(states).float()  # [N, V]
            nll = torch.nn.functional.cross_entropy(logits, labels, reduction="none")  # [N]
            row = torch.arange(ids.shape[0], device=device)[:, None].expand_as(pred)[pred]  # [N]
            sums = torch.zeros(ids.shape[0], device=device, dtype=torch.float64).index_add_(0, row, nll.double())
        return sums.tolist(), pred.sum(-1).tolist()

    def _logits(self, states: Any) -> Any:
        """LM head on selected hidden states, with the model's own logit soft-capping if it has one."""
        import torch

        logits = self.model.get_output_embeddings()(states)
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        return torch.tanh(logits / cap) * cap if cap else logits


def pad_batch(reqs: list[ScoreRequest], pad_id: int, side: Padding) -> tuple[Any, Any, Any]:
    """ids [B, T] (long), attention mask [B, T] (long), scored-token mask [B, T] (bool)."""
    import torch

    width = max(len(r.input_ids) for r in reqs)
    ids = torch.full((len(reqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(reqs), width), dtype=torch.long)
    target = torch.zeros((len(reqs), width), dtype=torch.bool)
    for b, r in enumerate(reqs):
        n = len(r.input_ids)
        sl = slice(0, n) if side == "right" else slice(width - n, width)
        ids[b, sl] = torch.tensor(r.input_ids, dtype=torch.long)
        mask[b, sl] = 1
        target[b, sl] = torch.tensor(r.target, dtype=torch.bool)
    return ids, mask, target


class VllmCausalLM:
    """vLLM prompt log-probabilities restricted to the scored tokens (GPU only; ``pip install vllm``)."""

    def __init__(self, llm: Any, tokenizer: Any, max_length: int) -> None:
        self.llm = llm
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def load(
        cls, path_or_id: str, dtype: str = "bfloat16", max_length: int = 2048, tensor_parallel: int = 1
    ) -> VllmCausalLM:
        try:
            from vllm import LLM
        except ImportError as e:
            raise BackendError("backend 'vllm' needs the vllm extra (CUDA only): pip install vllm") from e
        try:
            kwargs = vllm_llm_kwargs(path_or_id, dtype, tensor_parallel, max_model_len=max_length)
            llm = LLM(**kwargs, enable_prefix_caching=False)
        except Exception as e:
            raise BackendError(f"cannot load {path_or_id!r} with vLLM: {type(e).__name__}: {e}") from e
        return cls(llm, llm.get_tokenizer(), max_length)

    def score(self, requests: list[ScoreRequest]) -> list[TokenScore]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        cut = [truncate(r, self.max_length) for r in requests]
        out: list[TokenScore] = []
        for (req, dropped), res in zip(cut, self._generate(cut, SamplingParams, TokensPrompt)):
            lps = res.prompt_logprobs  # one dict (token id → Logprob) per prompt position; None at 0
            nll = -sum(lps[t][req.input_ids[t]].logprob for t in range(1, len(req.input_ids)) if req.target[t])
            out.append(TokenScore(float(nll), sum(req.target), dropped))
        return out

    def _generate(self, cut: list[tuple[ScoreRequest, int]], sampling_params: Any, tokens_prompt: Any) -> list:
        prompts = [tokens_prompt(prompt_token_ids=list(r.input_ids)) for r, _ in cut]
        # prompt_logprobs=0 returns the logprob of each actual prompt token only.
        return self.llm.generate(prompts, sampling_params(max_tokens=1, prompt_logprobs=0), use_tqdm=False)
