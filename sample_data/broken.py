"""The broken records planted in the sample set, so the demo shows quarantine at work.

Each ``plant_*`` function returns the planted entries with a kind and a detail;
:func:`spread` mixes them into the good entries at evenly spaced positions.
13 records in all: 8 in ``instruct``, 3 in ``docs``, 1 in ``charts``, 1 in ``captions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from magicvl.sample_data.hostile import NOT_AN_IMAGE, truncated_jpeg_bytes

T = TypeVar("T")
_ASK = [{"from": "human", "value": "<image>\nWhat is shown in this image?"}, {"from": "gpt", "value": "A photograph."}]


@dataclass(frozen=True)
class Planted(Generic[T]):
    """One broken entry before it is placed."""

    entry: T
    kind: str
    detail: str


def spread(goods: Sequence[T], planted: Sequence[Planted[T]]) -> tuple[list[T], list[int]]:
    """Insert ``planted`` at evenly spaced positions (never first); the mixed list and their positions."""
    n = len(goods) + len(planted)
    positions = [max(1, (j + 1) * n // (len(planted) + 1)) for j in range(len(planted))]
    for j in range(1, len(positions)):  # strictly increasing even for tiny lists
        positions[j] = max(positions[j], positions[j - 1] + 1)
    out: list[T] = []
    good_iter, plant_iter = iter(goods), iter(planted)
    pos_set = set(positions)
    for i in range(n):
        out.append(next(plant_iter).entry if i in pos_set else next(good_iter))
    return out, positions


def plant_instruct(first_id: str, image_root: Path, photo_jpeg: bytes, doc_rel: str) -> list[Planted[dict]]:
    """Eight broken LLaVA records; writes the two broken image files under ``image_root/broken``."""
    broken_dir = image_root / "broken"
    broken_dir.mkdir(parents=True, exist_ok=True)
    (broken_dir / "truncated_0001.jpg").write_bytes(truncated_jpeg_bytes(photo_jpeg, keep=0.4))
    (broken_dir / "download_0002.jpg").write_bytes(NOT_AN_IMAGE)

    def rec(rid: str, **fields: Any) -> dict:
        return {"id": rid, **fields}

    escape = f"../../docs/images/{doc_rel}"
    return [
        Planted(
            rec("broken-escape", image=escape, conversations=_ASK, category="ocr"),
            "path_escapes_root",
            f"image path {escape!r} resolves outside the image root (to a real image)",
        ),
        Planted(
            rec("broken-absolute", image="/etc/hostname", conversations=_ASK, category="vqa"),
            "absolute_path_outside_root",
            "image is the absolute path /etc/hostname",
        ),
        Planted(
            rec("broken-url", image="http://example.invalid/images/cat_0423.jpg", conversations=_ASK, category="vqa"),
            "url_image_path",
            "image is an http:// URL, not a path",
        ),
        Planted(
            rec("broken-no-conversations", image="vqa/vqa_0000.jpg", category="vqa"),
            "missing_conversations",
            "record has no 'conversations' field",
        ),
        Planted(
            rec(
                "broken-conversations-string",
                conversations="<image>\nWhat is this? A cat.",
                category="vqa",
                image="vqa/vqa_0000.jpg",
            ),
            "conversations_not_a_list",
            "'conversations' is a string",
        ),
        Planted(
            rec(
                first_id,
                conversations=[{"from": "human", "value": "Say hello."}, {"from": "gpt", "value": "Hello!"}],
                category="text_only",
            ),
            "duplicate_id",
            f"id {first_id!r} repeats the first record's id with other content",
        ),
        Planted(
            rec("broken-html-as-jpg", image="broken/download_0002.jpg", conversations=_ASK, category="vqa"),
            "not_an_image",
            "broken/download_0002.jpg is an HTML error page",
        ),
        Planted(
            rec("broken-truncated", image="broken/truncated_0001.jpg", conversations=_ASK, category="vqa"),
            "truncated_jpeg",
            "broken/truncated_0001.jpg keeps only the first 40% of a JPEG",
        ),
    ]


def plant_docs() -> list[Planted[bytes]]:
    """Three broken JSON Lines lines (raw bytes)."""
    conv = b'"conversations": [{"from": "human", "value": "<image>\\nRead the text."}, {"from": "gpt", "value": "%s"}]'
    return [
        Planted(
            b'{"id": "doc-broken-json", "image": "doc_0000.png", "conversations": [{"from": "human", "val',
            "invalid_json",
            "line cut off in the middle of an object",
        ),
        Planted(
            b'{"id": "doc-latin1", "image": "doc_0000.png", '
            + conv % b"R\xe9sum\xe9 \xa3120"
            + b', "category": "ocr"}',
            "invalid_utf8",
            "text encoded as Latin-1, not UTF-8",
        ),
        Planted(
            b'{"id": "doc-missing-image", "image": "doc_missing_0999.png", '
            + conv % b"Invoice"
            + b', "category": "ocr"}',
            "missing_image_file",
            "doc_missing_0999.png does not exist",
        ),
    ]


def plant_charts() -> list[Planted[dict]]:
    """One Parquet row whose image bytes are an HTML page."""
    row = {
        "id": "chart-broken-bytes",
        "category": "chart",
        "image": {"bytes": NOT_AN_IMAGE, "path": "chart_9999.png"},
        "conversations": [
            {"from": "human", "value": "<image>\nWhich bar is tallest?"},
            {"from": "gpt", "value": "North"},
        ],
    }
    return [Planted(row, "not_an_image", "embedded image bytes are an HTML error page")]


def plant_captions(photo_jpeg: bytes, size: tuple[int, int]) -> list[Planted[tuple[bytes, str, dict]]]:
    """One WebDataset sample whose JPEG is cut short."""
    meta = {
        "url": "http://example.invalid/photos/truncated.jpg",
        "status": "success",
        "error_message": None,
        "width": size[0],
        "height": size[1],
        "original_width": size[0],
        "original_height": size[1],
    }
    sample = (truncated_jpeg_bytes(photo_jpeg, keep=0.4), "A photo that was cut off during download.", meta)
    return [Planted(sample, "truncated_jpeg", "the .jpg member keeps only the first 40% of a JPEG")]
