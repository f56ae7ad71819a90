"""The console's static files (bridge/admin/console_routes.py): served from the package with
the security headers, public, nothing else under /ui/; and the files themselves keep to the
CSP (no inline script or style) and never parse text as HTML."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from harness.admin_app import admin_client

from bridge.admin import console_routes

CONSOLE = Path(str(resources.files("bridge.admin") / "console"))
TOKEN = "console-unit-token"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture
async def client() -> AsyncIterator[TestClient[object, object]]:
    async with admin_client({"ADMIN_TOKEN": TOKEN}) as served:
        yield served


@pytest.mark.parametrize(
    ("path", "status", "content_type"),
    [
        ("/ui/", 200, "text/html"),
        ("/ui/index.html", 200, "text/html"),
        ("/ui/app.js", 200, "text/javascript"),
        ("/ui/page-dead-letters.js", 200, "text/javascript"),
        ("/ui/style.css", 200, "text/css"),
        ("/ui/missing.js", 404, "text/plain"),
        ("/ui/%2e%2e%2fserver.py", 404, "text/plain"),
        ("/ui/..%2fconsole_routes.py", 404, "text/plain"),
    ],
)
async def test_files_are_public_and_carry_the_security_headers(
    client: TestClient[object, object], path: str, status: int, content_type: str
) -> None:
    answer = await client.get(path)  # no token: the files are public, the API is not
    assert answer.status == status
    assert answer.content_type == content_type
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value, name


async def test_ui_redirects_to_the_index_and_the_api_still_wants_a_token(
    client: TestClient[object, object],
) -> None:
    answer = await client.get("/ui", allow_redirects=False)
    assert (answer.status, answer.headers["Location"]) == (301, "/ui/")
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert (await client.get("/webhooks")).status == 401
    assert "Content-Security-Policy" not in (await client.get("/healthz")).headers


def test_the_files_come_from_the_package_wherever_the_process_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    found = console_routes.assets()
    assert {"index.html", "app.js", "api.js", "dom.js", "style.css"} <= set(found)
    assert found["index.html"].body == (CONSOLE / "index.html").read_bytes()


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []  # style attributes, on* handlers, <style>, script bodies
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag == "style":
            self.inline.append("<style>")
        self.inline += [name for name, _ in attrs if name == "style" or name.startswith("on")]

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"script body {data.strip()[:40]}")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def test_the_index_has_no_inline_script_or_style() -> None:
    markup = _Markup()
    markup.feed((CONSOLE / "index.html").read_text(encoding="utf-8"))
    assert markup.scripts == [{"type": "module", "src": "app.js"}]
    assert markup.inline == []


SCRIPTS = sorted(CONSOLE.glob("*.js"))
# ways to turn text into markup or code, which untrusted data must never reach
UNSAFE = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
    r"createContextualFragment|setAttribute\(\s*[\"']style|localStorage|document\.cookie"
)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_scripts_build_text_nodes_only(script: Path) -> None:
    assert not UNSAFE.findall(script.read_text(encoding="utf-8"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_every_import_is_a_file_of_the_console(script: Path) -> None:
    imported = re.findall(r'from "\./([^"]+)"', script.read_text(encoding="utf-8"))
    assert all((CONSOLE / name).is_file() for name in imported), imported
