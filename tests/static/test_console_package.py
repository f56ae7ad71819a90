"""The console ships inside the package (SPEC §10): a wheel built as the Dockerfile builds it
holds every file of bridge/admin/console, so a pip or Docker install serves `/ui/` air-gapped."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "bridge" / "admin" / "console"


@pytest.mark.timeout(120)
def test_the_wheel_carries_the_console(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "bridge", source / "bridge", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--wheel-dir", str(wheels), str(source)], check=True, capture_output=True)
    (wheel,) = wheels.glob("webhook_bridge-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"bridge/admin/console/{path.name}" for path in CONSOLE.iterdir()}
    assert shipped - packed == set()
    assert {"bridge/admin/console/index.html", "bridge/admin/console/app.js"} <= packed
