"""Model identity is content: weights hashed once (sidecar by path, size, mtime), equal sizes still differ."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from magicvl.storage import fingerprint
from magicvl.storage.fingerprint import model_identity


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MAGICVL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "sha256"


def checkpoint(root: Path, weights: bytes) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"hidden_size": 8}')
    (root / "model.safetensors").write_bytes(weights)
    return root


def count_hashes(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = fingerprint.sha256_file

    def counting(path, block=1 << 22):
        seen.append(Path(path).name)
        return real(path, block)

    monkeypatch.setattr(fingerprint, "sha256_file", counting)
    return seen


def test_equal_sizes_different_weights_give_different_identities(tmp_path, cache):
    a = checkpoint(tmp_path / "a", b"\x00" * 4096)
    b = checkpoint(tmp_path / "b", b"\x00" * 4095 + b"\x01")  # same names, same sizes
    assert model_identity(str(a)) != model_identity(str(b))
    c = tmp_path / "c"
    shutil.copytree(a, c)
    assert model_identity(str(c)) == model_identity(str(a))  # a copy is the same model
    (c / "config.json").write_text('{"hidden_size": 9}')
    assert model_identity(str(c)) != model_identity(str(a))
    assert model_identity("org/some-hub-model") == "org/some-hub-model"


def test_weights_are_hashed_once_and_touching_costs_one_rehash(tmp_path, cache, monkeypatch):
    a = checkpoint(tmp_path / "a", os.urandom(1 << 16))
    seen = count_hashes(monkeypatch)
    first = model_identity(str(a))
    assert sorted(seen) == ["config.json", "model.safetensors"]
    assert model_identity(str(a)) == first and len(seen) == 2  # remembered: no second read
    assert len(list(cache.glob("*.txt"))) == 2
    st = (a / "model.safetensors").stat()
    os.utime(a / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes
    assert model_identity(str(a)) == first and seen[2:] == ["model.safetensors"]  # one re-hash
    assert model_identity(str(a)) == first and len(seen) == 3  # and remembered again


def test_replaced_weights_of_equal_size_and_mtime_elsewhere_change_the_key(tmp_path, cache):
    """The sidecar is keyed by path too: a second checkpoint never borrows the first one's digest."""
    a = checkpoint(tmp_path / "a", b"x" * 100)
    b = checkpoint(tmp_path / "b", b"y" * 100)
    st = (a / "model.safetensors").stat()
    os.utime(b / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.utime(b / "config.json", ns=((a / "config.json").stat().st_atime_ns, (a / "config.json").stat().st_mtime_ns))
    assert model_identity(str(a)) != model_identity(str(b))
