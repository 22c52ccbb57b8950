"""Hostile inputs for ingestion tests: each builder writes one file and returns its path.

``path`` may be a file path or an existing folder (a default file name is used
inside it). Nothing here allocates a full-size image: the PNG bomb is written
chunk by chunk from compressed rows of zeros.
"""

from __future__ import annotations

import io
import struct
import tarfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOT_AN_IMAGE = (
    b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>\n"
    b"<body><h1>Forbidden</h1><p>You don't have permission to access this resource.</p></body></html>\n"
)


def _target(path: Path | str, default_name: str) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / default_name
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _gradient(width: int = 320, height: int = 240) -> np.ndarray:
    """A smooth RGB test pattern (uint8, [H, W, 3])."""
    y, x = np.mgrid[0:height, 0:width]
    r = (255 * x / max(1, width - 1)).astype(np.uint8)
    g = (255 * y / max(1, height - 1)).astype(np.uint8)
    b = ((x // 16 + y // 16) % 2 * 160 + 40).astype(np.uint8)
    return np.stack([r, g, b], axis=-1)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png_bomb(path: Path | str, width: int = 40000, height: int = 40000, bit_depth: int = 1) -> Path:
    """A valid grayscale PNG declaring ``width`` × ``height`` pixels, all black, a few hundred KB on disk.

    Rows (filter byte 0 + zero bits) are fed to zlib in batches of about 4 MB and each
    compressed piece goes out as an IDAT chunk, so memory stays small. ``bit_depth`` 1 or 8.
    """
    if bit_depth not in (1, 8):
        raise ValueError("bit_depth must be 1 or 8")
    p = _target(path, "bomb.png")
    row = bytes(1 + (width * bit_depth + 7) // 8)
    rows_per_batch = max(1, (4 << 20) // len(row))
    batch = row * rows_per_batch
    comp = zlib.compressobj(6)
    with open(p, "wb") as f:
        f.write(PNG_SIGNATURE)
        f.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)))
        done = 0
        while done < height:
            n = min(rows_per_batch, height - done)
            out = comp.compress(batch if n == rows_per_batch else row * n)
            if out:
                f.write(_png_chunk(b"IDAT", out))
            done += n
        f.write(_png_chunk(b"IDAT", comp.flush()))
        f.write(_png_chunk(b"IEND", b""))
    return p


def jpeg_bytes(width: int = 320, height: int = 240, quality: int = 90) -> bytes:
    """A small valid JPEG of a test pattern."""
    buf = io.BytesIO()
    Image.fromarray(_gradient(width, height)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def truncated_jpeg_bytes(data: bytes | None = None, keep: float = 0.4) -> bytes:
    """The first ``keep`` share of a JPEG: the header parses, decoding fails ("image file is truncated")."""
    data = data if data is not None else jpeg_bytes()
    return data[: max(64, int(len(data) * keep))]


def write_truncated_jpeg(path: Path | str, keep: float = 0.4) -> Path:
    """A JPEG cut short: ``Image.open`` succeeds, ``.load()`` raises ``OSError``."""
    p = _target(path, "truncated.jpg")
    p.write_bytes(truncated_jpeg_bytes(keep=keep))
    return p


def write_not_an_image(path: Path | str) -> Path:
    """An HTML error page saved under a ``.jpg`` name (what failed downloads look like)."""
    p = _target(path, "not_an_image.jpg")
    p.write_bytes(NOT_AN_IMAGE)
    return p


def _save(im: Image.Image, path: Path | str, name: str, **params: Any) -> Path:
    p = _target(path, name)
    im.save(p, **params)
    return p


def write_cmyk_jpeg(path: Path | str) -> Path:
    """A CMYK JPEG (print workflows; needs conversion before RGB models)."""
    return _save(Image.fromarray(_gradient()).convert("CMYK"), path, "cmyk.jpg", quality=90)


def write_16bit_png(path: Path | str) -> Path:
    """A 16-bit grayscale PNG (mode ``I;16``) with a full 0..65535 horizontal gradient."""
    ramp = np.linspace(0, 65535, 320, dtype=np.uint16)
    arr = np.tile(ramp, (240, 1))  # [H, W] uint16
    return _save(Image.fromarray(arr), path, "gray16.png")


def write_palette_png(path: Path | str, transparency: bool = False) -> Path:
    """A palette (mode ``P``) PNG; with ``transparency`` a tRNS entry makes colour 0 transparent."""
    im = Image.fromarray(_gradient()).quantize(colors=16)
    if transparency:
        return _save(im, path, "palette_transparent.png", transparency=0)
    return _save(im, path, "palette.png")


def write_rgba_png(path: Path | str) -> Path:
    """An RGBA PNG whose alpha fades from opaque to fully transparent."""
    rgb = _gradient()
    alpha = np.tile(np.linspace(255, 0, rgb.shape[1], dtype=np.uint8), (rgb.shape[0], 1))
    return _save(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), path, "rgba.png")


def write_la_png(path: Path | str) -> Path:
    """A grayscale + alpha (mode ``LA``) PNG."""
    gray = _gradient()[..., 0]
    alpha = np.tile(np.linspace(0, 255, gray.shape[0], dtype=np.uint8)[:, None], (1, gray.shape[1]))
    return _save(Image.fromarray(np.dstack([gray, alpha]), "LA"), path, "la.png")


def write_gif_animated(path: Path | str, frames: int = 4) -> Path:
    """An animated GIF with ``frames`` distinct frames (ingestion should take the first or refuse)."""
    base = _gradient(160, 120)
    ims = [Image.fromarray(np.roll(base, 20 * i, axis=1)).convert("P") for i in range(frames)]
    p = _target(path, "animated.gif")
    ims[0].save(p, save_all=True, append_images=ims[1:], duration=100, loop=0)
    return p


def write_exif_rotated_jpeg(path: Path | str, orientation: int = 6) -> Path:
    """A landscape JPEG with an EXIF orientation tag (6: display rotated 90° clockwise)."""
    im = Image.fromarray(_gradient())
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(im, path, "exif_rotated.jpg", quality=90, exif=exif.tobytes())


def write_zero_byte_file(path: Path | str) -> Path:
    """An empty file with an image name."""
    p = _target(path, "empty.jpg")
    p.write_bytes(b"")
    return p


def bad_jsonl_lines(long_line_bytes: int = 1 << 20) -> dict[str, bytes]:
    """Named hostile JSON Lines lines (raw bytes, no newline)."""
    conv = b'"conversations": [{"from": "human", "value": "%s"}, {"from": "gpt", "value": "ok"}]'
    return {
        "invalid_json": b'{"id": "bad-json", "conversations": [{"from": "human", "value": "unterminated',
        "invalid_utf8": b'{"id": "bad-utf8", ' + conv % b"caf\xe9 cr\xe8me" + b"}",
        "json_array": b'[{"id": "in-array", ' + conv % b"hello" + b"}]",
        "json_scalar": b"42",
        "lone_surrogate": b'{"id": "surrogate", ' + conv % b"bad \\ud800 text" + b"}",
        "nul_escape": b'{"id": "nul-escape", ' + conv % b"a\\u0000b" + b"}",
        "nul_raw": b'{"id": "nul-raw", ' + conv % b"a\x00b" + b"}",
        "utf8_bom": b'\xef\xbb\xbf{"id": "bom", ' + conv % b"hello" + b"}",
        "long_line": b'{"id": "long", ' + conv % (b"a" * long_line_bytes) + b"}",
    }


def jsonl_with_broken_lines(
    path: Path | str, good_records: Sequence[Mapping[str, Any]], bad_lines: Mapping[str, bytes] | None = None
) -> list[str]:
    """Write good records interleaved with ``bad_lines`` (default :func:`bad_jsonl_lines`).

    Returns the kind of every line in file order (``"ok"`` for good records): line ``n``
    (1-based) is ``kinds[n - 1]``.
    """
    import json

    p = _target(path, "hostile.jsonl")
    bad = list((bad_lines if bad_lines is not None else bad_jsonl_lines()).items())
    goods = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in good_records]
    kinds: list[str] = []
    with open(p, "wb") as f:
        for i in range(max(len(goods), len(bad))):
            if i < len(goods):
                f.write(goods[i] + b"\n")
                kinds.append("ok")
            if i < len(bad):
                f.write(bad[i][1] + b"\n")
                kinds.append(bad[i][0])
    return kinds


