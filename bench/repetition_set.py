"""The labelled set the repetition rules are calibrated on: real texts from this machine + planted bad ones.

    python -m bench.repetition_set            # rebuild bench/data/repetition_set.jsonl

Real texts ("real"): ~900-character passages no one here wrote, cut at line ends
from files installed on this machine (their paths are recorded per text):
Vim's tutor in 19 languages (the longest run of unchanged lines in each window, a run ending at a separator such as
``~~~~`` or a ``--->`` practice line, which repeats words on purpose), the CJK
test texts of CPython's codec tests, the licence texts whose own terms allow excerpts and
changes (Apache-2.0, CC0-1.0, BSD), package READMEs (wheel METADATA), docstrings of
installed libraries, and documentation that quotes tracebacks. Bad texts ("bad"):
degenerate generations planted from the real texts that may be modified (not Vim's: see
bench/data/NOTICE.md) — a phrase or sentence looped, a passage repeated, a tail stuck in a
loop, CJK loops. The file is shipped with its NOTICE and licence texts
(``bench.repetition_notice``); this script documents and reproduces it where the sources exist.
"""

from __future__ import annotations

import inspect
import json
import random
import re
import sys
from importlib import import_module
from pathlib import Path

DATA = Path(__file__).parent / "data" / "repetition_set.jsonl"
SITE = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
VIM = Path("/usr/share/vim/vim90/tutor")
CJK_TESTS = Path("/root/.pyenv/versions/3.11.7/lib/python3.11/test/cjkencodings")
LICENSES = Path("/usr/share/common-licenses")
CHARS = 900

TUTORS = ("zh_cn", "zh_tw", "ja", "ko", "ru", "uk", "bg", "el", "vi", "fr", "de", "es", "it", "pl", "tr", "cs",
          "sr", "hu", "nl")  # fmt: skip
CJK_FILES = ("gb2312-utf8.txt", "gbk-utf8.txt", "big5-utf8.txt", "euc_jp-utf8.txt", "shift_jis-utf8.txt",
             "euc_kr-utf8.txt")  # fmt: skip
# licence texts that may be excerpted and changed (the GNU texts, MPL-2.0 and Artistic may not: NOTICE.md)
LICENSE_PASSAGES = (("Apache-2.0", 0.1), ("Apache-2.0", 0.4), ("Apache-2.0", 0.7),
                    ("CC0-1.0", 0.1), ("CC0-1.0", 0.4), ("CC0-1.0", 0.7), ("BSD", 0.4))  # fmt: skip
READMES = ("pydantic", "polars", "httpx", "fastapi", "prefect", "numpy", "pandas", "networkx", "rich", "requests",
           "datasets", "boto3", "matplotlib", "pytest", "sympy")  # fmt: skip
DOCSTRINGS = ("numpy.linspace", "numpy.einsum", "json.dumps", "polars.DataFrame.join", "pandas.DataFrame.merge",
              "pyarrow.parquet.write_table", "PIL.Image.Image.resize", "pydantic.BaseModel.model_validate",
              "networkx.shortest_path", "jinja2.Environment", "click.option", "fsspec.open")  # fmt: skip
TRACEBACK_DOCS = (
    SITE / "numpy" / "ma" / "API_CHANGES.txt",
    next(SITE.glob("beartype-*.dist-info/METADATA"), SITE / "beartype.dist-info" / "METADATA"),
)
_SEPARATOR = re.compile(r"^\s*([~=\-*#_.])\1{5,}\s*$")


def _skipped(line: str) -> bool:
    return bool(_SEPARATOR.match(line)) or line.lstrip().startswith("--->")


def verbatim_passage(text: str, start: float, chars: int = CHARS) -> str:
    """The longest run of consecutive, unchanged lines inside the window ``passage`` would cut at ``start``
    (runs end at a separator or ``--->`` line). For sources whose licence allows unmodified parts only (Vim's)."""
    lines = text.splitlines()
    kept = [i for i, ln in enumerate(lines) if not _skipped(ln)]  # ``start`` is a fraction of these lines' text
    kept_text = "\n".join(lines[i] for i in kept)
    i = kept[min(kept_text[: int(len(kept_text) * start)].count("\n"), len(kept) - 1)]
    runs: list[list[str]] = [[]]
    used = 0
    while i < len(lines) and used + len(lines[i]) < chars:
        if _skipped(lines[i]):
            runs.append([])
        else:
            runs[-1].append(lines[i])
            used += len(lines[i]) + 1
        i += 1
    return max(("\n".join(r).strip() for r in runs), key=len)


