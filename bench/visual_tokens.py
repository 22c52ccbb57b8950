"""Visual tokens per image: MagicVL token-level resolution vs InternVL2.5 dynamic tiling.

Run: ``python -m bench.visual_tokens``. Pure size math, no model, no pixels.

MagicVL: ``model.resolution.plan_image`` (each side rounded to 32 px, at most
24 tiles of 384 with the documented downscale rule); tokens = rows * cols.

InternVL2.5: ``dynamic_preprocess`` from the InternVL repo, reproduced here:
448 px tiles, the grid (i cols x j rows) with ``min_num <= i*j <= max_num``
whose aspect ratio is closest to the image's (ties broken by area, exactly as
``find_closest_aspect_ratio``), plus a 448 thumbnail when there is more than
one tile; 256 tokens per tile (pixel shuffle 0.5 on 32x32 patches).

Distortion = ``|log((W'/H') / (W/H))|`` of the main view (InternVL's thumbnail
is always squashed to 1:1 and is not counted). Prints a table and totals; it
asserts nothing.
"""

from __future__ import annotations

import math

from magicvl.model.resolution import aspect_distortion, plan_image

INTERNVL_TILE = 448
INTERNVL_TOKENS_PER_TILE = 256

# (name, kind, width, height): a mixed set of what a phone VLM sees.
IMAGES: list[tuple[str, str, int, int]] = [
    ("VGA photo", "photo", 640, 480),
    ("XGA photo", "photo", 1024, 768),
    ("12MP photo", "photo", 4032, 3024),
    ("letter scan", "document", 1700, 2200),
    ("A4 @300dpi", "document", 2480, 3508),
    ("phone screen", "screenshot", 1080, 2400),
    ("long screenshot", "screenshot", 1080, 10000),
    ("icon 64", "icon", 64, 64),
    ("icon 32", "icon", 32, 32),
    ("1x1 pixel", "icon", 1, 1),
    ("chart", "chart", 800, 600),
    ("banner 20:1", "extreme", 2000, 100),
    ("strip 1:20", "extreme", 100, 2000),
]


def find_closest_aspect_ratio(
    aspect_ratio: float, target_ratios: list[tuple[int, int]], width: int, height: int, image_size: int
) -> tuple[int, int]:
    """InternVL's tie-breaking search, verbatim in behaviour (ratios are (cols, rows))."""
    best_ratio_diff = float("inf")
    best_ratio = (1, 1)
    area = width * height
    for ratio in target_ratios:
        target_aspect_ratio = ratio[0] / ratio[1]
        ratio_diff = abs(aspect_ratio - target_aspect_ratio)
        if ratio_diff < best_ratio_diff:
            best_ratio_diff = ratio_diff
            best_ratio = ratio
        elif ratio_diff == best_ratio_diff:  # noqa: SIM102 (kept as in InternVL)
            if area > 0.5 * image_size * image_size * ratio[0] * ratio[1]:
                best_ratio = ratio
    return best_ratio


def internvl_grid(width: int, height: int, max_num: int = 12, min_num: int = 1) -> tuple[int, int]:
    """``(cols, rows)`` of 448 tiles chosen by InternVL2.5's ``dynamic_preprocess``."""
    target_ratios = {
        (i, j)
        for n in range(min_num, max_num + 1)
        for i in range(1, n + 1)
        for j in range(1, n + 1)
        if min_num <= i * j <= max_num
    }
    ordered = sorted(target_ratios, key=lambda x: x[0] * x[1])
    return find_closest_aspect_ratio(width / height, ordered, width, height, INTERNVL_TILE)


def internvl_tiles(width: int, height: int, max_num: int = 12) -> int:
    """448 tiles the encoder sees: the grid plus a thumbnail when the grid has more than one tile."""
    cols, rows = internvl_grid(width, height, max_num)
    return cols * rows + (1 if cols * rows > 1 else 0)


def internvl_tokens(width: int, height: int, max_num: int = 12) -> int:
    return INTERNVL_TOKENS_PER_TILE * internvl_tiles(width, height, max_num)


def internvl_distortion(width: int, height: int, max_num: int = 12) -> float:
    cols, rows = internvl_grid(width, height, max_num)
    return aspect_distortion(height, width, rows * INTERNVL_TILE, cols * INTERNVL_TILE)