@dataclass(frozen=True)
class TarMember:
    """One tar member; ``declared_size`` writes a header with that size and ends the archive there."""

    name: str
    data: bytes = b""
    kind: str = "file"  # file | dir | symlink | hardlink
    linkname: str = ""
    declared_size: int | None = None


_TAR_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}


def sample_members(key: str, image: bytes, caption: str, meta: Mapping[str, Any] | None = None) -> list[TarMember]:
    """A well-formed img2dataset sample: ``<key>.jpg``, ``<key>.txt`` and ``<key>.json``."""
    import json

    info = {"key": key, "caption": caption, "status": "success", **(meta or {})}
    return [
        TarMember(f"{key}.jpg", image),
        TarMember(f"{key}.txt", caption.encode("utf-8")),
        TarMember(f"{key}.json", json.dumps(info).encode("utf-8")),
    ]


def hostile_tar_members(image: bytes, huge_size: int = 1 << 34) -> dict[str, list[TarMember]]:
    """Named hostile samples; keep ``huge_declared_size`` last (the archive ends inside it).

    Beware: Python's streaming tar reader (``mode="r|*"``) skips a member by reading
    ``size / 10 KiB`` blocks even past the end of the file: 16 GiB declared costs about
    4 s, and the time grows linearly with ``huge_size``. Seekable mode returns at once.
    """
    return {
        "path_traversal": [TarMember("../000000101.jpg", image), TarMember("../000000101.txt", b"escape")],
        "absolute_name": [TarMember("/tmp/000000102.jpg", image), TarMember("/tmp/000000102.txt", b"abs")],
        "symlink": [
            TarMember("000000103.jpg", kind="symlink", linkname="/etc/passwd"),
            TarMember("000000103.txt", b"a link"),
        ],
        "hardlink": [
            TarMember("000000104.jpg", kind="hardlink", linkname="000000000.jpg"),
            TarMember("000000104.txt", b"a hard link"),
        ],
        "image_without_text": [TarMember("000000105.jpg", image)],
        "text_without_image": [TarMember("000000106.txt", b"a caption with no image")],
        "invalid_utf8_caption": [TarMember("000000107.jpg", image), TarMember("000000107.txt", b"caf\xe9")],
        "json_not_object": [
            TarMember("000000108.jpg", image),
            TarMember("000000108.txt", b"ok"),
            TarMember("000000108.json", b"[1, 2]"),
        ],
        "huge_declared_size": [TarMember("000000109.jpg", image[:512], declared_size=huge_size)],
    }


