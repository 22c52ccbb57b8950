"""OCR speed per core and text counted: the old default vs the new default vs each runtime option here.

    python -m bench.ocr [--per-kind 3] [--repeats 2]

Images: the sample data's documents (the four kinds), charts, GUI screenshots
(phone, long phone, desktop) and photos, ``--per-kind`` of each (photos: 2).
Every configuration runs the ``ocr_text_density`` signal's own path (downscale
policy, tiling, the engine, tokenization) in this process pinned to ONE CPU
with 1 inference/OpenCV thread; engine loads and a warm-up image are outside
the timings; configurations alternate for ``--repeats`` rounds. Columns:
images/s on one core (wall), CPU seconds per image, text tokens per image and
its change against the old default (mean over the same images). The old
default is what signal version 1 ran: rapidocr on onnxruntime, f32, direction
classifier on. A configuration that cannot run here is listed with its error.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.perplexity import WORDS
from bench.workers import one_core


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


def sample_images(per_kind: int = 3, seed: int = 0) -> list[tuple[str, Image.Image]]:
    """(kind, RGB image): documents, charts, GUIs and photos from the sample-data generators."""
    from magicvl.sample_data import charts, documents, gui, photos

    out = [("doc", documents.document(seed, i).image.convert("RGB")) for i in range(max(4, per_kind))]
    for i in range(per_kind):
        spec = charts.chart_spec(seed, i)
        out.append(("chart", Image.open(io.BytesIO(charts.render_chart(spec))).convert("RGB")))
    out += [("gui", gui.screen(seed, i).image.convert("RGB")) for i in range(per_kind)]
    out += [("photo", photos.photo_variant(seed, "bench", i).image.convert("RGB")) for i in range(2)]
    return out


OLD = {"provider": "onnxruntime", "precision": "f32", "use_cls": True}  # signal version 1's engine
CONFIGS: dict[str, dict] = {
    "old default: onnxruntime f32, cls on": OLD,
    "new default: openvino bf16, cls on": {},
    "openvino f32, cls on": {"precision": "f32"},
    "openvino bf16, cls off": {"use_cls": False},
    "onnxruntime f32, cls off": {**OLD, "use_cls": False},
    "onnxruntime cuda f32, cls on": {**OLD, "device": "cuda"},
}


def load(tok: str, overrides: dict) -> tuple[Any, Any]:
    """(params, backend) of the signal with ``overrides``, 1 thread; raises BackendError where it cannot run."""
    from magicvl.model.backends.ocr import OcrBackend, load_ocr
    from magicvl.scoring.signals.ocr_text_density import OcrTextDensityParams, runtime
    from magicvl.tasks.backends import tokenizer

    p = OcrTextDensityParams(tokenizer=tok, threads=1, **overrides)
    return p, OcrBackend(load_ocr(p.engine, 1, runtime(p, 1)), tokenizer(tok))


def one_pass(imgs: list[Image.Image], p: Any, backend: Any) -> tuple[float, float, list[float]]:
    """(wall s, CPU s, tokens per image) of the signal's path over ``imgs`` on the current CPU."""
    from magicvl.scoring.signals.ocr_text_density import measure, read_lines

    w0, c0 = time.perf_counter(), time.process_time()
    toks = [
        measure(read_lines(backend.engine, im, p), im.width, im.height, backend.tokenizer)["ocr_text_density_tokens"]
        for im in imgs
    ]
    return time.perf_counter() - w0, time.process_time() - c0, toks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-kind", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2, help="rounds, configurations alternating")
    args = ap.parse_args()
    from magicvl.model.backends.base import BackendError
    from magicvl.model.backends.ocr import engine_identity
    from magicvl.model.tiny import build_tokenizer

    tok = str(build_tokenizer(Path(tempfile.mkdtemp(prefix="bench-ocr-")) / "tokenizer"))
    kinds_imgs = sample_images(args.per_kind)
    imgs = [im for _, im in kinds_imgs]
    loaded, errors = {}, {}
    with one_core():
        for name, over in CONFIGS.items():
            try:
                loaded[name] = load(tok, over)
                one_pass(imgs[:1], *loaded[name])  # warm-up
            except BackendError as e:
                errors[name] = str(e)
        sums = {n: [0.0, 0.0] for n in loaded}
        toks: dict[str, list[float]] = {}
        for _ in range(args.repeats):
            for name, (p, backend) in loaded.items():
                wall, cpu, t = one_pass(imgs, p, backend)
                sums[name][0] += wall
                sums[name][1] += cpu
                toks[name] = t
    n = len(imgs) * args.repeats
    kinds = ", ".join(f"{k} {sum(1 for x, _ in kinds_imgs if x == k)}" for k in dict(kinds_imgs))
    print(
        f"OCR on one core over {len(imgs)} images ({kinds}) x {args.repeats} rounds; "
        f"{engine_identity('rapidocr')}, openvino {_version('openvino')}"
    )
    old = next(iter(loaded))
    base_rate, base_tok = n / sums[old][0], float(np.mean(toks[old]))
    print(
        f"{'configuration':40s} {'img/s':>7s} {'x old':>6s} {'cpu s/img':>9s} {'x old':>6s} "
        f"{'tokens/img':>10s} {'vs old':>7s}"
    )
    for name in CONFIGS:
        if name in errors:
            print(f"{name:40s} not runnable here: {errors[name]}")
            continue
        rate, cpu, tk = n / sums[name][0], sums[name][1] / n, float(np.mean(toks[name]))
        print(
            f"{name:40s} {rate:7.3f} {rate / base_rate:6.2f} {cpu:9.3f} {sums[old][1] / n / cpu:6.2f} "
            f"{tk:10.1f} {100 * (tk / base_tok - 1):+6.1f}%"
        )


def _version(pkg: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
