"""The encoder's padding mask really isolates padded patches."""

from __future__ import annotations

import pytest
import torch

from magicvl.model.tiny import TINY_VIT
from magicvl.model.vision import VisionEncoder, additive_key_mask, build_vision_model


@pytest.fixture(scope="module")
def encoder() -> VisionEncoder:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return VisionEncoder(build_vision_model(TINY_VIT)).eval()


def _tile_with_content(rows: int, cols: int, pad_fill: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """One 384 tile with real content in the top-left ``rows x cols`` patches and ``pad_fill`` elsewhere."""
    gen = torch.Generator().manual_seed(1)
    content = torch.randn(1, 3, 384, 384, generator=gen)
    mask = torch.zeros(1, 24, 24, dtype=torch.bool)
    mask[0, :rows, :cols] = True
    pix_mask = mask.repeat_interleave(16, 1).repeat_interleave(16, 2)[:, None]  # [1, 1, 384, 384]
    pixels = torch.where(pix_mask, content, pad_fill)
    return pixels, mask


@torch.no_grad()
def test_padding_values_do_not_reach_real_patches(encoder):
    zeros, mask = _tile_with_content(10, 14, 0.0)
    noise, _ = _tile_with_content(10, 14, 50 * torch.randn(1, 3, 384, 384, generator=torch.Generator().manual_seed(7)))
    out_zero = encoder(zeros, mask)[mask]  # [P_real, D]
    out_noise = encoder(noise, mask)[mask]
    assert out_zero.shape == (10 * 14, 32)
    torch.testing.assert_close(out_noise, out_zero, rtol=0, atol=1e-6)
    # negative control: without the mask the padding does leak into real patches
    leak = (encoder(noise, None)[mask] - encoder(zeros, None)[mask]).abs().max()
    assert leak > 1e-2


@torch.no_grad()
def test_padded_tile_equals_unpadded_sequence(encoder):
    """Real patches of a padded tile == the same patches run alone, with no padding at all."""
    pixels, mask = _tile_with_content(6, 20, 0.0)
    padded = encoder(pixels, mask)[mask]  # [P_real, D]
    vit = encoder.vit
    x = vit.embeddings(pixels)[:, mask[0].flatten()]  # [1, P_real, D]: patch + fixed position embeddings
    for layer in vit.encoder.layers:
        x = layer(x, None)
    alone = vit.post_layernorm(x)[0]
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_tiles_are_independent_and_full_tiles_unmasked(encoder):
    a, mask_a = _tile_with_content(24, 24, 0.0)
    b, mask_b = _tile_with_content(4, 8, 0.0)
    both = encoder(torch.cat([a, b]), torch.cat([mask_a, mask_b]))
    torch.testing.assert_close(both[0], encoder(a, mask_a)[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(both[1][mask_b[0]], encoder(b, mask_b)[0][mask_b[0]], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(encoder(a, mask_a), encoder(a, None), rtol=1e-5, atol=1e-5)


def test_additive_mask_and_shape_errors(encoder):
    m = additive_key_mask(torch.tensor([[True, False]]), torch.float32)
    assert m.shape == (1, 1, 1, 2) and m[0, 0, 0, 0] == 0 and m[0, 0, 0, 1] == torch.finfo(torch.float32).min
    with pytest.raises(ValueError, match="384x384"):
        encoder(torch.zeros(1, 3, 224, 224))
    with pytest.raises(ValueError, match="patch_mask"):
        encoder(torch.zeros(1, 3, 384, 384), torch.ones(1, 12, 12, dtype=torch.bool))
