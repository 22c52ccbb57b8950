"""Low-quality records planted for the whole-DAG demo, so its quality step drops something real.

``write_flagged(root)`` writes ``root/flagged.jsonl`` + ``root/images/`` (dataset ``flagged`` of
``flows/recipes/demo-full.yaml``): a few good VQA records and one record per quality rule the demo
shows dropped, each with the rule it must trip (``EXPECTED``): repetitive response, abnormal
characters, synthetic phrasing, empty response, an exact duplicate (same text, same image bytes) and a
near duplicate (same text, the image re-encoded with a one-level brightness shift).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

_Q = "<image>\nWhat is in the picture?"
GOOD = (
    "A red square on a grey background, slightly left of the centre.",
    "Two overlapping circles, one blue and one green, near the top edge.",
    "A diagonal stripe pattern in yellow and black across the whole frame.",
)
REPETITIVE = " ".join(["The picture shows a square."] * 40)
ABNORMAL = "CafÃ© Ã©tÃ© â€™ seÃ±or Ã¼ber naÃ¯ve rÃ©sumÃ© dÃ©jÃ  vu"  # mojibake (UTF-8 read as Latin-1)
SYNTHETIC = "As an AI language model, I cannot see images, but the picture may show a square."
EXPECTED = {  # record id → the quality rule that drops it
    "repetitive": "filter:repetition",
    "abnormal": "filter:abnormal_chars",
    "synthetic": "filter:synthetic_keywords",
    "empty": "filter:empty_response",
    "exact-copy": "dedup:exact",
    "near-copy": "dedup:near_image",
}


def _image(seed: int, shift: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    px = rng.integers(0, 200, (48, 64, 3), dtype=np.uint8)  # [H, W, 3]
    px[8:30, 10:40] = (200, 30, 30)
    buf = io.BytesIO()
    Image.fromarray(np.clip(px.astype(np.int16) + shift, 0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def write_flagged(root: Path | str) -> Path:
    """The ``flagged`` dataset (3 good + 6 planted records); returns the JSONL path."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images = {f"good-{i}.png": _image(i) for i in range(3)}
    images |= {f"bad-{i}.png": _image(10 + i) for i in range(4)}
    images["near-copy.png"] = _image(0, shift=1)  # good-0 re-encoded one level brighter
    for name, data in images.items():
        (root / "images" / name).write_bytes(data)

    def rec(rid: str, img: str, answer: str) -> dict:
        turns = [{"from": "human", "value": _Q}, {"from": "gpt", "value": answer}]
        return {"id": rid, "image": img, "category": "vqa", "conversations": turns}

    records = [rec(f"good-{i}", f"good-{i}.png", a) for i, a in enumerate(GOOD)]
    records += [
        rec("repetitive", "bad-0.png", REPETITIVE),
        rec("abnormal", "bad-1.png", ABNORMAL),
        rec("synthetic", "bad-2.png", SYNTHETIC),
        rec("empty", "bad-3.png", ""),
        rec("exact-copy", "good-1.png", GOOD[1]),
        rec("near-copy", "near-copy.png", GOOD[0]),
    ]
    path = root / "flagged.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path
