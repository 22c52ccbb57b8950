"""The labelled repetition set ships redistributable: every text's source has a licence, its licence text
ships beside it, the NOTICE is current, and nothing comes from a source whose licence forbids excerpts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.repetition_notice import EXCLUDED, OUT, licence_file, notice, owner
from bench.repetition_set import load


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return load()


def test_every_source_has_a_licence_whose_text_ships(rows):
    files = {licence_file(owner(r["source"])) for r in rows} - {None}
    assert files and all((OUT / f).read_text(encoding="utf-8").strip() for f in files)
    shipped = {f"licenses/{p.name}" for p in (OUT / "licenses").glob("*.txt")}
    assert shipped == files  # no licence text missing, none left over from an older set


def test_the_shipped_notice_lists_the_shipped_set(rows):
    assert (OUT / "NOTICE.md").read_text(encoding="utf-8") == notice(rows)
    assert all(f"`{r['source'].removeprefix('planted from ')}`" in notice(rows) for r in rows)


def test_no_text_comes_from_an_excluded_source(rows):
    assert not [r["id"] for r in rows if any(r["source"].startswith(src) for src in EXCLUDED)]
    assert not [r["id"] for r in rows if "vim" in r["source"] and r["label"] == "bad"]


def test_vim_passages_are_unchanged_runs_of_the_tutor(rows):
    vim = [r for r in rows if r["kind"].startswith("vim tutor")]
    if not Path(vim[0]["source"]).exists():
        pytest.skip("Vim's tutor is not installed here")
    assert [r["id"] for r in vim if r["text"] not in Path(r["source"]).read_text(encoding="utf-8")] == []


def test_an_unknown_source_is_refused_by_name():
    with pytest.raises(ValueError, match="'/tmp/somewhere.txt': no licence recorded"):
        owner("/tmp/somewhere.txt")