def write_webdataset_tar(path: Path | str, members: Iterable[TarMember]) -> Path:
    """A tar written member by member, exactly as given (unsafe names and links included)."""
    p = _target(path, "00000.tar")
    with open(p, "wb") as f:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type, info.linkname, info.mtime, info.mode = _TAR_TYPES[m.kind], m.linkname, 1_700_000_000, 0o644
            info.size = len(m.data) if m.kind == "file" else 0
            if m.declared_size is not None:
                info.size = m.declared_size
                f.write(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape") + m.data)
                return p  # truncated archive: the declared size is never delivered
            f.write(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"))
            if info.size:
                f.write(m.data + bytes(-len(m.data) % tarfile.BLOCKSIZE))
        f.write(bytes(2 * tarfile.BLOCKSIZE))
    return p


# -- inputs built to exhaust time or memory -----------------------------------------------------


def deeply_nested_json(depth: int = 1000, key: str = "deep") -> bytes:
    """A JSON object whose ``meta`` field nests ``depth`` arrays (``RecursionError`` in ``json``)."""
    conv = b'[{"from": "human", "value": "hi"}, {"from": "gpt", "value": "ok"}]'
    return b'{"id": "%s", "conversations": %s, "meta": %s%s}' % (key.encode(), conv, b"[" * depth, b"]" * depth)


def jpeg_scan_bomb_bytes(scans: int = 100_000, side: int = 512) -> bytes:
    """A progressive JPEG followed by ``scans`` empty scans (10 bytes each): valid to the decoder,
    which walks every block of the image once per scan (about 12 s per 100,000 scans at 512²)."""
    buf = io.BytesIO()
    Image.fromarray(_gradient(side, side)).save(buf, format="JPEG", progressive=True, quality=80)
    data = buf.getvalue()
    i = data.rfind(b"\xff\xda")  # the last real scan header: its tables are defined, reuse it
    sos = data[i : i + 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]]
    return data[:-2] + sos * scans + b"\xff\xd9"


def write_jpeg_scan_bomb(path: Path | str, scans: int = 100_000, side: int = 512) -> Path:
    """See :func:`jpeg_scan_bomb_bytes`."""
    p = _target(path, "scan_bomb.jpg")
    p.write_bytes(jpeg_scan_bomb_bytes(scans, side))
    return p


def write_json_array_with_huge_element(
    path: Path | str, good_records: Sequence[Mapping[str, Any]], element_bytes: int, at: int = 1
) -> Path:
    """A LLaVA JSON array with one ``element_bytes``-long string element at index ``at``,
    written in 1 MiB pieces (the builder never holds the element)."""
    import json

    p = _target(path, "huge_element.json")
    goods = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in good_records]
    with open(p, "wb") as f:
        f.write(b"[")
        for i, g in enumerate(goods[:at] + [None] + goods[at:]):
            f.write(b"," if i else b"")
            if g is not None:
                f.write(g)
                continue
            f.write(b'{"id": "huge", "blob": "')
            left = element_bytes
            while left > 0:
                n = min(left, 1 << 20)
                f.write(b"a" * n)
                left -= n
            f.write(b'"}')
        f.write(b"]")
    return p


