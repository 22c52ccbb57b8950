"""Small datasets built in tests (fast, deterministic)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

CATS = ["vqa", "ocr", "caption", "chart", "text_only", "gui", "grounding", "reasoning"]


def make_dataset(root: Path, n: int = 24, extra: list | None = None) -> Path:
    """``root/d.jsonl`` + ``root/images``: n good records (all categories) then ``extra`` raw lines."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        cat = CATS[i % len(CATS)]
        rec = {
            "id": f"r{i}",
            "category": cat,
            "conversations": [
                {"from": "human", "value": "what is shown " * (1 + i % 3)},
                {"from": "gpt", "value": " ".join(f"w{j % (i + 2)}" for j in range(4 + 3 * i))},
            ],
        }
        if cat != "text_only":
            arr = (rng.random((40 + i, 50, 3)) * 255 * ((i + 1) / n)).astype(np.uint8)
            name = f"{i}.jpg" if i % 2 else f"{i}.png"
            Image.fromarray(arr).save(root / "images" / name)
            rec["image"] = name
        lines.append(json.dumps(rec))
    lines += extra or []
    (root / "d.jsonl").write_text("\n".join(lines) + "\n")
    return root / "d.jsonl"


_TURNS = '[{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}]'
HOSTILE_LINES = [
    '{"id": "r3", "category": "vqa", "conversations": ' + _TURNS + "}",  # a duplicate id
    '{"id": "bad-type", "conversations": "oops"}',
    '{"id": "escape", "image": "../../etc/passwd", "conversations": ' + _TURNS + "}",
    '{"id": "url", "image": "http://example.com/x.jpg", "conversations": ' + _TURNS + "}",
    "{broken json",
]
