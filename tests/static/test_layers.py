"""The parts of `bridge/` stay apart: a static check of every import, TYPE_CHECKING ones too.

From the bottom up: `config` and `policy` (pure: no I/O, no logging) → `observability` →
`delivery` → `jetstream` → `admin` → `app` (the wiring) → `cli`. A part imports only parts
below it (config and policy share the floor), and only `jetstream` imports nats.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BRIDGE = Path(__file__).resolve().parents[2] / "bridge"
ORDER = ["config", "policy", "observability", "delivery", "jetstream", "admin", "app", "cli"]
FLOOR = {"config", "policy"}
# what pure policy may not touch: network, processes, clocks of the event loop, logging
IMPURE = {
    "nats",
    "aiohttp",
    "asyncio",
    "socket",
    "ssl",
    "subprocess",
    "structlog",
    "prometheus_client",
}


def part_of(module: str) -> str | None:
    """`bridge.policy.routing` → `policy`; `bridge.app` → `app`; `bridge` itself → None."""
    names = module.split(".")
    return names[1] if names[0] == "bridge" and len(names) > 1 else None


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "bridge":
                found |= {f"bridge.{alias.name}" for alias in node.names}
    return found


MODULES = sorted(p for p in BRIDGE.rglob("*.py"))


def module_part(path: Path) -> str:
    relative = path.relative_to(BRIDGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def rank(part: str) -> int:
    return 0 if part in FLOOR else ORDER.index(part)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(BRIDGE)))
def test_a_part_imports_only_parts_below_it(path: Path) -> None:
    part = module_part(path)
    if part not in ORDER:
        return  # __init__, __main__: the package's door
    for module in imports(path):
        other = part_of(module)
        if other in ORDER and other != part:
            assert rank(other) <= rank(part), f"{part} imports {module}, a part above it"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(BRIDGE)))
def test_only_jetstream_imports_nats(path: Path) -> None:
    if module_part(path) != "jetstream":
        assert not {m for m in imports(path) if m.split(".")[0] == "nats"}


@pytest.mark.parametrize(
    "path", [p for p in MODULES if module_part(p) == "policy"], ids=lambda p: p.name
)
def test_policy_is_pure(path: Path) -> None:
    assert not {m for m in imports(path) if m.split(".")[0] in IMPURE}


def test_every_part_is_known() -> None:
    parts = {module_part(p) for p in MODULES} - {"__init__", "__main__"}
    assert parts == set(ORDER)