def write_parquet_with_blob(
    path: Path | str,
    records: Sequence[Mapping[str, Any]],
    blob_bytes: int,
    column: str = "extra",
    row: int = 0,
    row_group_size: int | None = None,
    page_per_value: bool = False,
) -> Path:
    """A Parquet dataset whose row ``row`` carries a ``blob_bytes`` blob: in ``column`` (binary), or,
    with ``column="image"``, as the embedded image bytes of that row. Other rows get a small JPEG.
    One row group unless ``row_group_size`` is given; pyarrow's default pages (dictionary encoded),
    or with ``page_per_value`` no dictionary and one value per data page."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    p = _target(path, "blob.parquet")
    small = jpeg_bytes(32, 24)
    blob = bytes(blob_bytes)
    images = [
        {"bytes": blob if (column == "image" and i == row) else small, "path": f"{i}.jpg"} for i in range(len(records))
    ]
    extra = [blob if (column != "image" and i == row) else b"" for i in range(len(records))]
    table = pa.table(
        {
            "id": [str(r["id"]) for r in records],
            "conversations": [json.dumps(r["conversations"]) for r in records],
            "image": pa.array(images, pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            (column if column != "image" else "extra"): pa.array(extra, pa.binary()),
        }
    )
    pages = {"use_dictionary": False, "data_page_size": 1, "write_batch_size": 1} if page_per_value else {}
    pq.write_table(table, p, row_group_size=row_group_size or max(1, len(records)), **pages)
    return p


def write_non_utf8_name(folder: Path | str, suffix: str = ".jsonl", content: bytes = b"") -> Path:
    """A file whose name holds the byte 0xFF (not valid UTF-8; ``os.fsdecode`` gives a surrogate)."""
    import os

    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    raw = os.fsencode(d) + b"/bad-\xff-name" + suffix.encode()
    with open(raw, "wb") as f:
        f.write(content)
    return Path(os.fsdecode(raw))
