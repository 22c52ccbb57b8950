"""Duplicate measures (pure): exact keys, perceptual image hashes, MinHash LSH bands, and the resolution rule.

Items arrive in recipe order (dataset order, then source order); the copy kept
is always the earliest, and every dropped item names the kept one it matched.
Memory is per item a few fixed-width integers (exact key 16 B, image hash 8 B,
LSH bands 8 B each), so 1M items hold in about 150 MB.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from magicvl.storage.images import gray_for_signals

_SPACE = re.compile(r"\s+")
_MERSENNE = np.uint64((1 << 32) - 5)  # prime below 2^32: products of 32-bit values fit in uint64
_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
HASH_SIDE = 512  # images are hashed on the shared signal decode at this side (entropy's default)


class DedupConfig(BaseModel):
    """The recipe's ``dedup:`` section (across all datasets of a run)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exact: bool = Field(default=True, description="Drop exact duplicates (normalized text + image bytes).")
    near_image: bool = Field(default=True, description="Drop near-duplicate images with near-identical text.")
    image_hash: Literal["phash", "dhash"] = Field(default="phash", description="Perceptual hash (64 bits).")
    max_hamming: int = Field(default=4, ge=0, le=16, description="Images within this Hamming distance match.")
    near_image_same_text: bool = Field(
        default=True, description="Near-duplicate images count only when their normalized texts are equal."
    )
    near_text: bool = Field(default=False, description="MinHash LSH over the texts (catches paraphrased copies).")
    shingle: int = Field(default=5, ge=1, description="Words per shingle (characters × 2 for CJK).")
    bands: int = Field(default=14, ge=1, description="LSH bands (datatrove's default 14 × 8).")
    rows: int = Field(default=8, ge=1, description="Hashes per band.")
    seed: int = Field(default=1, description="Seed of the MinHash permutations.")


def normalize_text(conversation: list[dict[str, str]]) -> str:
    """NFKC, lower case, single spaces; roles kept so a question is not its own answer."""
    parts = [
        f"{t['from']}:{_SPACE.sub(' ', unicodedata.normalize('NFKC', t['value'])).strip().lower()}"
        for t in conversation
    ]
    return "\n".join(parts)


def image_digest(data: bytes) -> bytes:
    """16-byte BLAKE2b of an image's encoded bytes (the image half of the exact key)."""
    return hashlib.blake2b(data, digest_size=16).digest()


def exact_key(text: str, digest: bytes | None) -> bytes:
    """16-byte key of a normalized text and an image digest (``image_digest``; None = no image)."""
    h = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
    h.update(b"\x00image\x00")
    h.update(digest if digest is not None else b"none")
    return h.digest()


def _pack(bits: np.ndarray) -> int:
    return int(np.packbits(bits.astype(np.uint8).ravel()).view(">u8")[0])


HASH_THUMB_MIN = 128  # both perceptual hashes read a box-reduced copy whose shorter side stays >= this


def hash_thumb(gray: Image.Image) -> Image.Image:
    """The luma copy both perceptual hashes resample: ``gray`` box-reduced by the integer factor
    ⌊shorter side / HASH_THUMB_MIN⌋ when that is at least 2 (else ``gray`` itself).

    At least 4× the 32 px the hashes sample, so their bilinear resize still averages every
    pixel; one cheap pass instead of two antialiased resizes of the full image. Idempotent
    (a thumb's shorter side is below 2 · HASH_THUMB_MIN), so a hash of a thumb equals the
    hash of the image it came from.
    """
    factor = min(gray.size) // HASH_THUMB_MIN
    return gray.reduce(factor) if factor >= 2 else gray


def _small(gray: Image.Image, w: int, h: int) -> np.ndarray:
    return np.asarray(hash_thumb(gray).resize((w, h), Image.Resampling.BILINEAR), dtype=np.float64)


