"""Safe image references and decode checks.

* References resolve only inside a dataset's image root: URLs, absolute paths
  outside it and ``..`` escapes (also through symlinks) are refused, never fetched.
* Size is checked from the header before any pixel is decoded, so a
  40,000×40,000 PNG is refused in microseconds without allocating it.
* Odd modes (CMYK, 16-bit, palette, alpha, LA, I, F) convert to 8-bit RGB/L
  with documented rules (``to_rgb``, ``to_gray``).
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # MPO files open through JPEG
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(//|[^\\/])")  # scheme: but not a Windows drive letter path


class ImageError(ValueError):
    """An image that cannot be used; ``kind`` is a short code for counting."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


def resolve_image_path(ref: str, root: Path) -> Path:
    """Resolve ``ref`` inside ``root`` or raise ImageError. Never touches the network.

    ``root`` should already be resolved (``Path.resolve()``); callers resolving
    many references do that once.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise ImageError("bad_image_ref", f"image reference must be a non-empty string, got {ref!r}")
    if "\x00" in ref:
        raise ImageError("bad_image_ref", "image reference contains a NUL byte")
    if _URL_RE.match(ref) and not re.match(r"^[A-Za-z]:[\\/]", ref):
        raise ImageError("url_refused", f"image reference {ref!r} is a URL; URLs are never fetched")
    base = str(root)
    absolute = os.path.isabs(ref)
    target = os.path.realpath(ref if absolute else os.path.join(base, ref))  # follows symlinks
    if target != base and not target.startswith(base.rstrip(os.sep) + os.sep):
        where = "is outside" if absolute else "escapes"
        raise ImageError("path_outside_root", f"image path {ref!r} {where} the image root {root}")
    if not os.path.isfile(target):
        raise ImageError("image_not_found", f"image file {ref!r} not found under {root}")
    return Path(target)


def read_image_bytes(path: Path, max_bytes: int) -> bytes:
    """Read an image file, refusing files over ``max_bytes``."""
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageError("image_too_large", f"image file {path.name} is {size} bytes (max {max_bytes})")
    if size == 0:
        raise ImageError("not_an_image", f"image file {path.name} is empty")
    return path.read_bytes()


def open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open image bytes lazily after checking format and pixel count from the header."""
    if not data:
        raise ImageError("not_an_image", "image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError("too_many_pixels", f"image refused before decoding: {e}") from None
    except Exception as e:  # PIL raises UnidentifiedImageError, SyntaxError, struct.error, ...
        raise ImageError("not_an_image", f"not a readable image: {type(e).__name__}: {e}") from None
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageError("bad_dimensions", f"image has invalid size {w}x{h}")
    if w * h > max_pixels:
        raise ImageError("too_many_pixels", f"image is {w}x{h} = {w * h} pixels (max {max_pixels})")
    return img


def _load(img: Image.Image) -> None:
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone else's global; we never decode half an image
        raise ImageError("decode_error", "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; refusing to decode")
    try:
        img.load()
    except ImageError:
        raise
    except Exception as e:
        raise ImageError("decode_error", f"image does not decode: {type(e).__name__}: {e}") from None


def check_image(data: bytes, max_pixels: int) -> ImageInfo:
    """Decode ``data`` fully (the check) and return its header facts."""
    img = open_checked(data, max_pixels)
    info = ImageInfo(img.width, img.height, img.format or "UNKNOWN")
    _load(img)
    return info


def to_8bit(img: Image.Image) -> Image.Image:
    """High bit-depth modes to 8 bits by scaling (not clipping): 16-bit >> 8, float 0..1 → 0..255."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.uint16)
        return Image.fromarray((arr >> 8).astype(np.uint8), "L")
    if img.mode == "I":
        arr = np.asarray(img, dtype=np.int64)
        hi = 65535 if arr.max(initial=0) > 255 else 255
        return Image.fromarray((np.clip(arr, 0, hi) * 255 // hi).astype(np.uint8), "L")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        return Image.fromarray((np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "L")
    return img


def to_rgb(img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Any mode → 8-bit RGB. Transparency is composited over ``background`` (white)."""
    img = to_8bit(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, background + (255,))
        return Image.alpha_composite(base, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def to_gray(img: Image.Image) -> Image.Image:
    """Any mode → 8-bit luma 'L' (ITU-R 601-2 via RGB; transparency over white)."""
    img = to_8bit(img)
    if img.mode == "L":
        return img
    return to_rgb(img).convert("L")


def gray_for_signals(data: bytes, max_pixels: int, max_side: int) -> tuple[ImageInfo, Image.Image]:
    """The decode every image signal shares: 8-bit luma, longer side below ``2 · max_side``.

    Policy (documented so values are reproducible): JPEGs are decoded at the
    smallest DCT scale whose result is still at least ``max_side`` on both sides
    (``Image.draft``), luma only; an image whose longer side L is still at
    least ``2 · max_side`` is then box-reduced by the integer factor
    ⌊L / max_side⌋ (one cheap pass, no resampling), keeping aspect ratio.
    Decoding here is also the integrity check: all compressed data is read.
    Returns header facts (original size) and the luma image (mode 'L').
    """
    img = open_checked(data, max_pixels)
    info = ImageInfo(img.width, img.height, img.format or "UNKNOWN")
    if img.format in ("JPEG", "MPO") and img.mode in ("RGB", "L", "YCbCr"):
        img.draft("L", (max_side, max_side))
    _load(img)
    factor = max(img.size) // max_side
    gray = to_gray(img)  # luma first: reducing one 8-bit channel is cheaper than RGB(X)
    return info, gray.reduce(factor) if factor >= 2 else gray
