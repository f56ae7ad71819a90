"""The docs stay true: README keeps its quick start, the configuration reference of
docs/contract.md matches the config model, and the Python snippets of every doc are clean.
(The receiver snippets of docs/receivers.md are executed against real signatures in
tests/unit/test_security_doc.py.)"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bridge.config.settings import FIELDS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONTRACT = ROOT / "docs" / "contract.md"
DOCS = [ROOT / "README.md", ROOT / "SECURITY.md", *sorted((ROOT / "docs").glob("*.md"))]
RUFF = Path(sys.executable).parent / "ruff"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "config_reference", ROOT / "tools/config_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _python_blocks() -> list[tuple[str, str]]:
    """(where, code) of every ```python block of the docs."""
    blocks = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for n, code in enumerate(
            re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL), 1
        ):
            blocks.append((f"{doc.relative_to(ROOT).as_posix()}#{n}", code))
    return blocks


def test_quick_start_is_the_two_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "make demo" in quick_start
    assert "make test" in quick_start


def test_readme_is_a_newcomers_page() -> None:
    assert len(README.encode()) < 15_000, "README.md is for newcomers: move details to docs/"


def test_configuration_reference_is_generated_from_the_model() -> None:
    generator = _generator()
    assert generator.TARGET == CONTRACT
    assert set(generator.MEANINGS) == set(FIELDS), "a setting of Settings has no docstring"
    contract = CONTRACT.read_text(encoding="utf-8")
    assert generator.updated(contract) == contract, "run: make docs"


def test_the_docs_have_python_snippets() -> None:
    where = {name.split("#")[0] for name, _code in BLOCKS}
    assert {"docs/producers.md", "docs/receivers.md"} <= where


BLOCKS = _python_blocks()


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _code in BLOCKS])
def test_python_snippets_compile_and_are_ruff_clean(where: str, code: str) -> None:
    compile(code, where, "exec")
    for command in (["check", "--quiet"], ["format", "--check", "--quiet"]):
        result = subprocess.run(
            [str(RUFF), *command, "--stdin-filename", "doc_snippet.py", "-"],
            input=code,
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        assert result.returncode == 0, where + "\n" + result.stdout + result.stderr