def _dct_rows(n: int, k: int) -> np.ndarray:
    """The first ``k`` rows of the orthonormal DCT-II matrix of size ``n`` (``scipy.fft.dct(norm="ortho")``)."""
    x = np.arange(n)
    rows = np.cos(np.pi * (2 * x[None, :] + 1) * np.arange(k)[:, None] / (2 * n)) * np.sqrt(2.0 / n)
    rows[0] /= np.sqrt(2.0)
    return rows


_DCT_32_8 = _dct_rows(32, 8)  # [8, 32]


def dhash_gray(gray: Image.Image) -> int:
    """64-bit difference hash of a luma image: is each pixel brighter than its right neighbour (9×8)."""
    g = _small(gray, 9, 8)  # [8, 9]
    return _pack(g[:, 1:] > g[:, :-1])


def phash_gray(gray: Image.Image) -> int:
    """64-bit perceptual hash of a luma image: 8×8 lowest DCT frequencies of 32×32 above their median
    (the median of the 63 besides the DC term: the 32nd smallest)."""
    low = _DCT_32_8 @ _small(gray, 32, 32) @ _DCT_32_8.T  # [8, 8] = dctn(·, norm="ortho")[:8, :8]
    return _pack(low > np.partition(low.ravel()[1:], 31)[31])


IMAGE_HASHES = {"phash": phash_gray, "dhash": dhash_gray}
HASH_COLUMNS = {"phash": "image_phash", "dhash": "image_dhash"}  # samples columns ingestion fills


def hash_columns(data: bytes, gray: Image.Image) -> dict[str, Any]:
    """The samples row's hash columns of one image: digest of its bytes, both perceptual hashes of
    its luma at ``HASH_SIDE`` (``gray_for_signals(data, ·, HASH_SIDE)``, the decode ingestion makes)."""
    thumb = hash_thumb(gray)  # reduced once for both hashes (each would reduce it again: a no-op)
    return {"image_digest": image_digest(data), **{c: IMAGE_HASHES[k](thumb) for k, c in HASH_COLUMNS.items()}}


def image_hash_columns(data: bytes, max_pixels: int = 1 << 30) -> dict[str, Any]:
    """``hash_columns`` decoding ``data`` itself: equal to what ingestion stores, by construction."""
    return hash_columns(data, gray_for_signals(data, max_pixels, HASH_SIDE)[1])


def phash(data: bytes) -> int:
    """The perceptual hash dedup uses for an encoded image (``phash_gray`` of its ``HASH_SIDE`` luma)."""
    return image_hash_columns(data)["image_phash"]


def dhash(data: bytes) -> int:
    """The difference hash dedup uses for an encoded image (``dhash_gray`` of its ``HASH_SIDE`` luma)."""
    return image_hash_columns(data)["image_dhash"]


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance of uint64 arrays (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64)))