def rows_for_table() -> list[dict[str, object]]:
    """One dict per image with both methods' grids, tokens and distortion."""
    out = []
    for name, kind, w, h in IMAGES:
        plan = plan_image(h, w)
        c12, r12 = internvl_grid(w, h, 12)
        c6, r6 = internvl_grid(w, h, 6)
        out.append(
            {
                "name": name, "kind": kind, "size": f"{w}x{h}",
                "mv_grid": f"{plan.cols}x{plan.rows}", "mv_tiles": plan.num_tiles, "mv_tokens": plan.num_tokens,
                "mv_dist": plan.distortion,
                "i12_grid": f"{c12}x{r12}", "i12_tokens": internvl_tokens(w, h, 12),
                "i12_dist": internvl_distortion(w, h, 12),
                "i6_grid": f"{c6}x{r6}", "i6_tokens": internvl_tokens(w, h, 6), "i6_dist": internvl_distortion(w, h, 6),
            }
        )  # fmt: skip
    return out


def _pct(new: float, old: float) -> str:
    return f"{100 * (new - old) / old:+.1f}%"


def main() -> None:
    rows = rows_for_table()
    print("Visual tokens per image: MagicVL (token-level resize, 32 px/token, <=24 tiles of 384)")
    print("vs InternVL2.5 dynamic tiling (448 tiles, closest-aspect grid, +thumbnail, 256 tokens/tile).")
    print("Grids are cols x rows (tokens for MagicVL, 448 tiles for InternVL). dist = |log aspect change|.\n")
    header = (
        f"{'image':<16}{'kind':<11}{'W x H':>11} | {'MagicVL grid':>12}{'tiles':>6}{'tokens':>7}{'dist':>7} | "
        f"{'IVL-12':>6}{'tokens':>7}{'dist':>7} | {'IVL-6':>6}{'tokens':>7}{'dist':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['name']:<16}{r['kind']:<11}{r['size']:>11} | {r['mv_grid']:>12}{r['mv_tiles']:>6}"
            f"{r['mv_tokens']:>7}{r['mv_dist']:>7.3f} | {r['i12_grid']:>6}{r['i12_tokens']:>7}"
            f"{r['i12_dist']:>7.3f} | {r['i6_grid']:>6}{r['i6_tokens']:>7}{r['i6_dist']:>7.3f}"
        )
    n = len(rows)
    total = {k: sum(int(r[k]) for r in rows) for k in ("mv_tokens", "i12_tokens", "i6_tokens")}
    mean = {k: sum(float(r[k]) for r in rows) / n for k in ("mv_dist", "i12_dist", "i6_dist")}
    print("-" * len(header))
    print(f"{'total tokens':<38} | {total['mv_tokens']:>25} | {total['i12_tokens']:>20} | {total['i6_tokens']:>20}")
    print(f"{'mean distortion':<38} | {mean['mv_dist']:>25.3f} | {mean['i12_dist']:>20.3f} | {mean['i6_dist']:>20.3f}")
    print()
    print(f"MagicVL vs InternVL2.5 (max 12 tiles): {_pct(total['mv_tokens'], total['i12_tokens'])} tokens")
    print(f"MagicVL vs InternVL2.5 (max 6 tiles):  {_pct(total['mv_tokens'], total['i6_tokens'])} tokens")
    photos = [r for r in rows if r["kind"] == "photo"]
    mv = sum(int(r["mv_tokens"]) for r in photos)
    i12, i6 = (sum(int(r[k]) for r in photos) for k in ("i12_tokens", "i6_tokens"))
    print(f"photos only (TextVQA images are photos): {_pct(mv, i12)} vs max 12, {_pct(mv, i6)} vs max 6")
    print("paper (TextVQA, Table 3): -37.8% tokens (0.51-0.52 M vs 0.81-0.82 M)")
    worst = max(rows, key=lambda r: float(r["mv_dist"]))
    print(f"largest MagicVL distortion: {worst['name']} ({float(worst['mv_dist']):.3f} = "
          f"{100 * (math.exp(float(worst['mv_dist'])) - 1):.1f}% aspect change)")  # fmt: skip


if __name__ == "__main__":
    main()
