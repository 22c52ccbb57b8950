"""The CLI in a user's first hour: errors before anything starts, paths from the current directory, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from magicvl.flows.cli import DEMO_RECIPE, _parser, forced_steps, main
from tests.flows.test_curate_flow import write_recipe
from tests.helpers import make_dataset

REPO = Path(__file__).resolve().parents[2]


def cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "magicvl.flows.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def recipe(tmp_path, tokenizer_dir) -> Path:
    make_dataset(tmp_path / "data", n=8)
    return write_recipe(tmp_path, tokenizer_dir)


@pytest.mark.parametrize("command", ["curate", "score", "combine"])
def test_bad_recipe_fails_before_anything_starts(tmp_path, command):
    bad = tmp_path / "r.yaml"
    bad.write_text(yaml.safe_dump({"output": "o", "datasets": [{"name": "a", "format": "csv", "path": "x"}]}))
    res = cli([command, str(bad)], tmp_path)
    assert res.returncode == 2
    assert res.stderr.startswith("error: invalid recipe") and "datasets[0].format" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout and "temporary server" not in res.stderr + res.stdout


def test_mistyped_signal_is_one_line_exit_2(recipe):
    res = cli(["score", str(recipe), "--signal", "imag_entropy"], recipe.parent)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1
    assert "unknown signal 'imag_entropy' (did you mean 'image_entropy'?)" in res.stderr
    assert "image_entropy, token_length, type_token_ratio" in res.stderr


def test_output_resolves_against_the_current_directory(recipe, tmp_path):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    res = cli(["combine", str(recipe), "--output", "work/x"], cwd)  # nothing ingested there yet
    assert res.returncode == 2
    assert f"not ingested under {cwd / 'work' / 'x'}:" in res.stderr
    assert "Traceback" not in res.stderr


def test_bare_force_forces_every_step():
    p = _parser()
    assert forced_steps(p.parse_args(["curate", "r.yaml", "--force"]).force) == [
        "ingest",
        "translate",
        "quality",
        "signals",
        "combine",
    ]
    assert forced_steps(p.parse_args(["curate", "r.yaml", "--force", "combine"]).force) == ["combine"]
    assert forced_steps(p.parse_args(["curate", "r.yaml"]).force) == []


def test_word_type_token_ratio_needs_no_tokenizer(tmp_path, capsys):
    r = tmp_path / "r.yaml"
    base = {"output": "o", "datasets": [{"name": "a", "format": "jsonl", "path": "x.jsonl"}]}
    r.write_text(yaml.safe_dump({**base, "signals": {"type_token_ratio": {"unit": "word"}}}))
    assert main(["validate", str(r)]) == 0
    r.write_text(yaml.safe_dump({**base, "signals": {"type_token_ratio": {"unit": "token"}}}))
    assert main(["validate", str(r)]) == 2
    assert "tokenizer: required when unit is 'token'" in capsys.readouterr().err


def test_help_shows_no_rest_markup(capsys):
    for args in (["--help"], *([c, "--help"] for c in ("curate", "score", "combine", "inspect", "report", "demo"))):
        with pytest.raises(SystemExit):
            main(args)
        out = capsys.readouterr().out
        assert out and "``" not in out, args


def test_demo_template_run_in_place_says_what_to_run(capsys):
    assert main(["curate", str(DEMO_RECIPE)]) == 2
    err = capsys.readouterr().err
    assert "no webdataset files at" in err and "run `magicvl demo`" in err
    assert not (DEMO_RECIPE.parent / "out").exists()


@pytest.mark.slow
def test_ctrl_c_stops_within_seconds_and_says_how_to_resume(tmp_path, tokenizer_dir):
    """SIGINT to the process group, as a terminal's Ctrl-C: exit 130, a resume line, nothing left running."""
    make_dataset(tmp_path / "data", n=200)
    recipe = write_recipe(tmp_path, tokenizer_dir, chunk_records=2)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # the temporary API, as a user gets
    proc = subprocess.Popen(
        [sys.executable, "-m", "magicvl.flows.cli", "curate", str(recipe)],
        cwd=tmp_path,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    markers = tmp_path / "out" / "_state" / "ingest" / "d"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(markers.glob("*.json"))) < 3 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
    os.killpg(proc.pid, signal.SIGINT)
    try:
        out = proc.communicate(timeout=60)[0].decode()
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("curate did not stop within a minute of Ctrl-C") from None
    assert proc.returncode == 130, out[-3000:]
    assert "interrupted: stopping now" in out and f"magicvl curate {recipe}" in out
    assert "Connection refused" not in out and out.count("Traceback") == 0, out[-3000:]
    deadline = time.monotonic() + 20  # nothing of the run is left (local Ray, temporary API)
    while time.monotonic() < deadline and _group_alive(proc.pid):
        time.sleep(0.2)
    left = subprocess.run(
        ["ps", "-ww", "-o", "pid,ppid,stat,etime,args", "-g", str(proc.pid)], capture_output=True, text=True
    ).stdout
    assert not _group_alive(proc.pid), left


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is still in the group."""
    ps = subprocess.run(["ps", "-o", "stat=", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
    return any(not s.startswith("Z") for s in ps)
