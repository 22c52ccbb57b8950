"""OCR text density with the real PP-OCR models inside rapidocr's wheel: known text in, known text out."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals import get_signal
from magicvl.scoring.signals.ocr_text_density import OcrTextDensityParams, read_lines, views
from magicvl.tasks.backends import load_backend

pytest.importorskip("rapidocr", reason="the OCR tests need the ocr extra: pip install rapidocr onnxruntime")

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"]


def render(lines: list[str], size: tuple[int, int], step: int, font_size: int = 24) -> Image.Image:
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=font_size)
    for k, text in enumerate(lines):
        draw.text((20, 20 + k * step), text, fill="black", font=font)
    return img


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def ocr(tokenizer_dir):
    s = get_signal("ocr_text_density")
    params = s.params(tokenizer=str(tokenizer_dir), max_side=640)
    return s, params, load_backend(s, params)


def test_rendered_text_is_recovered_and_a_blank_image_gives_zero(ocr):
    s, params, backend = ocr
    lines = ["INVOICE 2024", "Total: 42.50 dollars"]
    images = [png(render(lines, (480, 160), 50, 28)), png(Image.new("RGB", (480, 160), "white")), None, b"junk"]
    out = s.compute(SampleBatch(list("abcd"), [[]] * 4, images), params, backend)
    tokens = sum(len(x) for x in backend.tokenizer(lines, add_special_tokens=False)["input_ids"])
    assert out["ocr_text_density_boxes"][0] == 2
    assert out["ocr_text_density_chars"][0] == sum(len(x) for x in lines)
    assert out["ocr_text_density_tokens"][0] == tokens
    assert out["ocr_text_density"][0] == pytest.approx(tokens / (480 * 160 / 1e6))
    assert 0 < out["ocr_text_density_area_share"][0] < 0.5 and out["ocr_text_density_confidence"][0] > 0.9
    assert out["ocr_text_density"][1] == 0 and out["ocr_text_density_boxes"][1] == 0
    assert np.isnan(out["ocr_text_density_confidence"][1])
    assert np.isnan(out["ocr_text_density"][2]) and out["error"][2] is None
    assert np.isnan(out["ocr_text_density"][3]) and "not a readable image" in out["error"][3]


def test_a_long_screenshot_is_tiled_not_squashed(ocr):
    s, params, backend = ocr
    lines = [f"Line {k} {w}" for k, w in enumerate(WORDS)]
    img = render(lines, (400, 2400), 195)  # aspect 6: far past max_aspect
    scale, vs = views(img.width, img.height, params)
    assert scale == 1.0 and len(vs) == 5  # full resolution, 640-pixel tiles down the page
    assert [v.box[1] for v in vs] == [0, 440, 880, 1320, 1760]  # evenly spread, overlaps 200 ≥ 64
    assert all(v.box[3] - v.box[1] == 640 and v.box[2] == 400 for v in vs)
    assert vs[0].own[0] == 0 and vs[-1].own[1] == 2400
    assert all(a.own[1] == b.own[0] for a, b in zip(vs, vs[1:]))  # owned ranges tile the page exactly
    found = read_lines(backend.engine, img, params)
    assert [x.text for x in found] == lines  # every line once, in order, none lost at tile seams
    assert all(abs(x.box[:, 1].mean() - (20 + k * 195 + 12)) < 20 for k, x in enumerate(found))  # original pixels


def test_views_downscale_ordinary_images_and_leave_small_ones():
    p = OcrTextDensityParams(tokenizer="x", max_side=1000)
    assert views(800, 600, p) == (1.0, views(800, 600, p)[1]) and len(views(800, 600, p)[1]) == 1
    scale, vs = views(4000, 2000, p)  # aspect 2 ≤ 2.5: one view, longer side → 1000
    assert scale == 0.25 and [v.box for v in vs] == [(0, 0, 1000, 500)]
    scale, vs = views(30000, 3000, p)  # aspect 10: shorter side → 1000, tiled along x
    assert scale == pytest.approx(1 / 3) and all(v.box[2] - v.box[0] == 1000 and v.box[3] == 1000 for v in vs)
