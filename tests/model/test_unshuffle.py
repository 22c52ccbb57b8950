"""Pixel unshuffle, tile -> image reassembly (raster order of the image) and the projector."""

from __future__ import annotations

import pytest
import torch

from magicvl.model.projector import Projector
from magicvl.model.tiny import tiny_magicvl_config
from magicvl.model.unshuffle import merge_tiles, pixel_unshuffle


def test_pixel_unshuffle_golden():
    x = torch.arange(16.0).reshape(1, 4, 4, 1)  # one channel, values = raster index
    y = pixel_unshuffle(x, 2)
    assert y.shape == (1, 2, 2, 4)
    assert y[0, 0, 0].tolist() == [0, 1, 4, 5]  # (dy, dx) = (0,0), (0,1), (1,0), (1,1)
    assert y[0, 0, 1].tolist() == [2, 3, 6, 7]
    assert y[0, 1, 0].tolist() == [8, 9, 12, 13]
    z = pixel_unshuffle(torch.randn(3, 24, 24, 5), 2)
    assert z.shape == (3, 12, 12, 20)
    with pytest.raises(ValueError, match="divisible"):
        pixel_unshuffle(torch.zeros(1, 3, 4, 1), 2)


def _split_into_tiles(grid: torch.Tensor, t: int) -> torch.Tensor:
    """An image token grid ``[R, C, D]`` -> padded tiles ``[n, t, t, D]`` (padding = NaN)."""
    r, c, d = grid.shape
    tr, tc = -(-r // t), -(-c // t)
    canvas = torch.full((tr * t, tc * t, d), float("nan"))
    canvas[:r, :c] = grid
    return canvas.reshape(tr, t, tc, t, d).permute(0, 2, 1, 3, 4).reshape(tr * tc, t, t, d)


def test_merge_tiles_restores_image_raster_order_and_drops_padding():
    a = torch.arange(15 * 20 * 2, dtype=torch.float32).reshape(15, 20, 2)  # 2x2 tiles of 12
    b = -torch.arange(5 * 30 * 2, dtype=torch.float32).reshape(5, 30, 2) - 1  # 1x3 tiles
    tiles = torch.cat([_split_into_tiles(a, 12), _split_into_tiles(b, 12)])  # [7, 12, 12, 2]
    grid = torch.tensor([[15, 20], [5, 30]])
    index = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    merged = merge_tiles(tiles, grid, index)
    assert merged.shape == (15 * 20 + 5 * 30, 2)
    assert not torch.isnan(merged).any()  # every padded token dropped
    assert torch.equal(merged[:300], a.reshape(300, 2))
    assert torch.equal(merged[300:], b.reshape(150, 2))


def test_merge_tiles_rejects_inconsistent_batches():
    tiles = torch.zeros(3, 12, 12, 4)
    grid = torch.tensor([[12, 24], [3, 3]])  # 2 tiles + 1 tile
    assert merge_tiles(tiles, grid, torch.tensor([0, 0, 1])).shape == (12 * 24 + 9, 4)
    with pytest.raises(ValueError, match="tile_image_index"):
        merge_tiles(tiles, grid, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="needs 2 tiles"):
        merge_tiles(tiles, torch.tensor([[12, 24]]))


def test_projector_maps_unshuffled_features_to_lm_width():
    cfg = tiny_magicvl_config(vocab_size=700, image_token_id=12)
    proj = Projector(cfg)
    assert cfg.mp_input_size == 4 * 32
    x = torch.randn(7, cfg.mp_input_size)
    y = proj(x)
    assert y.shape == (7, 64)
    linears = [m for m in proj.modules() if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(64, 128), (64, 64)]  # two layers
    torch.testing.assert_close(proj(x[2:3]), y[2:3])  # per-token: no mixing across tokens
