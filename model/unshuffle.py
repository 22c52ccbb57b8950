"""Token grids: pixel unshuffle (4 neighbouring patches -> 1 token) and tile -> image reassembly.

Tile layout (see ``model.resolution``): an image of ``rows x cols`` tokens is
cut into ``ceil(rows/12) x ceil(cols/12)`` tiles in raster order, content at
each tile's top-left, padding at the bottom/right of edge tiles. ``merge_tiles``
puts the tiles' 12x12 token grids back on one canvas, crops the padding and
flattens in the *image's* raster order, so the LLM sees exactly
``rows * cols`` tokens laid out like the image, not like the tiles.
"""

from __future__ import annotations

import torch


def pixel_unshuffle(x: torch.Tensor, ratio: int = 2) -> torch.Tensor:
    """``[N, H, W, D]`` -> ``[N, H/r, W/r, r*r*D]``; channels ordered (dy, dx, D) in raster order."""
    n, h, w, d = x.shape
    if h % ratio or w % ratio:
        raise ValueError(f"grid {h}x{w} is not divisible by the unshuffle ratio {ratio}")
    x = x.reshape(n, h // ratio, ratio, w // ratio, ratio, d)  # [N, H/r, dy, W/r, dx, D]
    x = x.permute(0, 1, 3, 2, 4, 5)  # [N, H/r, W/r, dy, dx, D]
    return x.reshape(n, h // ratio, w // ratio, ratio * ratio * d)  # [N, H/r, W/r, r*r*D]


def tiles_per_image(image_grid: torch.Tensor, tokens_per_side: int) -> torch.Tensor:
    """``[I, 2]`` token grids -> ``[I]`` tile counts ``ceil(rows/t) * ceil(cols/t)``."""
    tiles = (image_grid + tokens_per_side - 1) // tokens_per_side  # [I, 2]
    return tiles[:, 0] * tiles[:, 1]  # [I]


def check_tile_index(tile_image_index: torch.Tensor, image_grid: torch.Tensor, tokens_per_side: int) -> None:
    """Tiles must be grouped by image, images in order, with exactly the planned count each."""
    counts = tiles_per_image(image_grid, tokens_per_side).to(tile_image_index.device)
    expected = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    if tile_image_index.shape != expected.shape or not torch.equal(tile_image_index.long(), expected):
        raise ValueError(
            "tile_image_index does not match image_grid: tiles must be consecutive per image, in image "
            f"order, with ceil(rows/{tokens_per_side})*ceil(cols/{tokens_per_side}) tiles each"
        )


def merge_tiles(
    tile_tokens: torch.Tensor, image_grid: torch.Tensor, tile_image_index: torch.Tensor | None = None
) -> torch.Tensor:
    """Tile token grids ``[N, t, t, C]`` -> real tokens of all images ``[sum(rows*cols), C]``.

    ``image_grid`` is ``[I, 2]`` (rows, cols) per image; tiles of image ``i`` are
    consecutive and in raster order. Padded tokens are dropped here.
    """
    n, t, t2, c = tile_tokens.shape
    if t != t2:
        raise ValueError(f"tile token grids must be square, got {t}x{t2}")
    if tile_image_index is not None:
        check_tile_index(tile_image_index, image_grid, t)
    counts = tiles_per_image(image_grid, t).tolist()
    if sum(counts) != n:
        raise ValueError(f"image_grid needs {sum(counts)} tiles but {n} were given")
    out, start = [], 0
    for (rows, cols), count in zip(image_grid.tolist(), counts):
        tr, tc = -(-rows // t), -(-cols // t)
        tiles = tile_tokens[start : start + count].reshape(tr, tc, t, t, c)  # [tr, tc, t, t, C]
        canvas = tiles.permute(0, 2, 1, 3, 4).reshape(tr * t, tc * t, c)  # [tr*t, tc*t, C]
        out.append(canvas[:rows, :cols].reshape(rows * cols, c))  # [rows*cols, C]
        start += count
    if not out:
        return tile_tokens.new_zeros(0, c)
    return torch.cat(out, dim=0)  # [M, C]