def passage(text: str, start: float, chars: int = CHARS) -> str:
    """About ``chars`` characters from ``start`` (a fraction of the text), cut at line ends; separator-only
    and ``--->`` practice lines dropped, runs of blank lines collapsed."""
    lines = [ln.rstrip() for ln in text.splitlines() if not _skipped(ln)]
    clean = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    i = clean.rfind("\n", 0, int(len(clean) * start)) + 1
    out = clean[i : i + chars]
    cut = out.rfind("\n")
    return (out[:cut] if cut > chars // 2 else out).strip()


def _where(path: Path) -> str:
    return str(path).replace(str(SITE), "site-packages")


def real_texts() -> list[dict]:
    out = []
    for lang in TUTORS:
        p = VIM / f"tutor.{lang}.utf-8"
        for start in (0.3, 0.6):
            out.append({"kind": f"vim tutor {lang}", "source": str(p), "at": start})
    for name in CJK_FILES:
        out.append({"kind": f"CPython codec test {name}", "source": str(CJK_TESTS / name), "at": 0.0})
    for name, at in LICENSE_PASSAGES:
        out.append({"kind": f"licence {name}", "source": str(LICENSES / name), "at": at})
    for pkg in READMES:
        meta = next(SITE.glob(f"{pkg}-*.dist-info/METADATA"))
        out.append({"kind": f"README {pkg}", "source": str(meta), "at": 0.25})
    for p in TRACEBACK_DOCS:
        out.append({"kind": "docs quoting a traceback", "source": str(p), "at": 0.0})
    for item in out:
        text = Path(item["source"]).read_text(encoding="utf-8", errors="replace")
        if item["kind"].startswith("README"):
            text = text.split("\n\n", 1)[1]  # the long description, not the metadata header
        if item["kind"] == "docs quoting a traceback":
            item["at"] = round(max(text.find("Traceback") - 500, 0) / len(text), 3)
        cut = verbatim_passage if item["kind"].startswith("vim tutor") else passage
        item["text"] = cut(text, item["at"])
        item["source"] = _where(Path(item["source"]))
    for dotted in DOCSTRINGS:
        mod, _, rest = dotted.partition(".")
        obj = import_module(mod)
        for part in rest.split("."):
            obj = getattr(obj, part) if hasattr(obj, part) else import_module(f"{obj.__name__}.{part}")
        doc = inspect.getdoc(obj) or ""
        out.append({"kind": "docstring", "source": f"docstring of {dotted}", "at": 0.0, "text": passage(doc, 0.0)})
    seen: set[str] = set()  # some sources share a passage (the GB2312 and GBK codec texts)
    keep = []
    for t in out:
        if len(t["text"]) >= 200 and t["text"] not in seen:
            seen.add(t["text"])
            keep.append({**t, "label": "real"})
    return keep


def bad_texts(real: list[dict], seed: int = 0, planted: int = 26) -> list[dict]:
    """Degenerate generations, each built from a real text that may be modified (its source recorded):
    ``planted`` of them, spread evenly over those texts, then four CJK loops."""
    rng = random.Random(seed)
    pool = [r for r in real if not r["kind"].startswith("vim tutor")]  # Vim's licence: unmodified parts only
    out = []
    for i, r in enumerate(pool[round(k * len(pool) / planted)] for k in range(planted)):
        text = r["text"]
        sentences = [s for s in re.split(r"(?<=[.!?。！？])\s*", text) if len(s) > 15] or [text[:80]]
        words = text.split()
        how = ("phrase loop", "sentence loop", "passage twice", "tail loop", "short loop")[i % 5]
        if how == "phrase loop":
            k = rng.randint(0, max(len(words) - 4, 0))
            bad = " ".join(words[:20]) + " " + " ".join([" ".join(words[k : k + 3])] * 25)
        elif how == "sentence loop":
            bad = " ".join([rng.choice(sentences)] * 6)
        elif how == "passage twice":
            bad = text[:450] + "\n" + text[:450]
        elif how == "tail loop":
            bad = text[:300] + (" " + text[250:300]) * 8
        else:
            bad = (text[:40] + " ") * 4
        out.append({"kind": f"planted {how}", "source": f"planted from {r['source']}", "at": r["at"], "text": bad})
    cjk_lines = ["我们今天去公园玩。", "这个问题的答案是四十二。", "图中有一只猫。", "请看图片中的文字。"]
    for k, line in enumerate(cjk_lines):
        out.append({"kind": "planted CJK loop", "source": "planted", "at": 0.0, "text": line * (6 + 2 * k)})
    return [{**t, "label": "bad"} for t in out]


def mild_loops(rows: list[dict]) -> list[str]:
    """Borderline texts, not in the set: 600 characters of every 4th real passage, then its last sentence
    three more times (duplicated share 0.2-0.3, where real documents that repeat a code line also are)."""
    real = [r for r in rows if r["label"] == "real"]
    out = []
    for r in real[1::4]:
        text = r["text"][:600]
        sentences = [s for s in re.split(r"(?<=[.!?。！？])\s*", text) if len(s) > 15]
        last = sentences[-1] if sentences else text[-60:]
        out.append(text + " " + " ".join([last] * 3))
    return out


def build() -> list[dict]:
    real = real_texts()
    rows = real + bad_texts(real)
    return [{"id": f"{r['label']}-{i:03d}", **r} for i, r in enumerate(rows)]


def load() -> list[dict]:
    """The shipped labelled set."""
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]


if __name__ == "__main__":
    rows = build()
    DATA.parent.mkdir(parents=True, exist_ok=True)
    DATA.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{DATA}: {sum(r['label'] == 'real' for r in rows)} real, {sum(r['label'] == 'bad' for r in rows)} bad")
    from bench.repetition_notice import write  # the NOTICE and licence texts that ship with the set

    write(rows)
