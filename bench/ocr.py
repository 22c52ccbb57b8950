"""OCR text density throughput: the signal on 2 worker processes vs rapidocr in a loop on 1 core.

    python -m bench.ocr [--images 16] [--workers 2] [--repeats 2]

Images: rendered documents (8-12 text lines, 640×480), small GUI-like panels
and blank pages, the same set for both sides. "direct" calls
``RapidOCR()(image)`` with 1 onnxruntime intra-/inter-op thread and OpenCV at
1 thread, in a loop in this process pinned to one CPU at a time (worker k's
share on CPU k); "signal" runs the
``ocr_text_density`` compute (decode, downscale policy, OCR, tokenization) in
``--workers`` processes, each pinned to its own CPU, loading the engine once
with the thread count a ``num_cpus: 1`` worker gets (``bench/workers.py``).
Engine loads and a warm-up image are outside the timings on both sides; the
two alternate for ``--repeats`` rounds.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.perplexity import WORDS
from bench.workers import compare, one_core, one_core_loop, print_rounds, signal_pool


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


def direct(data: list[bytes], parts: int) -> Callable[[], tuple[float, float]]:
    """rapidocr loaded here; each call is one pass over ``data``, one core at a time: (seconds, boxes found)."""
    from rapidocr import RapidOCR

    with one_core():
        engine = RapidOCR(
            params={
                "Global.log_level": "error",
                "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
        decoded = [Image.open(io.BytesIO(d)).convert("RGB") for d in data]
        engine(decoded[0])  # warm-up

    def one_pass() -> tuple[float, float]:
        def boxes(img: Image.Image) -> float:
            res = engine(img)
            return 0.0 if res.boxes is None else float(len(res.boxes))

        return one_core_loop(decoded, boxes, parts)

    return one_pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="rounds, direct and signal alternating")
    args = ap.parse_args()
    from magicvl.model.backends.ocr import engine_identity
    from magicvl.model.tiny import build_tokenizer

    tok = str(build_tokenizer(Path(tempfile.mkdtemp(prefix="bench-ocr-")) / "tokenizer"))
    data = images(args.images)
    params = {"tokenizer": tok}
    with signal_pool("ocr_text_density", params, data, args.workers, "ocr_text_density_boxes") as run:
        rounds = compare(direct(data, args.workers), lambda: run(data), args.repeats)
    labels = ("rapidocr direct, loop, 1 core", f"ocr_text_density, {args.workers} workers")
    title = f"OCR images/s over {len(data)} images ({engine_identity('rapidocr')}, PP-OCR models from its wheel)"
    print_rounds(title, labels, rounds, len(data))


if __name__ == "__main__":
    main()
