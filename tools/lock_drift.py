"""Print the packages whose installed version differs from the lock (`make upgrade-check`).

Usage: python tools/lock_drift.py requirements/dev.lock — run by the scratch venv's Python,
so "installed" means the newest versions that pyproject.toml allows.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import distributions
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", re.MULTILINE)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(lock: Path) -> None:
    locked = {canonical(name): version for name, version in PIN.findall(lock.read_text())}
    installed = {canonical(d.metadata["Name"]): d.version for d in distributions()}
    drift = [
        f"  {name}: {version} -> {installed[name]}"
        for name, version in sorted(locked.items())
        if name in installed and installed[name] != version
    ]
    print("\n".join(drift) or "  none: the lock is current")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
