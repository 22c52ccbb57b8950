"""Token-level dynamic resolution: the pure size math (no torch, no pixels).

MagicVL resizes each image side to the nearest multiple of one visual token's
pixel footprint (patch 16 x pixel-unshuffle 2 = 32 px), instead of to multiples
of the encoder's 384 px input like InternVL:

    H' = max(1, floor(H / 32 + 0.5)) * 32        W' likewise

so each side is off by at most half a token (16 px) and the aspect ratio is
kept. The resized image is cut into 384x384 tiles (12x12 tokens each), edge
tiles zero-padded; only the ``rows x cols`` real tokens reach the LLM.

Budget rule (single image). If the grid needs more than ``max_tiles`` tiles
(``ceil(rows/12) * ceil(cols/12)``), the image is downscaled with its aspect
ratio kept: the long side gets the largest token count ``n`` such that the grid
``(n, max(1, floor(n * short/long + 0.5)))`` fits in the budget. The long side
is then exact at scale ``s = 32 n / long`` and the short side is within half a
token of ``s * short``. Tile counts grow monotonically with ``n``, so a binary
search finds the largest that fits; ``n = 1`` always fits.

Budget rule (several images in one sample). The sample's ``max_tiles`` is split
by water-filling over each image's full-resolution demand: images are served
from the smallest demand up, each taking ``min(demand, remaining // images_left)``
(at least 1). Small images take only what they need and the rest flows to the
large ones. With more images than ``max_tiles`` every image gets one tile, so
the total is then ``len(images)`` (packing caps images per batch elsewhere).

Sizes are ``(height, width)`` everywhere in this module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PATCH_PX = 16
UNSHUFFLE = 2
TOKEN_PX = PATCH_PX * UNSHUFFLE  # 32 px of image per LLM token (per side)
TILE_PX = 384
MAX_TILES = 24


@dataclass(frozen=True)
class ImagePlan:
    """Where one image goes: its original size, its token grid and its tiles."""

    height: int
    width: int
    rows: int  # token rows after the budget rule
    cols: int  # token columns
    token_px: int = TOKEN_PX
    tile_px: int = TILE_PX
    downscaled: bool = False

    @property
    def resized(self) -> tuple[int, int]:
        """Pixel size the image is resized to: ``(rows * token_px, cols * token_px)``."""
        return self.rows * self.token_px, self.cols * self.token_px

    @property
    def tokens_per_tile(self) -> int:
        """Tokens along one side of a tile (12 for 384 / 32)."""
        return self.tile_px // self.token_px

    @property
    def tile_grid(self) -> tuple[int, int]:
        """Tiles down and across: ``(ceil(rows / 12), ceil(cols / 12))``."""
        return tiles_for_grid(self.rows, self.cols, self.tokens_per_tile)

    @property
    def num_tiles(self) -> int:
        tr, tc = self.tile_grid
        return tr * tc

    @property
    def num_tokens(self) -> int:
        return self.rows * self.cols

    @property
    def distortion(self) -> float:
        """Aspect-ratio change ``|log((W'/H') / (W/H))|`` (0 = undistorted)."""
        return aspect_distortion(self.height, self.width, *self.resized)


def tokens_1d(length: int, token_px: int = TOKEN_PX) -> int:
    """Tokens along one side: ``max(1, floor(length / token_px + 0.5))``, in exact integers."""
    if length < 1:
        raise ValueError(f"image side must be >= 1 px, got {length}")
    return max(1, (2 * length + token_px) // (2 * token_px))


def token_grid(height: int, width: int, token_px: int = TOKEN_PX) -> tuple[int, int]:
    """The paper's token-level resize, as a grid ``(rows, cols)`` with no tile budget."""
    return tokens_1d(height, token_px), tokens_1d(width, token_px)


