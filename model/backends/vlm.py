"""Per-sample response loss under a vision-language model: summed NLL and token count.

``transformers`` (default): the model is loaded with the ordinary
``AutoModelForImageTextToText.from_pretrained(path_or_id)`` (falling back to
``AutoModelForVision2Seq``), so Qwen2-VL, Qwen2.5-VL and any Hugging Face VLM
with a chat template work. Samples are encoded one by one, sorted by length,
cut into batches (``batch_size`` rows, at most ``max_batch_tokens`` padded
tokens) and right-padded; the LM head runs only on the positions that predict
response tokens. Text-only samples go through the same model without an image.

``vllm`` (optional, GPU only, imported lazily): prompt log-probabilities of
the whole sequence, summed over the response positions (see ``VllmLoss``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from magicvl.model.backends.vlm_inputs import Encoded, collate, encode
from magicvl.model.backends.vlm_options import VlmOptions

DTYPES = ("float32", "bfloat16", "float16", "auto")


@dataclass
class LossResult:
    """Per sample: summed response NLL (nats), response token count, error (None when fine)."""

    nll: np.ndarray  # [N] float64, NaN where not computed
    tokens: np.ndarray  # [N] int64
    errors: list[str | None] = field(default_factory=list)

    @property
    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.tokens > 0, self.nll / np.maximum(self.tokens, 1), np.nan)


def _dtype(name: str) -> Any:
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {name!r}")
    return "auto" if name == "auto" else getattr(torch, name)


def load_processor(path_or_id: str) -> Any:
    """``AutoProcessor``; for Qwen-VL checkpoints without torchvision, the image-only processor."""
    from transformers import AutoProcessor

    from magicvl.model.tiny_vl import image_only_processor

    try:
        proc = AutoProcessor.from_pretrained(path_or_id)
    except (ImportError, ValueError, OSError, TypeError) as e:  # the stock Qwen2VLProcessor needs torchvision
        first: Exception | None = e
        proc = None
    else:
        first = None
    if proc is not None and hasattr(proc, "image_processor"):
        return proc
    try:
        return image_only_processor(path_or_id)
    except Exception as e:
        raise RuntimeError(f"cannot load a VLM processor for {path_or_id!r}: {first or e}") from e


def load_model(path_or_id: str, dtype: str, device: str) -> Any:
    """The VLM in eval mode via the Auto classes (``from_pretrained``), placed by ``device`` (auto|cpu|cuda;
    sharded over the actor's GPUs when it has several)."""
    import transformers

    from magicvl.model.backends.placement import from_pretrained

    errors = []
    for name in ("AutoModelForImageTextToText", "AutoModelForVision2Seq"):
        cls = getattr(transformers, name, None)
        if cls is None:
            continue
        try:
            model = from_pretrained(cls, path_or_id, dtype, device)
        except ValueError as e:  # not registered for this Auto class
            errors.append(f"{name}: {e}")
            continue
        return model.eval()
    raise RuntimeError(f"cannot load {path_or_id!r} as a vision-language model: {'; '.join(errors)}")


class VlmLoss:
    """A loaded VLM + processor that scores (conversation, image) samples. One per worker."""

    def __init__(self, model: Any, processor: Any, options: VlmOptions):
        self.model, self.processor, self.options = model, processor, options
        tok = processor.tokenizer
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)

    @classmethod
    def load(cls, options: VlmOptions) -> VlmLoss:
        return cls(load_model(options.model, options.dtype, options.device), load_processor(options.model), options)

    def encode_all(self, conversations: list, images: list) -> tuple[list[Encoded | None], list[str | None]]:
        """Encode each sample; a sample that fails gets an error, the others go on."""
        encoded: list[Encoded | None] = []
        errors: list[str | None] = []
        for conv, img in zip(conversations, images):
            try:
                encoded.append(encode(self.processor, conv, img, self.options.count_end_of_turn))
                errors.append(None)
            except Exception as e:
                encoded.append(None)
                errors.append(f"{type(e).__name__}: {e}")
        return encoded, errors

    def batches(self, encoded: list[Encoded | None]) -> list[list[int]]:
        """Indices of the encoded samples, longest first, cut by batch size and padded-token budget."""
        order = sorted((i for i, e in enumerate(encoded) if e is not None), key=lambda i: -encoded[i].length)
        out: list[list[int]] = []
        for i in order:
            cur = out[-1] if out else None
            if cur and len(cur) < self.options.batch_size:
                longest = encoded[cur[0]].length  # sorted: the first is the longest
                if longest * (len(cur) + 1) <= self.options.max_batch_tokens:
                    cur.append(i)
                    continue
            out.append([i])
        return out

    @torch.inference_mode()
    def forward_nll(self, samples: list[Encoded]) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed NLL ``[B]`` (float64) and response token count ``[B]`` of one batch."""
        inputs, response = collate(samples, self.pad_id)  # response: [B, T] bool
        device = self.model.device  # sharded (device_map): the first shard's, where the embeddings are
        inputs = {k: v.to(device) for k, v in inputs.items()}
        ids = inputs["input_ids"]  # [B, T]
        target = response[:, 1:]  # [B, T-1]: token t+1 is predicted at position t
        if not target.any():
            return torch.zeros(len(samples), dtype=torch.float64), torch.zeros(len(samples), dtype=torch.long)
        first = int(target.any(dim=0).nonzero()[0])  # earliest predicting position in the batch
        keep = ids.shape[1] - first  # logits for positions first..T-1
        logits = self._logits(inputs, keep)  # [B, keep, V]
        b, p = target[:, first:].nonzero(as_tuple=True)  # response positions relative to ``first``
        rows = logits[b.to(device), p.to(device)].float()  # [M, V]
        nll = torch.nn.functional.cross_entropy(rows, ids[b.to(device), (p + first + 1).to(device)], reduction="none")
        sums = torch.zeros(len(samples), dtype=torch.float64).index_add_(0, b, nll.double().cpu())
        return sums, target.sum(dim=1)

    def _logits(self, inputs: dict[str, torch.Tensor], keep: int) -> torch.Tensor:
        """Logits of the last ``keep`` positions ``[B, keep, V]`` (models without ``logits_to_keep``: sliced)."""
        try:
            return self.model(**inputs, logits_to_keep=keep, use_cache=False).logits
        except TypeError as e:
            if "logits_to_keep" not in str(e):
                raise
            return self.model(**inputs, use_cache=False).logits[:, -keep:]

    def score(self, conversations: list, images: list) -> LossResult:
        """Per sample summed NLL and token count; images are PIL images or None (text only).

        Samples go in windows of ``sort_window``: each window is length-sorted into batches, and the
        next window is encoded (template, processor: Python and tokenizers) in a background thread
        while this one runs through the model, so preprocessing overlaps the forward passes."""
        n, w = len(conversations), self.options.sort_window
        nll = np.full(n, np.nan)
        tokens = np.zeros(n, dtype=np.int64)
        errors: list[str | None] = [None] * n
        starts = list(range(0, n, w))
        with ThreadPoolExecutor(1, thread_name_prefix="vlm-encode") as pool:
            encode = lambda s: pool.submit(self.encode_all, conversations[s : s + w], images[s : s + w])  # noqa: E731
            ahead = encode(starts[0]) if starts else None
            for k, start in enumerate(starts):
                encoded, errs = ahead.result()
                ahead = encode(starts[k + 1]) if k + 1 < len(starts) else None
                part = self._score_encoded(encoded, errs)
                sl = slice(start, start + len(encoded))
                nll[sl], tokens[sl], errors[sl] = part.nll, part.tokens, part.errors
        return LossResult(nll, tokens, errors)

    def _score_encoded(self, encoded: list[Encoded | None], errors: list[str | None]) -> LossResult:
        """Forward the encoded samples of one window in length-sorted batches."""
        n = len(encoded)
        nll = np.full(n, np.nan)
        tokens = np.zeros(n, dtype=np.int64)
        for idx in self.batches(encoded):
            try:
                sums, counts = self.forward_nll([encoded[i] for i in idx])
            except Exception:  # a batch that fails is retried one sample at a time
                for i in idx:
                    try:
                        s, c = self.forward_nll([encoded[i]])
                    except Exception as e:
                        errors[i] = f"{type(e).__name__}: {e}"
                        continue
                    tokens[i], nll[i] = int(c[0]), float(s[0]) if c[0] > 0 else np.nan
                continue
            tokens[idx] = counts.numpy()
            nll[idx] = np.where(counts.numpy() > 0, sums.numpy(), np.nan)
        return LossResult(nll, tokens, errors)


def decode_image(data: bytes | None, max_pixels: int) -> Any:
    """Encoded bytes → RGB PIL image (None stays None); raises ``ImageError`` on a bad image."""
    if data is None:
        return None
    from magicvl.storage.images import _load, open_checked, to_rgb

    img = open_checked(data, max_pixels)
    _load(img)
    return to_rgb(img)


@lru_cache(maxsize=2)
def _cached(options: VlmOptions) -> Any:
    if options.engine == "vllm":
        from magicvl.model.backends.vlm_vllm import VllmLoss

        return VllmLoss.load(options)
    return VlmLoss.load(options)


def load_vlm_backend(params: Any) -> Any:
    """The loss backend for a ``vlm_loss`` signal's params, loaded once per worker process.

    ``params`` is a ``VlmOptions`` (``VlmLossParams`` is one). Wire into
    ``tasks.backends.load_backend`` for ``signal.backend == "vlm"``.
    """
    return _cached(params.options())
