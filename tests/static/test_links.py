"""Every relative link in the repository's Markdown resolves: to a file or folder inside the
repository (never outside it, as `../shared/SPEC.md` once did), and an `#anchor` to a heading
of the Markdown file it names (GitHub's slugs)."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", flags=re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", flags=re.DOTALL)
# [text](target "title"), ![alt](target), [text](<target>)
_INLINE = re.compile(r"!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", flags=re.MULTILINE)
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$", flags=re.MULTILINE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def markdown_files() -> list[Path]:
    """The tracked Markdown files (every *.md outside hidden folders and .venv without git)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", "*.md"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout.split("\0")
        return sorted(ROOT / name for name in listed if name and (ROOT / name).is_file())
    except (OSError, subprocess.CalledProcessError):
        return sorted(
            path
            for path in ROOT.rglob("*.md")
            if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
        )


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans: links there are not links."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text as rendered, lower-cased, punctuation dropped
    (hyphens and underscores kept), spaces turned into hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The anchors of a Markdown file's headings; repeated headings get -1, -2, ..."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return frozenset(found)


def links(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    targets = [*_INLINE.findall(text), *_REFERENCE.findall(text)]
    return [target.strip("<>") for target in targets]


def problems(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for target in links(path):
        if not target or _SCHEME.match(target) or target.startswith("//"):
            continue  # absolute URLs (https:, mailto:) are not checked here
        where, _, anchor = target.partition("#")
        resolved = (path.parent / unquote(where)).resolve() if where else path
        if not resolved.is_relative_to(root):
            found.append(f"{target}: points outside the repository")
        elif not resolved.exists():
            found.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            found.append(f"{target}: no heading #{anchor} in {resolved.relative_to(root)}")
    return found


FILES = markdown_files()


def test_the_docs_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in FILES}
    assert {"README.md", "SECURITY.md", "docs/contract.md", "docs/receivers.md"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_relative_links_resolve_inside_the_repository(path: Path) -> None:
    assert problems(path) == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("WebhookBridgeDeadLetters", "webhookbridgedeadletters"),
        (
            "Chaos ledger: every (event, URL) pair accounted for",
            "chaos-ledger-every-event-url-pair-accounted-for",
        ),
        ("1. Producers (NATS JetStream)", "1-producers-nats-jetstream"),
        ("`GET /deliveries` and the delivery_log", "get-deliveries-and-the-delivery_log"),
        ("Containers and Kubernetes", "containers-and-kubernetes"),
    ],
)
def test_slugs_are_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_a_broken_link_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Quick start\n", encoding="utf-8")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Only heading\n\n[fine](../README.md#quick-start) [fine](#only-heading) "
        "[out](../../outside.md) [missing](missing.md) [anchor](../README.md#nope) "
        "`[in code](ignored.md)`\n\n```\n[in a block](ignored.md)\n```\n",
        encoding="utf-8",
    )
    assert problems(page.resolve(), tmp_path.resolve()) == [
        "../../outside.md: points outside the repository",
        "missing.md: no such file",
        "../README.md#nope: no heading #nope in README.md",
    ]
