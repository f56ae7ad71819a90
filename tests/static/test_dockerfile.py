"""The Dockerfile, checked without Docker: stages, the user, the health check, the stop signal,
what it copies, and the hash-pinned requirements it installs."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest

from bridge.config.settings import FIELDS

ROOT = Path(__file__).resolve().parents[2]
Instruction = tuple[str, str]  # (INSTRUCTION, arguments)


def instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not _comment(line))
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def _comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def stages(found: list[Instruction]) -> list[list[Instruction]]:
    """The build stages, each from its FROM on."""
    split: list[list[Instruction]] = []
    for instruction in found:
        if instruction[0] == "FROM":
            split.append([])
        if split:
            split[-1].append(instruction)
    return split


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(dockerfile: list[Instruction]) -> list[Instruction]:
    return stages(dockerfile)[-1]


def _args(stage: list[Instruction], keyword: str) -> list[str]:
    return [arguments for name, arguments in stage if name == keyword]


def test_multi_stage_on_a_slim_python_base(dockerfile: list[Instruction]) -> None:
    assert len(stages(dockerfile)) >= 2
    (base,) = _args(dockerfile, "ARG")
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim(-\w+)?", base)
    assert all(
        arguments.startswith("${PYTHON_IMAGE} AS ") for arguments in _args(dockerfile, "FROM")
    )


def test_the_wheel_is_built_in_the_first_stage_and_only_copied_after(
    dockerfile: list[Instruction], final: list[Instruction]
) -> None:
    build = stages(dockerfile)[0]
    assert any("pip wheel --no-deps" in run for run in _args(build, "RUN"))
    assert any("--require-hashes" in run for run in _args(build, "RUN"))
    assert all("--from=build" in copy for copy in _args(final, "COPY"))


@pytest.mark.parametrize(
    "tool", ["gcc", "build-essential", "apt-get install", "pip install", "curl"]
)
def test_no_build_tools_or_installs_in_the_final_image(final: list[Instruction], tool: str) -> None:
    assert not any(tool in run for run in _args(final, "RUN"))


def test_runs_as_a_numeric_non_root_user(final: list[Instruction]) -> None:
    (user,) = _args(final, "USER")
    uid, _, gid = user.partition(":")
    assert int(uid) > 0  # numeric, so Kubernetes' runAsNonRoot can check it
    assert int(gid) > 0


def test_healthcheck_asks_healthz_with_python(final: list[Instruction]) -> None:
    (check,) = _args(final, "HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert "--interval=" in options
    assert "--timeout=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    assert "/healthz" in argv[2]
    compile(argv[2], "HEALTHCHECK", "exec")  # the one-liner is valid Python


def test_stops_with_sigterm_and_exposes_the_http_port(final: list[Instruction]) -> None:
    assert _args(final, "STOPSIGNAL") == ["SIGTERM"]
    assert _args(final, "EXPOSE") == [str(FIELDS["HTTP_PORT"][1])]
    assert json.loads(_args(final, "ENTRYPOINT")[0]) == ["webhook-bridge"]
    assert json.loads(_args(final, "CMD")[0]) == ["run"]


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, enough for this file: last match wins, `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        bare = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
            ignored = not negated
    return ignored


def test_everything_copied_exists_and_is_in_the_build_context(
    dockerfile: list[Instruction],
) -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not _comment(line)]
    copied = [
        source
        for arguments in _args(dockerfile, "COPY")
        if not arguments.startswith("--from")
        for source in arguments.split()[:-1]
    ]
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"
    assert _ignored("tests/conftest.py", patterns)
    assert _ignored(".venv/bin/python", patterns)
