"""Token-level dynamic resolution: golden grids, the tile budget, extremes, tiles and masks."""

from __future__ import annotations

import math
import random

import pytest

from magicvl.model.resolution import (
    allocate_tiles,
    aspect_distortion,
    fit_grid,
    patch_mask,
    plan_image,
    plan_images,
    tile_boxes,
    tiles_for_grid,
    token_grid,
    tokens_1d,
)


def paper_tokens(x: int) -> int:
    """The paper's formula, written independently: max(1, floor(x / 32 + 0.5))."""
    return max(1, math.floor(x / 32 + 0.5))


@pytest.mark.parametrize(
    ("size", "grid"),
    [
        ((480, 640), (15, 20)),
        ((768, 1024), (24, 32)),
        ((1, 1), (1, 1)),
        ((15, 15), (1, 1)),  # below half a token: clamped to one token
        ((16, 48), (1, 2)),  # exactly half a token rounds up (floor(x + 0.5), not banker's rounding)
        ((80, 80), (3, 3)),  # 2.5 tokens -> 3 (Python's round would give 2)
        ((384, 384), (12, 12)),
        ((100, 2000), (3, 63)),  # 1:20
        ((2000, 100), (63, 3)),  # 20:1
    ],
)
def test_token_grid_golden(size, grid):
    assert token_grid(*size) == grid
    plan = plan_image(*size)
    assert (plan.rows, plan.cols) == grid and not plan.downscaled
    assert plan.resized == (grid[0] * 32, grid[1] * 32)


@pytest.mark.parametrize(
    ("size", "grid"),
    [
        ((3024, 4032), (48, 64)),  # 12 MP photo: full grid 95x126 needs 88 tiles
        ((10000, 1080), (144, 16)),  # long screenshot: 313x34 needs 81 tiles
        ((2200, 1700), (62, 48)),  # letter-size scan: 69x53 needs 30 tiles
    ],
)
def test_budget_downscale_golden(size, grid):
    plan = plan_image(*size, max_tiles=24)
    assert plan.downscaled
    assert (plan.rows, plan.cols) == grid
    assert plan.num_tiles == 24
    assert plan.num_tokens == grid[0] * grid[1]


def test_token_count_is_paper_formula_within_budget():
    rng = random.Random(0)
    for _ in range(2000):
        h, w = rng.randint(1, 1400), rng.randint(1, 1400)
        plan = plan_image(h, w)
        tr, tc = tiles_for_grid(paper_tokens(h), paper_tokens(w))
        if tr * tc <= 24:
            assert plan.num_tokens == paper_tokens(h) * paper_tokens(w)
            assert not plan.downscaled
        else:
            assert plan.downscaled and plan.num_tokens < paper_tokens(h) * paper_tokens(w)


def _check_half_token(plan, h: int, w: int) -> None:
    """Every side within half a token of one common scale (unless clamped to a single token)."""
    if plan.downscaled:
        long_px, long_tok = (h, plan.rows) if h >= w else (w, plan.cols)
        short_px, short_tok = (w, plan.cols) if h >= w else (h, plan.rows)
        exact_short = long_tok * short_px / long_px  # short side at the scale that makes the long side exact
        assert short_tok == 1 or abs(short_tok - exact_short) <= 0.5 + 1e-9
    else:
        for px, tok in ((h, plan.rows), (w, plan.cols)):
            assert tok == 1 and px < 16 or abs(tok * 32 - px) <= 16


def test_budget_invariants_random_sizes():
    rng = random.Random(1)
    sizes = [(rng.randint(1, 12000), rng.randint(1, 12000)) for _ in range(1500)]
    sizes += [(1, 1), (1, 20000), (20000, 1), (1080, 10000), (10000, 1080), (200, 4000), (4000, 200)]
    for h, w in sizes:
        for budget in (1, 6, 24):
            plan = plan_image(h, w, max_tiles=budget)
            assert plan.rows >= 1 and plan.cols >= 1
            assert plan.num_tiles <= budget
            _check_half_token(plan, h, w)
            if plan.downscaled:  # maximal: one more token on the long side would not fit
                n = max(plan.rows, plan.cols) + 1
                short_px, long_px = min(h, w), max(h, w)
                short = max(1, math.floor(n * short_px / long_px + 0.5))
                assert math.prod(tiles_for_grid(n, short)) > budget


