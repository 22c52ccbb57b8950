"""The project installs as one import package, ``magicvl``: nothing generic lands in site-packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_one_top_level_package_magicvl(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("magicvl_curriculum-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith((".dist-info", ".data"))}
    assert top == {"magicvl"}
    for sub in ("flows", "tasks", "scoring", "model", "storage", "sample_data"):
        assert f"magicvl/{sub}/__init__.py" in names, sub
    assert "magicvl/flows/recipes/demo.yaml" in names  # the documented recipe ships with the package
    assert not any(n.startswith("magicvl/tests/") for n in names)
