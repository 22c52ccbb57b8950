"""OCR text density throughput: the signal on 2 worker processes vs rapidocr in a loop on 1 core.

    python -m bench.ocr [--images 16] [--workers 2]

Images: rendered documents (8-12 text lines, 640×480), small GUI-like panels
and blank pages, the same set for both sides. "direct" calls
``RapidOCR()(image)`` (1 onnxruntime thread) in a loop in this process;
"signal" runs the ``ocr_text_density`` compute (decode, downscale policy,
OCR, tokenization) in ``--workers`` processes that each load the engine once
(like an actor) and take half of the images as encoded bytes. Engine loads and a
warm-up image are outside the timings on both sides.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.perplexity import WORDS

_STATE: dict = {}


def images(n: int, seed: int = 0) -> list[bytes]:
    """PNG bytes: documents with 8-12 lines, small panels with 2 labels, and blank pages."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        size, lines = ((640, 480), int(rng.integers(8, 13))) if k % 4 != 3 else ((320, 200), 2 * (k % 8 == 3))
        img = Image.new("RGB", size, "white")
        draw = ImageDraw.Draw(img)
        font = ImageFont.load_default(size=20)
        for j in range(lines):
            draw.text((16, 12 + 36 * j), " ".join(rng.choice(WORDS, int(rng.integers(3, 7)))), fill="black", font=font)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def _init(tokenizer: str) -> None:
    from magicvl.scoring.signals import get_signal
    from magicvl.tasks.backends import load_backend

    s = get_signal("ocr_text_density")
    params = s.params(tokenizer=tokenizer)
    _STATE.update(signal=s, params=params, backend=load_backend(s, params))


def _score(chunk: list[bytes]) -> float:
    from magicvl.scoring.batch import SampleBatch

    s, p, b = _STATE["signal"], _STATE["params"], _STATE["backend"]
    out = s.compute(SampleBatch([str(i) for i in range(len(chunk))], [[]] * len(chunk), chunk), p, b)
    return float(np.nansum(out["ocr_text_density_boxes"]))


def direct(data: list[bytes]) -> tuple[float, float]:
    from rapidocr import RapidOCR

    engine = RapidOCR(
        params={
            "Global.log_level": "error",
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )
    decoded = [Image.open(io.BytesIO(d)).convert("RGB") for d in data]
    engine(decoded[0])  # warm-up
    t0 = time.perf_counter()
    boxes = 0
    for img in decoded:
        res = engine(img)
        boxes += 0 if res.boxes is None else len(res.boxes)
    return time.perf_counter() - t0, float(boxes)


def signal(data: list[bytes], workers: int, tokenizer: str) -> tuple[float, float]:
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(tokenizer,)) as pool:
        list(pool.map(_score, [data[:1]] * workers))  # load + warm up each worker
        chunks = [data[i::workers] for i in range(workers)]
        t0 = time.perf_counter()
        boxes = sum(pool.map(_score, chunks))
        return time.perf_counter() - t0, boxes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from magicvl.model.tiny import build_tokenizer

    tok = str(build_tokenizer(Path(tempfile.mkdtemp(prefix="bench-ocr-")) / "tokenizer"))
    data = images(args.images)
    d_s, d_boxes = direct(data)
    s_s, s_boxes = signal(data, args.workers, tok)
    print(f"OCR images/s over {len(data)} images (rapidocr {_version()}, PP-OCR models from its wheel)\n")
    print(f"{'method':<34}{'seconds':>9}{'images/s':>10}{'boxes':>7}{'×':>7}")
    print(f"{'rapidocr direct, loop, 1 core':<34}{d_s:>9.2f}{len(data) / d_s:>10.2f}{d_boxes:>7.0f}{1.0:>7.2f}")
    label = f"ocr_text_density, {args.workers} workers"
    print(f"{label:<34}{s_s:>9.2f}{len(data) / s_s:>10.2f}{s_boxes:>7.0f}{d_s / s_s:>7.2f}")


def _version() -> str:
    from importlib.metadata import version

    return version("rapidocr")


if __name__ == "__main__":
    main()
