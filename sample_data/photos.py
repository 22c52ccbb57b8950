"""Photographs: deterministic variants of scikit-image's bundled photos, their captions and VQA."""

from __future__ import annotations

import importlib.util
import io
import math
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

from magicvl.sample_data.photo_facts import COLOR_SENTENCES, GRAY_SENTENCES, PHOTOS, STYLE_SENTENCES, PhotoFacts
from magicvl.sample_data.words import pick

MIN_SIDE, MAX_SIDE = 200, 1024
VQA_SUFFIX = "Answer the question using a single word or phrase."
_LEADS = (
    "This photograph shows {s}.",
    "The image shows {s}.",
    "In this picture we see {s}.",
    "Here is {s}.",
    "A photo of {s}.",
)


@dataclass(frozen=True)
class Photo:
    """One photo variant: the pixels, what is in it, and its pre-variant size."""

    image: Image.Image | None  # None once encoded (pools keep only the bytes)
    facts: PhotoFacts
    original_size: tuple[int, int]


def data_dir() -> Path:
    """scikit-image's bundled data folder (found without importing scikit-image)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise RuntimeError("scikit-image is not installed; the sample photos come from its data folder")
    return Path(spec.origin).parent / "data"


@cache
def load_base(file: str) -> Image.Image:
    """A bundled photo as RGB or L (alpha composited onto white). Cached; callers must not modify it."""
    with Image.open(data_dir() / file) as im:
        im.load()
        if im.mode in ("RGBA", "LA", "P"):
            bg = Image.new("RGBA", im.size, "white")
            return Image.alpha_composite(bg, im.convert("RGBA")).convert("L" if file == "horse.png" else "RGB")
        return im.convert("L") if im.mode in ("1", "I;16", "I") else im.convert(im.mode)


def _long_side(rnd: random.Random) -> int:
    return round(math.exp(rnd.uniform(math.log(MIN_SIDE), math.log(MAX_SIDE))))


def photo_variant(seed: int, stream: str, index: int) -> Photo:
    """Variant ``index`` of ``stream``: a crop, maybe a mirror, a rescale and a colour jitter of a base photo."""
    rnd = random.Random(f"{seed}:{stream}:{index}")
    facts = PHOTOS[index % len(PHOTOS)]
    base = load_base(facts.file)
    w, h = base.size
    cw, ch = int(w * rnd.uniform(0.85, 1.0)), int(h * rnd.uniform(0.85, 1.0))
    x0, y0 = rnd.randint(0, w - cw), rnd.randint(0, h - ch)
    im = base.crop((x0, y0, x0 + cw, y0 + ch))
    if rnd.random() < 0.5:
        im = ImageOps.mirror(im)
    scale = _long_side(rnd) / max(cw, ch)
    size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
    im = im.resize(size, Image.Resampling.LANCZOS)
    im = ImageEnhance.Brightness(im).enhance(rnd.uniform(0.85, 1.15))
    im = ImageEnhance.Contrast(im).enhance(rnd.uniform(0.85, 1.15))
    if im.mode == "RGB":
        im = ImageEnhance.Color(im).enhance(rnd.uniform(0.8, 1.2))
    return Photo(im, facts, base.size)


def encode_jpeg(im: Image.Image, quality: int = 90) -> bytes:
    """JPEG bytes (baseline, no EXIF: deterministic)."""
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encode_png(im: Image.Image) -> bytes:
    """PNG bytes (fast compression: these are flat renders)."""
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def caption(facts: PhotoFacts, rnd: random.Random) -> str:
    """A caption of 3 to about 120 words: lengths are drawn log-uniformly so complexity varies a lot."""
    target = int(math.exp(rnd.uniform(math.log(5), math.log(120))))
    if target <= 6:
        return facts.subject[0].upper() + facts.subject[1:] + "."
    if target <= 12:
        return pick(rnd, facts.short)
    parts = [pick(rnd, _LEADS).format(s=facts.subject)]
    extra = list(facts.details) + list(STYLE_SENTENCES)
    extra.append(pick(rnd, GRAY_SENTENCES if facts.gray else COLOR_SENTENCES))
    rnd.shuffle(extra)
    words = len(parts[0].split())
    for sentence in extra:
        if words >= target:
            break
        parts.append(sentence)
        words += len(sentence.split())
    return " ".join(parts)


def caption_conversation(facts: PhotoFacts, rnd: random.Random) -> list[dict[str, str]]:
    """A caption record in instruction form (used when captions overflow into a JSON source)."""
    prompt = pick(
        rnd,
        (
            "Describe the image briefly.",
            "Write a caption for this photo.",
            "Describe this image in detail.",
            "What does this picture show?",
        ),
    )
    return [{"from": "human", "value": f"<image>\n{prompt}"}, {"from": "gpt", "value": caption(facts, rnd)}]


def vqa_conversation(facts: PhotoFacts, rnd: random.Random) -> list[dict[str, str]]:
    """One to three short-answer questions about the photo (LLaVA VQA style)."""
    pairs = rnd.sample(facts.qa, min(len(facts.qa), rnd.choice((1, 1, 2, 3))))
    suffix = rnd.random() < 0.6
    turns: list[dict[str, str]] = []
    for i, (q, a) in enumerate(pairs):
        text = f"{q}\n{VQA_SUFFIX}" if suffix else q
        turns.append({"from": "human", "value": f"<image>\n{text}" if i == 0 else text})
        turns.append({"from": "gpt", "value": a})
    return turns