def shingles(text: str, n: int) -> set[int]:
    """crc32 of word n-grams (character 2n-grams for Chinese/Japanese); one hash for short texts."""
    if len(_CJK.findall(text)) * 3 > len(text):
        chars = [c for c in text if not c.isspace()]
        k = 2 * n
        grams = ["".join(chars[i : i + k]) for i in range(max(1, len(chars) - k + 1))]
    else:
        words = _WORD.findall(text)
        grams = [" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))]
    return {zlib.crc32(g.encode("utf-8", "surrogatepass")) for g in grams}


@dataclass(frozen=True)
class MinHasher:
    """Universal hashing a·x + b mod p, ``bands × rows`` permutations."""

    a: np.ndarray  # [P] uint64
    b: np.ndarray  # [P] uint64
    bands: int
    rows: int

    @classmethod
    def of(cls, cfg: DedupConfig) -> MinHasher:
        rng = np.random.default_rng(cfg.seed)
        p = cfg.bands * cfg.rows
        a = rng.integers(1, int(_MERSENNE), size=p, dtype=np.uint64)
        return cls(a, rng.integers(0, int(_MERSENNE), size=p, dtype=np.uint64), cfg.bands, cfg.rows)

    def band_keys(self, shingle_hashes: set[int]) -> np.ndarray:
        """``[bands]`` uint64: each band's ``rows`` minima hashed together."""
        x = np.fromiter(shingle_hashes, dtype=np.uint64, count=len(shingle_hashes))  # [S]
        sig = ((self.a[:, None] * x[None, :] + self.b[:, None]) % _MERSENNE).min(axis=1)  # [P]
        rows = sig.reshape(self.bands, self.rows)  # [B, R]
        keys = rows[:, 0].copy()
        for r in range(1, self.rows):
            keys = keys * np.uint64(1_000_003) ^ rows[:, r]  # wraps mod 2^64
        return keys


def first_occurrence(keys: np.ndarray) -> np.ndarray:
    """For each row of ``keys`` ([N] or [N, K]), the index of the first equal row (itself if first)."""
    _, first, inverse = np.unique(keys, axis=0 if keys.ndim > 1 else None, return_index=True, return_inverse=True)
    return first[inverse.ravel()]


def _group_pairs(hashes: np.ndarray, idx: np.ndarray, t: int, found_i: list, found_j: list, block: int = 1024) -> None:
    """Pairs within Hamming ``t`` among ``hashes[idx]`` (``idx`` ascending), compared in row blocks."""
    h = hashes[idx]
    for r in range(0, len(idx), block):
        d = hamming(h[r : r + block, None], h[None, :])  # [b, g] uint8
        ii, jj = np.nonzero(d <= t)
        ii = ii + r
        keep = ii < jj
        found_i.append(idx[ii[keep]])
        found_j.append(idx[jj[keep]])


def near_pairs(hashes: np.ndarray, max_hamming: int, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j and Hamming(hashes[i], hashes[j]) ≤ max_hamming (and equal ``groups`` if given).

    Pigeonhole: two hashes within distance t agree exactly on one of t + 1 bit bands,
    so only items sharing a band value are compared.
    """
    bounds = np.linspace(0, 64, max_hamming + 2).astype(int)
    found_i, found_j = [], []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        band = (hashes >> np.uint64(lo)) & np.uint64((1 << (hi - lo)) - 1)
        key = band if groups is None else np.stack([band, groups], axis=1)
        order = np.lexsort(key.T[::-1]) if key.ndim > 1 else np.argsort(key, kind="stable")
        sk = key[order]
        change = np.any(sk[1:] != sk[:-1], axis=-1) if sk.ndim > 1 else sk[1:] != sk[:-1]
        starts = np.flatnonzero(np.r_[True, change, True])
        for s, e in zip(starts[:-1], starts[1:]):
            if e - s >= 2:
                _group_pairs(hashes, np.sort(order[s:e]), max_hamming, found_i, found_j)
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = np.unique(np.stack([np.concatenate(found_i), np.concatenate(found_j)], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def resolve_pairs(n: int, i: np.ndarray, j: np.ndarray, dropped: np.ndarray | None = None) -> np.ndarray:
    """Per item, the kept item it duplicates (-1: kept). Earliest wins; a drop names a kept neighbour.

    ``dropped`` marks items already dropped by an earlier rule: they can neither keep nor be kept.
    """
    kept_by = np.full(n, -1, dtype=np.int64)
    gone = np.zeros(n, dtype=bool) if dropped is None else dropped.copy()
    order = np.lexsort((i, j))  # by later item, then earliest partner
    for a, b in zip(i[order], j[order]):
        if gone[a] or gone[b]:
            continue
        kept_by[b] = a
        gone[b] = True
    return kept_by


def lsh_pairs(band_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j, for items sharing any LSH band key ([N, B] uint64); each j paired with the earliest i."""
    out_i, out_j = [], []
    for b in range(band_keys.shape[1]):
        first = first_occurrence(band_keys[:, b])
        later = np.flatnonzero(first != np.arange(len(first)))
        out_i.append(first[later])
        out_j.append(later)
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_i), np.concatenate(out_j)
