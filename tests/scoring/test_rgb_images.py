"""Model-backed image signals decode each image when its row is reached, inside its own decode deadline."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

import magicvl.storage.images as images_mod
from magicvl.scoring.batch import SampleBatch
from magicvl.scoring.signals.base import map_rgb_images, rgb_images


class _Clock:
    """A monotonic clock the test advances (the slow model work between rows)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def _jpeg(seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")  # RGB: to_rgb would hand it back unconverted (lazy)
    return buf.getvalue()


def test_slow_work_on_earlier_rows_does_not_time_out_later_decodes(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(images_mod, "time", clock)
    data = [_jpeg(k) for k in range(4)]
    batch = SampleBatch([f"s{k}" for k in range(5)], [[]] * 5, data[:2] + [None] + data[2:], 10**8)

    def slow_model(img: Image.Image) -> dict[str, float]:
        clock.now += 11.0  # longer than the 10 s decode deadline, per image
        return {"mean": float(np.asarray(img).mean()), "width": float(img.width)}

    out = map_rgb_images(batch, slow_model, ("mean", "width"))
    assert "error" not in out
    want = [np.asarray(Image.open(io.BytesIO(d)).convert("RGB")).mean() for d in data]
    assert np.allclose(out["mean"][[0, 1, 3, 4]], want) and np.isnan(out["mean"][2])
    assert list(out["width"][[0, 1, 3, 4]]) == [96.0] * 4


def test_rows_come_one_at_a_time_with_errors_in_place():
    batch = SampleBatch(["a", "b", "c"], [[]] * 3, [_jpeg(0), b"not an image", None], 10**8)
    rows = rgb_images(batch)
    first = next(rows)
    assert isinstance(first, Image.Image) and first.mode == "RGB" and first.size == (96, 64)
    rest = list(rows)
    assert isinstance(rest[0], images_mod.ImageError) and rest[1] is None
