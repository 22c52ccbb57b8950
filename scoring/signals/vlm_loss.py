"""Per-sample VLM response loss: the input of the cross-modal task complexity C(Ms, Ml).

For each sample, the autoregressive loss of the response given (image,
prompt) under one VLM: ``vlm_loss`` (mean NLL in nats per response token),
``vlm_loss_nll`` (summed) and ``vlm_loss_tokens`` (count), so any statistic
can be recomputed later without a forward pass. Text-only samples go through
the same model without an image. The paper runs three models (Qwen2-VL 2B,
7B, 72B); a recipe lists them under ``cross_modal.models`` and each becomes
one instance of this signal, ``vlm_loss@<name>`` (see ``scoring.crossmodal``).
"""

from __future__ import annotations

import numpy as np

from magicvl.model.backends.vlm_options import VlmOptions
from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals.base import Columns, Signal, SignalParams

COLUMNS = ("vlm_loss", "vlm_loss_nll", "vlm_loss_tokens")


class VlmLossParams(VlmOptions, SignalParams):
    """The VLM (path or id) and how it runs; only model, dtype, engine and count_end_of_turn enter the cache key."""


def compute(batch: SampleBatch, params: VlmLossParams, backend) -> Columns:
    """Mean NLL, summed NLL and token count of each row's response (errors per row)."""
    from magicvl.model.backends.vlm import decode_image

    n = len(batch)
    images, errors = [], [None] * n
    for i, data in enumerate(batch.images or [None] * n):
        try:
            images.append(decode_image(data, batch.max_pixels))
        except ValueError as e:  # storage.images.ImageError
            images.append(None)
            errors[i] = f"image: {e}"
    ok = [i for i in range(n) if errors[i] is None]
    res = backend.score([batch.conversations[i] for i in ok], [images[i] for i in ok])
    out = {c: np.full(n, np.nan) for c in COLUMNS}
    out["vlm_loss"][ok] = res.mean
    out["vlm_loss_nll"][ok] = res.nll
    out["vlm_loss_tokens"][ok] = res.tokens
    for k, i in enumerate(ok):
        errors[i] = res.errors[k]
    if any(errors):
        out["error"] = np.array(errors, dtype=object)
    return out


SIGNAL = Signal(
    name="vlm_loss",
    version="2",  # 2: end-of-turn token left out by default (count_end_of_turn); tokens overlapping the span
    axis="task",
    description="Mean response NLL under a VLM (input of the cross-modal complexity C).",
    params=VlmLossParams,
    compute=compute,
    columns=COLUMNS,
    reads="both",
    backend="vlm",
)
