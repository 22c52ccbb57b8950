"""Measuring a JSON value on disk without holding it: golden sizes on tricky values."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from magicvl.storage.ingest.json_extent import NOT_A_VALUE, TOO_LARGE, measure

VALUES = [
    {"id": "plain", "conversations": [{"from": "gpt", "value": "ok"}]},
    {"id": 'quotes " and \\ and ]} inside', "x": ["[{", "\\", '\\"']},
    {"id": "ünïcødé ✓ 𝄞", "nested": [[[{"a": [1, 2.5e-3, None, True]}]]]},
    ["an", "array", {"of": "things"}],
    'a bare string with a ] and an escaped \\" quote',
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("after", [",", "]", " \n ,", "\t]"])
def test_size_is_the_exact_byte_length(tmp_path, value, after):
    text = json.dumps(value, ensure_ascii=False).encode()
    path = tmp_path / "v.json"
    path.write_bytes(b"[" + text + after.encode() + b" {}]")
    size, scanned = measure(path, 1, 1 << 20)
    assert size == len(text) == scanned


def test_scalars_end_at_a_delimiter(tmp_path):
    path = tmp_path / "v.json"
    path.write_bytes(b"[-12.5e3 , true]")
    assert measure(path, 1, 100) == (7, 7)
    assert measure(path, 11, 100)[0] == 4


def test_escapes_and_brackets_across_block_boundaries(tmp_path):
    # the first block is 64 KiB, later ones 1 MiB: put an escape and a closing bracket on each edge
    for pad in range(65_530, 65_540):
        value = {"id": "x" * pad + '\\"]}' + "y" * 70_000}
        text = json.dumps(value).encode()
        path = tmp_path / "v.json"
        path.write_bytes(text + b"]")
        assert measure(path, 0, 1 << 20)[0] == len(text), pad


def test_not_followed_or_unclosed_is_not_a_value(tmp_path):
    path = tmp_path / "v.json"
    path.write_bytes(b'{"a": 1} x, {"b": 2')
    assert measure(path, 0, 100)[0] == NOT_A_VALUE  # closes, but what follows is not , or ]
    assert measure(path, 12, 100) == (NOT_A_VALUE, 7)  # the file ends inside it


def test_too_large_stops_after_the_limit_in_one_block_of_memory(tmp_path):
    path = tmp_path / "v.json"
    with open(path, "wb") as f:
        f.write(b'{"blob": "')
        for _ in range(24):
            f.write(b"\xc3\xa9" * (1 << 19))  # 24 MiB of a two-byte character
        f.write(b'"},{}]')
    tracemalloc.start()
    try:
        size, scanned = measure(path, 0, 8 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert size == TOO_LARGE and (8 << 20) < scanned <= (9 << 20) + (1 << 16)
    assert peak < 3 << 20  # one read block, whatever the limit or the value
    assert measure(path, 0, 32 << 20)[0] == (24 << 20) + 12  # with room: the exact size


def test_deep_nesting_is_counted_block_by_block(tmp_path):
    depth = 3 << 19
    path = tmp_path / "v.json"
    path.write_bytes(b"[" * depth + b"]" * depth + b",")
    assert measure(path, 0, 4 << 20)[0] == 2 * depth
    assert measure(path, 0, 2 << 20)[0] == TOO_LARGE
