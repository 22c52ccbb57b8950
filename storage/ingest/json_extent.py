"""How long a JSON value on disk is, measured without holding it.

The JSON array reader asks this before it reads an element that runs past its
text window: the value's bytes are streamed from the file in blocks and only
brackets, quotes and escapes are looked at (structural characters are ASCII,
so bytes suffice: UTF-8 continuation bytes never look like them). Memory is
one block whatever the value's size, so an oversized element is refused for
the price of reading past it, never of holding it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO

from magicvl.storage import fs
from magicvl.storage.fs import ObjectStoreOptions

TOO_LARGE = -1  # the value does not end within the limit
NOT_A_VALUE = -2  # the file ends first, or the value is not followed by ',' or ']'

_FIRST_BLOCK = 1 << 16  # small: most values measured here are only just past the reader's window
_BLOCK = 1 << 20
_TOKEN = re.compile(rb'["\[\]{}]')
_SCALAR_END = re.compile(rb"[,\]} \t\r\n]")
_NON_WS = re.compile(rb"[^ \t\r\n]")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = frozenset(b"[{")


class _Blocks:
    """A file read forward in blocks; ``done`` is the byte count of the blocks already left behind."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.block = f.read(_FIRST_BLOCK)
        self.done = 0

    def next(self) -> bool:
        self.done += len(self.block)
        self.block = self._f.read(_BLOCK)
        return bool(self.block)


def _followed(b: _Blocks, i: int) -> bool:
    """Whether the next non-whitespace byte at or after ``i`` is ``,`` or ``]`` (blanks streamed past)."""
    while True:
        m = _NON_WS.search(b.block, i)
        if m is not None:
            return b.block[m.start()] in b",]"
        if not b.next():
            return False
        i = 0


def measure(path: Path | str, offset: int, limit: int, store: ObjectStoreOptions | None = None) -> tuple[int, int]:
    """(size, scanned) of the JSON value at byte ``offset`` of ``path``.

    ``size`` is its length in bytes if it ends within ``limit`` bytes and ``,`` or
    ``]`` follows it, else TOO_LARGE or NOT_A_VALUE; ``scanned`` is how many bytes
    from ``offset`` were looked at (a later search need not look there again).
    """
    with fs.open_binary(path, store) as f:
        f.seek(offset)
        b = _Blocks(f)
        if not b.block:
            return NOT_A_VALUE, 0
        first = b.block[0]
        if first not in _OPEN and first != _QUOTE:
            return _measure_scalar(b, limit)
        depth, in_string, i = 0, False, 0
        while True:
            if b.done + i > limit:
                return TOO_LARGE, b.done + i
            m = _string_end(b.block, i) if in_string else _token(b.block, i)
            if m is None:
                i = max(0, i - len(b.block))  # an escape at a block's end skips the next block's first byte
                if not b.next():
                    return NOT_A_VALUE, b.done
                if not in_string and depth > 0:
                    depth = _fast_forward(b, depth, limit)
                    if depth is None:
                        return NOT_A_VALUE, b.done
                continue
            c, i = b.block[m], m + 1
            if c == _BACKSLASH:
                i += 1
            elif c == _QUOTE:
                in_string = not in_string
            elif c in _OPEN:
                depth += 1
            else:
                depth -= 1
            if depth == 0 and not in_string:
                end = b.done + i
                return (end if _followed(b, i) else NOT_A_VALUE), end


def _token(block: bytes, i: int) -> int | None:
    m = _TOKEN.search(block, i)
    return None if m is None else m.start()


def _string_end(block: bytes, i: int) -> int | None:
    """Index of the next quote or backslash at or after ``i`` (memchr speed: strings are long)."""
    q = block.find(b'"', i)
    e = block.find(b"\\", i, q if q >= 0 else len(block))
    return e if e >= 0 else (q if q >= 0 else None)


def _fast_forward(b: _Blocks, depth: int, limit: int) -> int | None:
    """Skip whole blocks without a quote that cannot bring ``depth`` to zero, counting brackets
    in C (a deep-nesting attack is not walked one bracket at a time). Returns the depth at the
    start of ``b.block``, or None at end of file."""
    while b'"' not in b.block and b.done <= limit:
        closes = b.block.count(b"]") + b.block.count(b"}")
        if closes >= depth:
            break
        depth += b.block.count(b"[") + b.block.count(b"{") - closes
        if not b.next():
            return None
    return depth


def _measure_scalar(b: _Blocks, limit: int) -> tuple[int, int]:
    """A bare number or literal ends at the first ``,``, ``]``, ``}`` or blank."""
    while True:
        m = _SCALAR_END.search(b.block)
        if m is not None:
            end = b.done + m.start()
            if end > limit:
                return TOO_LARGE, end
            return (end if _followed(b, m.start()) else NOT_A_VALUE), end
        if b.done + len(b.block) > limit:
            return TOO_LARGE, b.done + len(b.block)
        if not b.next():
            return NOT_A_VALUE, b.done
