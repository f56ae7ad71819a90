"""The locks: every package the project names is pinned with hashes, the image takes the same
versions as the tests, and the Makefile installs from the lock and from nothing else."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DEV_LOCK = ROOT / "requirements" / "dev.lock"
DOCKER_LOCK = ROOT / "deploy" / "docker" / "requirements.lock"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
Pins = dict[str, tuple[str, list[str]]]  # name → (version, sha256 hashes)


def pins(lock: Path) -> Pins:
    """Name → (pinned version, hashes); environment markers are dropped."""
    text = re.sub(r"\\\n", " ", lock.read_text())
    found: Pins = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement, *_marker = line.split("--hash=")[0].split(";")
        name, _, version = requirement.strip().partition("==")
        found[canonicalize_name(name)] = (version, re.findall(r"--hash=sha256:(\S+)", line))
    return found


def wanted(*extras: str) -> list[Requirement]:
    """The project's requirements with the given extras, its own self-references left out."""
    optional = PROJECT["project"]["optional-dependencies"]
    texts = [*PROJECT["project"]["dependencies"], *(t for e in extras for t in optional[e])]
    return [r for r in map(Requirement, texts) if r.name != PROJECT["project"]["name"]]


def build_requirements() -> list[Requirement]:
    return [Requirement(text) for text in PROJECT["build-system"]["requires"]]


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        (DEV_LOCK, [*wanted(*PROJECT["project"]["optional-dependencies"]), *build_requirements()]),
        (DOCKER_LOCK, wanted("speed")),
    ],
    ids=["dev", "docker"],
)
def test_every_requirement_is_pinned_within_its_range(
    lock: Path, requirements: list[Requirement]
) -> None:
    locked = pins(lock)
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in {lock.name}: run `make lock`"
        version, _hashes = locked[name]
        assert requirement.specifier.contains(version), f"{requirement}: lock has {version}"


@pytest.mark.parametrize("lock", [DEV_LOCK, DOCKER_LOCK], ids=["dev", "docker"])
def test_every_pin_has_sha256_hashes(lock: Path) -> None:
    for name, (version, hashes) in pins(lock).items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), f"{name}: not pinned"
        assert hashes, f"{name}=={version} has no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name


def test_the_image_runs_the_versions_the_tests_ran() -> None:
    dev = pins(DEV_LOCK)
    for name, (version, _hashes) in pins(DOCKER_LOCK).items():
        assert dev[name][0] == version, f"{name}: image {version}, tests {dev[name][0]}"


def test_make_installs_from_the_lock_only() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = re.findall(r"\$\(BIN\)/pip install[^\n]*", makefile)
    assert installs, "the Makefile installs nothing into .venv"
    for line in installs:
        assert "--no-deps" in line, line
        from_lock = "--require-hashes" in line and "-r $(LOCK)" in line
        assert from_lock or line.endswith("-e ."), line
