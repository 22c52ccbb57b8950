"""The CLI: help on every command and option, clear errors for bad recipes, inspect and validate output."""

from __future__ import annotations

import argparse

import pytest
import yaml

from magicvl.flows.cli import _parser, main


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_and_option_has_help():
    subs = _subparsers(_parser())
    assert {"curate", "score", "combine", "inspect", "validate", "signals", "sample-data", "demo"} <= set(subs)
    for name, sp in subs.items():
        assert sp.description, name
        for action in sp._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"{name} {action.dest} has no help"


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as e:
        main(["curate", "--help"])
    assert e.value.code == 0 and "recompute these steps" in capsys.readouterr().out


def test_bad_recipe_is_a_clear_error_naming_the_field(tmp_path, capsys):
    bad = tmp_path / "r.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "output": "o",
                "datasets": [{"name": "a b", "format": "csv", "path": "x"}],
                "combine": {"normalization": "rank"},
                "typo": 1,
            }
        )
    )
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "datasets[0].name: invalid dataset name 'a b'" in err
    assert "datasets[0].format: Input should be 'llava_json', 'jsonl', 'parquet' or 'webdataset'" in err
    assert "combine.normalization: Input should be 'minmax' or 'zscore'" in err
    assert "typo: Extra inputs are not permitted" in err


def test_missing_recipe_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read recipe" in capsys.readouterr().err


def test_validate_prints_defaults(tmp_path, capsys):
    r = tmp_path / "r.yaml"
    ds = [{"name": "a", "format": "jsonl", "path": "x.jsonl"}]
    r.write_text(yaml.safe_dump({"output": "o", "datasets": ds, "signals": {"image_entropy": {}}}))
    assert main(["validate", str(r)]) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    assert out["combine"]["stages"] == {
        "caption_low_share": 0.3,
        "instruction_low_share": 0.45,
        "split_within": "category",
    }
    assert out["ingest"]["max_pixels"] == 64_000_000


def test_signals_lists_the_registry(capsys):
    assert main(["signals"]) == 0
    out = capsys.readouterr().out
    for name in ("token_length", "type_token_ratio", "image_entropy"):
        assert name in out
