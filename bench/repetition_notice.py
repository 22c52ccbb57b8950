"""The licences of the labelled repetition set's sources, and the NOTICE that ships with it.

    python -m bench.repetition_notice     # rewrite bench/data/NOTICE.md and bench/data/licenses/

``python -m bench.repetition_set`` calls ``write`` after rebuilding the set. Each text's source (a file on
this machine, a docstring, or "planted from" one of those) maps to the work it belongs to (``owner``), and
each work to its licence and the licence text that must travel with excerpts of it (``LICENCES``).
Sources whose licence forbids changed or excerpted copies are not used (``EXCLUDED``, kept for the record).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bench.repetition_set import DATA, SITE, load

OUT = DATA.parent
CPYTHON_LICENSE = Path("/root/.pyenv/versions/3.11.7/lib/python3.11/LICENSE.txt")
COMMON = Path("/usr/share/common-licenses")


@dataclass(frozen=True)
class Licence:
    """A work's licence: ``spdx`` names it; ``text`` is its text on this machine (None: nothing must travel),
    copied from the line holding ``begin`` up to the line holding ``end`` (default: the first line of only
    dashes after the start, so a package's own licence is kept and the bundled ones after it are not)."""

    spdx: str
    text: Path | None
    begin: str = ""
    end: str = ""
    note: str = ""


def _dist(pkg: str) -> Path:
    """The installed package's own licence file (LICENSE, LICENSE.txt or LICENSE.md in its dist-info)."""
    hits = sorted(SITE.glob(f"{pkg}-*.dist-info/licenses/LICENSE*")) + sorted(SITE.glob(f"{pkg}-*.dist-info/LICENSE*"))
    return hits[0] if hits else SITE / f"{pkg}.dist-info" / "LICENSE"


_APACHE = COMMON / "Apache-2.0"
LICENCES: dict[str, Licence] = {
    "vim": Licence("Vim", Path("/usr/share/vim/vim90/doc/uganda.txt"), "=== begin of license ===",
                   "=== end of license ===", "unmodified parts, with the licence text (section I)"),
    "cpython": Licence("PSF-2.0", CPYTHON_LICENSE, "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2",
                       "BEOPEN.COM LICENSE AGREEMENT", "changes summarised above (clause 3)"),
    "licence text Apache-2.0": Licence("Apache-2.0 text", None, note="reuse and change allowed "
                                       "(apache.org/foundation/license-faq.html#mod-license)"),
    "licence text CC0-1.0": Licence("CC0-1.0 text", None, note="CC dedicates its legal code to the public domain"),
    "licence text BSD": Licence("BSD-3-Clause (template)", COMMON / "BSD"),
    "magicvl-curriculum": Licence("Apache-2.0", None, note="written for this project"),
    **{p: Licence("MIT", _dist(p)) for p in ("pydantic", "polars", "fastapi", "rich", "pytest", "beartype")},
    **{p: Licence("BSD-3-Clause", _dist(p)) for p in ("pandas", "networkx", "sympy", "fsspec", "httpx", "numpy",
                                                       "jinja2", "click")},
    "pillow": Licence("MIT-CMU", _dist("pillow")),
    "matplotlib": Licence("Matplotlib (PSF-style)", _dist("matplotlib"), end="License agreement for matplotlib "
                          "versions prior", note="changes summarised above (clause 3)"),
    "prefect": Licence("Apache-2.0", _APACHE),
    "datasets": Licence("Apache-2.0", _APACHE),
    "requests": Licence("Apache-2.0", _APACHE, note="NOTICE: Requests, Copyright 2019 Kenneth Reitz"),
    "boto3": Licence("Apache-2.0", _APACHE, note="NOTICE: boto3, Copyright 2013-2017 Amazon.com, Inc. or its "
                     "affiliates. All Rights Reserved."),
    "pyarrow": Licence("Apache-2.0", _APACHE, note="NOTICE: Apache Arrow, Copyright 2016-2026 The Apache "
                       "Software Foundation. This product includes software developed at The Apache Software "
                       "Foundation (http://www.apache.org/)."),
}  # fmt: skip

EXCLUDED = {
    "/usr/share/common-licenses/GPL-3": "GPL-3.0 text: verbatim copies only, changing it is not allowed",
    "/usr/share/common-licenses/LGPL-2.1": "LGPL-2.1 text: verbatim copies only, changing it is not allowed",
    "/usr/share/common-licenses/GFDL-1.3": "GFDL-1.3 text: verbatim copies only, changing it is not allowed",
    "/usr/share/common-licenses/MPL-2.0": "MPL-2.0 text: only the licence steward may modify it (section 10.1)",
    "/usr/share/common-licenses/Artistic": "Artistic-1.0 text: grants no right to copy or change the document",
    "/usr/share/doc/python3-lazr.restfulclient/retry.standalone.rst": "LGPL-3.0 (Canonical): excerpts and "
    "changed copies would have to be LGPL",
    "planted from /usr/share/vim/vim90/tutor": "Vim licence: a changed part is a 'modified Vim' (section II: "
    "contact details, changes to the maintainer, a :version message) — no texts are planted from the tutor",
}  # fmt: skip

_DOCSTRING_OWNER = {"json": "cpython", "PIL": "pillow"}


def owner(source: str) -> str:
    """The work a text's ``source`` belongs to (a key of ``LICENCES``); ValueError for an unknown source."""
    source = source.removeprefix("planted from ")
    if source == "planted":
        return "magicvl-curriculum"
    if source.startswith("/usr/share/vim/"):
        return "vim"
    if "/test/cjkencodings/" in source:
        return "cpython"
    if source.startswith("docstring of "):
        top = source.removeprefix("docstring of ").split(".")[0]
        return _DOCSTRING_OWNER.get(top, top)
    if source.startswith(str(COMMON) + "/"):
        return f"licence text {Path(source).name}"
    m = re.match(r"site-packages/([A-Za-z0-9_]+?)(?:-[0-9][^/]*\.dist-info)?/", source)
    if m and m.group(1).lower() in LICENCES:
        return m.group(1).lower()
    raise ValueError(f"repetition set source {source!r}: no licence recorded in bench/repetition_notice.py")


def licence_file(key: str) -> str | None:
    """Where the licence text of ``key`` ships, relative to bench/data (None: nothing must travel)."""
    lic = LICENCES[key]
    if lic.text is None:
        return None
    return f"licenses/{'Apache-2.0' if lic.text == _APACHE else key.replace('licence text ', '')}.txt"


def licence_text(lic: Licence) -> str:
    """The part of ``lic.text`` that must travel (see ``Licence``)."""
    assert lic.text is not None
    lines = lic.text.read_text(encoding="utf-8").splitlines()
    start = next((i for i, ln in enumerate(lines) if lic.begin and lic.begin in ln), 0)
    stop = next((i for i, ln in enumerate(lines) if i > start + 2 and (
        (lic.end and lic.end in ln) or (not lic.end and re.fullmatch(r"-{4,}\s*", ln)))), len(lines))  # fmt: skip
    return "\n".join(lines[start:stop]).strip() + "\n"


_HEAD = """# NOTICE: the labelled repetition set (repetition_set.jsonl)

Every text in `repetition_set.jsonl` is an excerpt of, or (label `bad`, source `planted from ...`) a text
made from an excerpt of, a file found on the machine that built it; its `source` field names the file.
Changes made to the works (for the licences that ask for a summary: Apache-2.0 4(b), PSF-2.0 and
Matplotlib clause 3): real texts are passages of about 900 characters cut at line ends, with lines of only
separator characters and `--->` lines left out and runs of blank lines collapsed — except Vim's tutor,
whose passages are runs of consecutive lines copied unchanged; planted texts loop or repeat parts of those
passages (`bench/repetition_set.py`, `bad_texts`). The four `planted CJK loop` texts were written for this
project (Apache-2.0, like the project). Generated by `python -m bench.repetition_notice`.

| source | real | planted | licence | licence text (in bench/data/) | note |
|---|---|---|---|---|---|
"""


def notice(rows: list[dict]) -> str:
    """NOTICE.md for ``rows``: one line per source file, its licence and where the licence text is."""
    counts: dict[str, list[int]] = {}
    for r in rows:
        src = r["source"].removeprefix("planted from ")
        counts.setdefault(src, [0, 0])[r["label"] == "bad"] += 1
    lines = []
    for src, (real, bad) in counts.items():
        key = owner(src)
        lic = LICENCES[key]
        lines.append(f"| `{src}` | {real} | {bad} | {lic.spdx} | {licence_file(key) or '(none required)'} "
                     f"| {lic.note} |")  # fmt: skip
    left_out = "\n".join(f"- `{src}`: {why}" for src, why in EXCLUDED.items())
    return (
        _HEAD
        + "\n".join(lines)
        + "\n\nNot used (their licences forbid changed or excerpted copies):\n\n"
        + (left_out + "\n")
    )


def write(rows: list[dict] | None = None) -> None:
    """Rewrite NOTICE.md and licenses/ (only the licence texts the set's sources need)."""
    rows = load() if rows is None else rows
    keys = {owner(r["source"]) for r in rows}
    folder = OUT / "licenses"
    folder.mkdir(exist_ok=True)
    wanted = {licence_file(k): LICENCES[k] for k in keys if licence_file(k)}
    for stale in folder.glob("*.txt"):
        if f"licenses/{stale.name}" not in wanted:
            stale.unlink()
    for rel, lic in wanted.items():
        (OUT / rel).write_text(licence_text(lic), encoding="utf-8")
    (OUT / "NOTICE.md").write_text(notice(rows), encoding="utf-8")


if __name__ == "__main__":
    write()
    print(f"{OUT / 'NOTICE.md'}, {len(list((OUT / 'licenses').glob('*.txt')))} licence texts")
