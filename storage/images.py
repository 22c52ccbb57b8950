"""Safe image references and decode checks.

* References resolve only inside a dataset's image root: URLs, absolute paths
  outside it and ``..`` escapes (also through symlinks) are refused, never fetched.
* Size is checked from the header before any pixel is decoded, so a
  40,000×40,000 PNG is refused in microseconds without allocating it.
* Decode work is bounded: a JPEG with more than ``max_jpeg_scans`` scans
  (progressive "scan bombs": 100,000 empty scans in 1 MB) is refused by
  counting SOS markers before decoding, and every decode runs under a
  deadline (``DecodeBudget``: per image and per ingestion task), checked
  between 8 KiB reads of the compressed data.
* Odd modes (CMYK, 16-bit, palette, alpha, LA, I, F) convert to 8-bit RGB/L
  with documented rules (``to_rgb``, ``to_gray``).
"""

from __future__ import annotations

import io
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from magicvl.storage.fs import ObjectStoreOptions, is_uri, resolve_under
from magicvl.storage.fs import is_file as fs_is_file
from magicvl.storage.fs import name as fs_name
from magicvl.storage.fs import read_bytes as fs_read_bytes
from magicvl.storage.fs import size as fs_size

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # MPO files open through JPEG
_ADDRESS_RE = re.compile(r" (object )?at 0x[0-9A-Fa-f]+")
_SOS = b"\xff\xda"  # start-of-scan marker; entropy-coded data stuffs 0xFF as FF 00, so this is never data
_READ_BLOCK = 8192  # compressed bytes fed to the decoder between deadline checks
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(//|[^\\/])")  # scheme: but not a Windows drive letter path


class ImageError(ValueError):
    """An image that cannot be used; ``kind`` is a short code for counting."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def stable_error(e: BaseException) -> str:
    """``Type: message`` without run-dependent object addresses (outputs stay byte-identical)."""
    return f"{type(e).__name__}: {_ADDRESS_RE.sub('', str(e))}"


@dataclass
class DecodeBudget:
    """Time limits on decoding: ``image_seconds`` per image, ``task_seconds`` over all images of a task.

    ``max_jpeg_scans`` bounds the work of a progressive JPEG before any decoding.
    The task clock starts with the first image decoded under this budget.
    """

    image_seconds: float = 10.0
    task_seconds: float | None = None
    max_jpeg_scans: int = 100
    _task_deadline: float | None = field(default=None, repr=False)

    def deadline(self) -> float:
        """Monotonic time by which the next image must be decoded (ImageError if the task budget is spent)."""
        now = time.monotonic()
        if self.task_seconds is not None and self._task_deadline is None:
            self._task_deadline = now + self.task_seconds
        end = now + self.image_seconds
        if self._task_deadline is not None:
            if now >= self._task_deadline:
                raise ImageError(
                    "task_time_limit", f"task decode budget of {self.task_seconds:g} s is spent; image not decoded"
                )
            end = min(end, self._task_deadline)
        return end


class _DeadlineReader(io.BytesIO):
    """Bytes the decoder pulls in small blocks; past ``deadline`` the next read raises."""

    def __init__(self, data: bytes, deadline: float, seconds: float) -> None:
        super().__init__(data)
        self.deadline = deadline
        self.seconds = seconds

    def read(self, size: int | None = -1) -> bytes:
        if time.monotonic() > self.deadline:
            raise ImageError("decode_timeout", f"image decode exceeded its time limit ({self.seconds:g} s)")
        return super().read(size)


class _DeadlineView(io.RawIOBase):
    """``_DeadlineReader`` over a ``memoryview`` (e.g. of a Parquet page), read in place, never copied whole."""

    def __init__(self, data: memoryview, deadline: float, seconds: float) -> None:
        super().__init__()
        self.view, self.pos, self.deadline, self.seconds = data.cast("B"), 0, deadline, seconds

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = max(0, offset + (0, self.pos, len(self.view))[whence])
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, size: int | None = -1) -> bytes:
        if time.monotonic() > self.deadline:
            raise ImageError("decode_timeout", f"image decode exceeded its time limit ({self.seconds:g} s)")
        end = len(self.view) if size is None or size < 0 else min(len(self.view), self.pos + size)
        out = bytes(self.view[self.pos : end])
        self.pos = max(self.pos, end)
        return out


def _count_sos(data: bytes | memoryview) -> int:
    """SOS markers in ``data``; a view is searched in 1 MiB blocks (one byte of overlap), not copied whole."""
    if isinstance(data, bytes):
        return data.count(_SOS)
    block = 1 << 20
    return sum(bytes(data[i : i + block + 1]).count(_SOS) for i in range(0, len(data), block))


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


def resolve_image_path(ref: str, root: Path | str, store: ObjectStoreOptions | None = None) -> Path | str:
    """Resolve ``ref`` inside ``root`` or raise ImageError. Never fetches a URL.

    ``root`` should already be resolved (``Path.resolve()``); callers resolving
    many references do that once. An ``s3://`` root resolves by key text
    (``storage.fs.resolve_under``: what that check can and cannot see) and one
    existence check against the object store; the result is the object's URI.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise ImageError("bad_image_ref", f"image reference must be a non-empty string, got {ref!r}")
    if "\x00" in ref:
        raise ImageError("bad_image_ref", "image reference contains a NUL byte")
    if _URL_RE.match(ref) and not re.match(r"^[A-Za-z]:[\\/]", ref):
        raise ImageError("url_refused", f"image reference {ref!r} is a URL; URLs are never fetched")
    if is_uri(root):
        return _resolve_object(ref, str(root), store)
    base = str(root)
    absolute = os.path.isabs(ref)
    target = os.path.realpath(ref if absolute else os.path.join(base, ref))  # follows symlinks
    if target != base and not target.startswith(base.rstrip(os.sep) + os.sep):
        where = "is outside" if absolute else "escapes"
        raise ImageError("path_outside_root", f"image path {ref!r} {where} the image root {root}")
    if not os.path.isfile(target):
        raise ImageError("image_not_found", f"image file {ref!r} not found under {root}")
    return Path(target)


def _resolve_object(ref: str, root: str, store: ObjectStoreOptions | None) -> str:
    target, why = resolve_under(ref, root)
    if target is None:
        raise ImageError("path_outside_root", f"image path {ref!r} {why} the image root {root}")
    if not fs_is_file(target, store):
        raise ImageError("image_not_found", f"image file {ref!r} not found under {root}")
    return target


def read_image_bytes(path: Path | str, max_bytes: int, store: ObjectStoreOptions | None = None) -> bytes:
    """Read an image file (or ``s3://`` object), refusing files over ``max_bytes``."""
    size, name = fs_size(path, store), fs_name(path)
    if size > max_bytes:
        raise ImageError("image_too_large", f"image file {name} is {size} bytes (max {max_bytes})")
    if size == 0:
        raise ImageError("not_an_image", f"image file {name} is empty")
    return fs_read_bytes(path, store)


def open_checked(data: bytes | memoryview, max_pixels: int, budget: DecodeBudget | None = None) -> Image.Image:
    """Open image bytes lazily after checking format, pixel count and scan count from the header.

    The returned image reads its data through a deadline (``budget``; defaults apply).
    """
    if not data:
        raise ImageError("not_an_image", "image is empty (0 bytes)")
    budget = budget or DecodeBudget()
    if bytes(data[:2]) == b"\xff\xd8" and (scans := _count_sos(data)) > budget.max_jpeg_scans:
        raise ImageError(
            "too_many_scans", f"JPEG has {scans} scans (max {budget.max_jpeg_scans}); refused before decoding"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            view = isinstance(data, memoryview)
            reader = (_DeadlineView if view else _DeadlineReader)(data, budget.deadline(), budget.image_seconds)
            img = Image.open(reader, formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError("too_many_pixels", f"image refused before decoding: {e}") from None
    except ImageError:
        raise
    except Exception as e:  # PIL raises UnidentifiedImageError, SyntaxError, struct.error, ...
        raise ImageError("not_an_image", f"not a readable image: {stable_error(e)}") from None
    if isinstance(img, ImageFile.ImageFile):
        img.decodermaxblock = _READ_BLOCK  # the deadline is checked between reads
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
        raise ImageError("decode_error", f"image does not decode: {stable_error(e)}") from None


def check_image(data: bytes | memoryview, max_pixels: int, budget: DecodeBudget | None = None) -> ImageInfo:
    """Decode ``data`` fully (the check, under ``budget``) and return its header facts."""
    img = open_checked(data, max_pixels, budget)
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


def gray_for_signals(
    data: bytes | memoryview, max_pixels: int, max_side: int, budget: DecodeBudget | None = None
) -> tuple[ImageInfo, Image.Image]:
    """The decode every image signal shares: 8-bit luma, longer side below ``2 · max_side``.

    Policy (documented so values are reproducible): JPEGs are decoded at the
    smallest DCT scale whose result is still at least ``max_side`` on both sides
    (``Image.draft``), luma only; an image whose longer side L is still at
    least ``2 · max_side`` is then box-reduced by the integer factor
    ⌊L / max_side⌋ (one cheap pass, no resampling), keeping aspect ratio.
    Decoding here is also the integrity check: all compressed data is read.
    Returns header facts (original size) and the luma image (mode 'L').
    """
    img = open_checked(data, max_pixels, budget)
    info = ImageInfo(img.width, img.height, img.format or "UNKNOWN")
    if img.format in ("JPEG", "MPO") and img.mode in ("RGB", "L", "YCbCr"):
        img.draft("L", (max_side, max_side))
    _load(img)
    factor = max(img.size) // max_side
    gray = to_gray(img)  # luma first: reducing one 8-bit channel is cheaper than RGB(X)
    return info, gray.reduce(factor) if factor >= 2 else gray
