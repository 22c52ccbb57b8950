"""The inspection review sheet and its sidecar decision file."""

from __future__ import annotations

import json

import pytest
import yaml

from magicvl.flows.cli import main
from magicvl.flows.review import draw, write_review
from magicvl.scoring.review import ReviewDecision, inspection_category, load_decision
from magicvl.storage.ingest.spec import DatasetConfig
from tests.helpers import make_dataset


def _dataset(tmp_path, extra=None):
    make_dataset(tmp_path, n=16, extra=extra)
    return DatasetConfig(name="d", format="jsonl", path="d.jsonl", image_root="images", review="d.review.yaml")


def test_sheet_and_sidecar(tmp_path):
    hostile = json.dumps(
        {
            "id": "x",
            "conversations": [
                {"from": "human", "value": "<script>alert(1)</script> ما هذا؟"},
                {"from": "gpt", "value": "نص عربي"},
            ],
        }
    )
    cfg = _dataset(tmp_path, [hostile, "{broken"])
    sheet, sidecar = write_review(cfg, tmp_path, tmp_path / "rv", n=18, seed=0)
    page = sheet.read_text(encoding="utf-8")
    assert page.count("<tr>") == 18  # 16 good + the hostile record + the broken line
    assert page.count("data:image/jpeg;base64,") == 14  # text_only records have no image
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'dir="auto"' in page and "نص عربي" in page
    assert page.count("rules: ") == 18  # the rule classifier's guess beside each record
    assert "invalid_json" in page or "JSON" in page  # the broken record shows its error
    side = load_decision(sidecar)
    assert side.dataset == "d" and side.decision is None and len(side.sampled) == 18
    sidecar.write_text(sidecar.read_text().replace("decision: null", "decision: chart"))
    write_review(cfg, tmp_path, tmp_path / "rv", n=3, seed=1)  # a rerun never overwrites a decision
    assert inspection_category(load_decision(sidecar)) == "chart"


def test_decisions_validate():
    assert inspection_category(ReviewDecision(dataset="d", decision="mixed")) is None
    assert inspection_category(None) is None
    with pytest.raises(ValueError, match="decision"):
        ReviewDecision.model_validate({"dataset": "d", "decision": "poetry"})


def test_bad_sidecar_names_the_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"dataset": "d", "decison": "ocr"}))
    with pytest.raises(ValueError, match="s.yaml"):
        load_decision(p)


def test_draw_is_seeded_bounded_and_in_source_order():
    a = draw(iter(range(1000)), 10, seed=3)
    assert a == draw(iter(range(1000)), 10, seed=3) and a == sorted(a) and len(set(a)) == 10
    assert a != draw(iter(range(1000)), 10, seed=4)
    assert draw(iter(range(5)), 10, seed=0) == [0, 1, 2, 3, 4]


def test_cli_on_a_raw_file(tmp_path, capsys):
    make_dataset(tmp_path, n=8)
    rc = main(
        [
            "review",
            str(tmp_path / "d.jsonl"),
            "--image-root",
            str(tmp_path / "images"),
            "--out",
            str(tmp_path / "rv"),
            "-n",
            "4",
        ]
    )
    assert rc == 0 and (tmp_path / "rv" / "d.review.html").is_file()
    assert "write the decision into" in capsys.readouterr().out