def tiles_for_grid(rows: int, cols: int, tokens_per_tile: int = TILE_PX // TOKEN_PX) -> tuple[int, int]:
    """Tiles needed to cover a token grid: ``(ceil(rows / t), ceil(cols / t))``."""
    return -(-rows // tokens_per_tile), -(-cols // tokens_per_tile)


def fit_grid(
    height: int, width: int, max_tiles: int = MAX_TILES, token_px: int = TOKEN_PX, tile_px: int = TILE_PX
) -> tuple[int, int]:
    """Token grid ``(rows, cols)`` for one image under a tile budget (module docstring rule)."""
    if max_tiles < 1:
        raise ValueError(f"max_tiles must be >= 1, got {max_tiles}")
    per_tile = tile_px // token_px
    rows, cols = token_grid(height, width, token_px)
    tr, tc = tiles_for_grid(rows, cols, per_tile)
    if tr * tc <= max_tiles:
        return rows, cols
    long_px, short_px = max(height, width), min(height, width)

    def short_side(n: int) -> int:
        return max(1, (2 * n * short_px + long_px) // (2 * long_px))  # floor(n * short / long + 0.5)

    def fits(n: int) -> bool:
        tr, tc = tiles_for_grid(n, short_side(n), per_tile)
        return tr * tc <= max_tiles

    lo, hi = 1, min(max(rows, cols), max_tiles * per_tile)  # fits(1) always; tiles grow monotonically with n
    while lo < hi:  # the largest n that fits: the same answer as scanning down from hi
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return (lo, short_side(lo)) if height >= width else (short_side(lo), lo)


def plan_image(
    height: int, width: int, max_tiles: int = MAX_TILES, token_px: int = TOKEN_PX, tile_px: int = TILE_PX
) -> ImagePlan:
    """Plan one image: token grid after the budget rule, resized size and tiles."""
    if tile_px % token_px:
        raise ValueError(f"tile_px ({tile_px}) must be a multiple of token_px ({token_px})")
    rows, cols = fit_grid(height, width, max_tiles, token_px, tile_px)
    downscaled = (rows, cols) != token_grid(height, width, token_px)
    return ImagePlan(height, width, rows, cols, token_px, tile_px, downscaled)


def allocate_tiles(demands: Sequence[int], max_tiles: int = MAX_TILES) -> list[int]:
    """Split one sample's tile budget over its images by water-filling (module docstring)."""
    if max_tiles < 1:
        raise ValueError(f"max_tiles must be >= 1, got {max_tiles}")
    if any(d < 1 for d in demands):
        raise ValueError(f"tile demands must be >= 1, got {list(demands)}")
    alloc = [1] * len(demands)
    if len(demands) >= max_tiles:
        return alloc
    remaining = max_tiles
    order = sorted(range(len(demands)), key=lambda i: (demands[i], i))
    for k, i in enumerate(order):
        share = remaining // (len(order) - k)
        alloc[i] = max(1, min(demands[i], share))
        remaining -= alloc[i]
    return alloc


def plan_images(
    sizes: Sequence[tuple[int, int]],
    max_tiles: int = MAX_TILES,
    token_px: int = TOKEN_PX,
    tile_px: int = TILE_PX,
) -> list[ImagePlan]:
    """Plan all images of one sample under a shared tile budget (``sizes`` are ``(h, w)``)."""
    per_tile = tile_px // token_px
    demands = [math.prod(tiles_for_grid(*token_grid(h, w, token_px), per_tile)) for h, w in sizes]
    budgets = allocate_tiles(demands, max_tiles) if sizes else []
    return [plan_image(h, w, b, token_px, tile_px) for (h, w), b in zip(sizes, budgets)]


def tile_boxes(plan: ImagePlan) -> list[tuple[int, int, int, int]]:
    """Content box ``(top, left, height, width)`` in resized pixels of each tile, raster order."""
    rh, rw = plan.resized
    tr, tc = plan.tile_grid
    t = plan.tile_px
    return [(i * t, j * t, min(t, rh - i * t), min(t, rw - j * t)) for i in range(tr) for j in range(tc)]


def patch_mask(plan: ImagePlan, patch_px: int = PATCH_PX) -> np.ndarray:
    """Real-content patches of each tile: bool ``[num_tiles, g, g]`` with ``g = tile_px / patch_px``.

    Content sits at each tile's top-left; padding is only ever at the bottom/right
    of edge tiles, and boxes are multiples of ``token_px`` so no patch is half real.
    """
    g = plan.tile_px // patch_px
    mask = np.zeros((plan.num_tiles, g, g), dtype=bool)
    for k, (_, _, h, w) in enumerate(tile_boxes(plan)):
        mask[k, : h // patch_px, : w // patch_px] = True
    return mask


def aspect_distortion(height: int, width: int, new_height: int, new_width: int) -> float:
    """Relative aspect-ratio change ``|log((W'/H') / (W/H))|``."""
    return abs(math.log((new_width / new_height) / (width / height)))
