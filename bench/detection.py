"""Object density throughput: the signal on 2 worker processes vs Grounding DINO in a loop on 1 core.

    python -m bench.detection [--images 32] [--workers 2] [--repeats 3] [--batch-size 4] [--model PATH]

Model: the tiny random Grounding DINO of ``model/tiny.py`` (built into a
temporary folder) unless ``--model`` names another local checkpoint. Images:
the rendered documents, panels and blank pages of ``bench.ocr`` plus as many
photo-like pictures (noise and coloured shapes), the same set for both sides.
"direct" runs ``processor → model → post_process_grounded_object_detection``
of transformers one image at a time in a loop in this process, pinned to one
CPU at a time (worker k's share on CPU k) with 1 torch thread; "signal" runs
the ``object_density`` compute (decode, batches of ``batch_size`` images,
detection, boxes to JSON) in ``--workers``
processes, each pinned to its own CPU with 1 torch thread, loading the model
once (``bench/workers.py``). Loads and a warm-up image are outside the timings;
the two sides alternate for ``--repeats`` rounds.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.ocr import images as text_images
from bench.workers import compare, one_core, one_core_loop, print_rounds, signal_pool


def pictures(n: int, seed: int = 1) -> list[bytes]:
    """JPEG bytes of photo-like pictures: smooth noise with a few coloured rectangles and ellipses."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        w, h = int(rng.integers(480, 800)), int(rng.integers(360, 600))
        base = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(2, 7))):
            x0, y0 = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
            box = (x0, y0, x0 + int(rng.integers(40, w // 2)), y0 + int(rng.integers(40, h // 2)))
            fill = tuple(int(v) for v in rng.integers(0, 255, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def direct(
    data: list[bytes], model_dir: str, labels: tuple[str, ...], box_t: float, text_t: float, parts: int
) -> Callable[[], tuple[float, float]]:
    """transformers Grounding DINO loaded here; each call is one pass, one image at a time, on one core."""
    import torch
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    from magicvl.model.backends.detector import query_text

    with one_core():
        processor = AutoProcessor.from_pretrained(model_dir)
        model = AutoModelForZeroShotObjectDetection.from_pretrained(model_dir).eval()
    text = query_text(labels)

    def detect(img: Image.Image) -> float:
        inputs = processor(images=img, text=text, return_tensors="pt")
        with torch.inference_mode():
            outputs = model(**inputs)
        sizes = [(img.height, img.width)]
        res = processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=box_t, text_threshold=text_t, target_sizes=sizes
        )
        return float(len(res[0]["boxes"]))

    decoded = [Image.open(io.BytesIO(d)).convert("RGB") for d in data]
    with one_core():
        detect(decoded[0])  # warm-up

    def one_pass() -> tuple[float, float]:
        return one_core_loop(decoded, detect, parts)

    return one_pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=32, help="images in all (half rendered text, half pictures)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="rounds, direct and signal alternating")
    ap.add_argument("--model", help="a local Grounding DINO checkpoint (default: the tiny random one)")
    ap.add_argument("--batch-size", type=int, default=4, help="the signal's images per forward pass")
    ap.add_argument("--box-threshold", type=float, default=0.05, help="low, so the random model finds boxes")
    args = ap.parse_args()
    from magicvl.model.tiny import build_tiny_grounding_dino
    from magicvl.scoring.signals.object_density import DEFAULT_LABELS

    model = args.model or str(build_tiny_grounding_dino(Path(tempfile.mkdtemp(prefix="bench-det-")) / "gdino"))
    data = text_images(args.images // 2) + pictures(args.images - args.images // 2)
    box_t, text_t = args.box_threshold, 0.25
    params = {"model": model, "box_threshold": box_t, "text_threshold": text_t, "batch_size": args.batch_size}
    with signal_pool("object_density", params, data, args.workers, "object_density_count") as run:
        one_pass = direct(data, model, DEFAULT_LABELS, box_t, text_t, args.workers)
        rounds = compare(one_pass, lambda: run(data), args.repeats)
    labels = (
        "grounding dino direct, loop, 1 core",
        f"object_density, {args.workers} workers (batch {args.batch_size})",
    )
    which = "tiny random Grounding DINO" if not args.model else args.model
    title = f"detection images/s over {len(data)} images ({which}, {len(DEFAULT_LABELS)} labels)"
    print_rounds(title, labels, rounds, len(data))


if __name__ == "__main__":
    main()
