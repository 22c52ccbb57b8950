"""Image references never leave the image root; decode checks refuse hostile images quickly."""

from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest
from PIL import Image

from magicvl.storage.images import (
    ImageError,
    check_image,
    gray_for_signals,
    open_checked,
    resolve_image_path,
    to_gray,
    to_rgb,
)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "images"
    (r / "sub").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(r / "sub" / "ok.png")
    (tmp_path / "secret.png").write_bytes((r / "sub" / "ok.png").read_bytes())
    return r


@pytest.mark.parametrize(
    "ref,kind",
    [
        ("http://example.com/a.jpg", "url_refused"),
        ("https://example.com/a.jpg", "url_refused"),
        ("s3://bucket/a.jpg", "url_refused"),
        ("file:///etc/hostname", "url_refused"),
        ("data:image/png;base64,AAAA", "url_refused"),
        ("../secret.png", "path_outside_root"),
        ("sub/../../secret.png", "path_outside_root"),
        ("/etc/hostname", "path_outside_root"),
        ("missing.png", "image_not_found"),
        ("sub", "image_not_found"),
        ("", "bad_image_ref"),
        ("a\x00b.png", "bad_image_ref"),
    ],
)
def test_refused_references(root, ref, kind):
    with pytest.raises(ImageError) as e:
        resolve_image_path(ref, root.resolve())
    assert e.value.kind == kind


def test_accepted_references(root):
    assert resolve_image_path("sub/ok.png", root.resolve()) == (root / "sub" / "ok.png").resolve()
    assert resolve_image_path("./sub/../sub/ok.png", root.resolve()).name == "ok.png"
    inside = str(root / "sub" / "ok.png")  # absolute, inside the root
    assert resolve_image_path(inside, root.resolve()).name == "ok.png"


def test_symlink_escaping_the_root_is_refused(root, tmp_path):
    os.symlink(tmp_path / "secret.png", root / "link.png")
    with pytest.raises(ImageError) as e:
        resolve_image_path("link.png", root.resolve())
    assert e.value.kind == "path_outside_root"


def test_pixel_cap_is_checked_from_the_header_before_decoding():
    big = encode(Image.new("L", (3000, 3000)), "PNG")
    t = time.perf_counter()
    with pytest.raises(ImageError) as e:
        check_image(big, max_pixels=1_000_000)
    assert e.value.kind == "too_many_pixels" and "3000x3000" in str(e.value)
    assert time.perf_counter() - t < 1.0


def test_png_bomb_is_refused_without_allocating(tmp_path):
    from magicvl.sample_data.hostile import write_png_bomb

    data = write_png_bomb(tmp_path / "bomb.png").read_bytes()
    assert len(data) < 5_000_000
    with pytest.raises(ImageError) as e:
        check_image(data, max_pixels=64_000_000)
    assert e.value.kind == "too_many_pixels" and "1600000000 pixels" in str(e.value)


def test_truncated_and_non_images_are_refused():
    jpeg = encode(Image.effect_noise((64, 64), 60).convert("RGB"), "JPEG")
    with pytest.raises(ImageError) as e:
        check_image(jpeg[: len(jpeg) // 2], 10**8)
    assert e.value.kind == "decode_error"
    for junk in (b"", b"GIF89a", b"<html>not an image</html>", b"\x89PNG\r\n\x1a\n" + b"\x00" * 10):
        with pytest.raises(ImageError):
            check_image(junk, 10**8)


def test_formats_outside_the_allow_list_are_refused():
    with pytest.raises(ImageError) as e:
        open_checked(encode(Image.new("RGB", (4, 4)), "PPM"), 10**8)
    assert e.value.kind == "not_an_image"


def test_sixteen_bit_is_scaled_not_clipped():
    arr = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)  # 0..65535
    img = Image.fromarray(arr)  # mode I;16
    g = np.asarray(to_gray(img))
    assert g.min() == 0 and g.max() == 255 and len(np.unique(g)) == 256
    info, gray = gray_for_signals(encode(img, "PNG"), 10**8, 512)
    assert (info.width, info.height) == (16, 16) and np.array_equal(np.asarray(gray), g)


def test_transparency_is_composited_over_white():
    rgba = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (255, 0, 0, 255))
    assert list(to_rgb(rgba).getdata()) == [(255, 255, 255), (255, 0, 0)]
    la = Image.new("LA", (1, 1), (0, 0))
    assert to_rgb(la).getpixel((0, 0)) == (255, 255, 255)
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 0
    back = Image.open(io.BytesIO(encode(pal, "PNG")))
    assert list(to_rgb(back).getdata()) == [(255, 255, 255), (0, 255, 0)]


def test_cmyk_jpeg_converts_to_rgb():
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    data = encode(cmyk, "JPEG", quality=95)
    info = check_image(data, 10**8)
    assert info.format == "JPEG"
    r, g, b = to_rgb(Image.open(io.BytesIO(data))).getpixel((4, 4))
    assert r > 200 and g < 60 and b < 60


def test_gray_for_signals_keeps_aspect_and_reports_original_size():
    img = Image.effect_noise((3000, 1000), 50).convert("RGB")
    for fmt in ("JPEG", "PNG"):
        info, g = gray_for_signals(encode(img, fmt), 10**8, 512)
        assert (info.width, info.height) == (3000, 1000)
        assert g.mode == "L" and g.size == (600, 200)  # box-reduced by ⌊3000/512⌋ = 5