@pytest.mark.parametrize("size", [(200, 4000), (4000, 200), (1000, 20000), (20000, 1000), (10000, 1080)])
def test_extreme_aspect_ratios_are_undistorted(size):
    h, w = size
    plan = plan_image(h, w)
    assert plan.num_tiles <= 24
    rh, rw = plan.resized
    assert rh % 32 == 0 and rw % 32 == 0
    # the short side is off by at most half a token at the chosen scale
    assert plan.distortion <= math.log(1 + 0.5 / min(plan.rows, plan.cols)) + 1e-9
    assert (rh > rw) == (h > w)


def test_one_pixel_image():
    plan = plan_image(1, 1)
    assert (plan.rows, plan.cols, plan.num_tiles, plan.resized) == (1, 1, 1, (32, 32))
    mask = patch_mask(plan)
    assert mask.shape == (1, 24, 24) and mask.sum() == 4 and mask[0, :2, :2].all()


def test_tiles_and_patch_mask_cover_exactly_the_content():
    plan = plan_image(480, 640)  # 15 x 20 tokens -> 2 x 2 tiles
    assert plan.tile_grid == (2, 2)
    assert tile_boxes(plan) == [(0, 0, 384, 384), (0, 384, 384, 256), (384, 0, 96, 384), (384, 384, 96, 256)]
    mask = patch_mask(plan)
    assert mask.shape == (4, 24, 24)
    assert [int(m.sum()) for m in mask] == [24 * 24, 24 * 16, 6 * 24, 6 * 16]
    assert mask.sum() == 4 * plan.num_tokens  # 2x2 patches per token
    assert mask[3, :6, :16].all() and not mask[3, 6:].any() and not mask[3, :, 16:].any()


def test_allocate_tiles_water_filling():
    assert allocate_tiles([81]) == [24]
    assert allocate_tiles([1, 81]) == [1, 23]  # the icon takes one tile, the screenshot the rest
    assert allocate_tiles([30, 30]) == [12, 12]
    assert allocate_tiles([5, 5, 5]) == [5, 5, 5]
    assert allocate_tiles([2, 30, 30, 1]) == [2, 10, 11, 1]
    assert allocate_tiles([3] * 30) == [1] * 30  # more images than tiles: one each
    rng = random.Random(2)
    for _ in range(300):
        demands = [rng.randint(1, 90) for _ in range(rng.randint(1, 24))]
        alloc = allocate_tiles(demands, 24)
        assert sum(alloc) <= 24 and all(1 <= a <= max(d, 1) for a, d in zip(alloc, demands))
        if sum(demands) <= 24:
            assert alloc == demands


def test_plan_images_shares_one_budget():
    plans = plan_images([(64, 64), (10000, 1080)], max_tiles=24)
    assert plans[0].num_tokens == 4 and plans[0].num_tiles == 1
    assert plans[1].num_tiles <= 23 and plans[1].downscaled
    assert sum(p.num_tiles for p in plans) <= 24
    two_photos = plan_images([(3024, 4032), (3024, 4032)])
    assert [p.num_tiles for p in two_photos] == [12, 12]
    assert plan_images([]) == []


def test_aspect_distortion_and_errors():
    assert aspect_distortion(100, 200, 50, 100) == 0.0
    assert aspect_distortion(100, 100, 100, 200) == pytest.approx(math.log(2))
    assert tokens_1d(48) == 2
    with pytest.raises(ValueError, match=">= 1 px"):
        tokens_1d(0)
    with pytest.raises(ValueError, match="max_tiles"):
        fit_grid(100, 100, max_tiles=0)
