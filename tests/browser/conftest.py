"""The console's browser tests: one chromium per session, one bridge world per module, a fresh
page per test that records every request and dialog.

Every test here runs in the session's event loop, the browser's (each module's `pytestmark`
says so: `harness.console.BROWSER`). Without chromium the tests
skip with the reason, unless CI is set: there they fail (`.ci/run` installs chromium).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from harness.console import Seen, Tab, World, chromium, chromium_missing, world
from playwright.async_api import Browser, Dialog, Request, expect

EXPECT_TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    ours = [item for item in items if here in Path(str(item.path)).parents]
    missing = chromium_missing()
    if missing and not os.environ.get("CI"):
        for item in ours:
            item.add_marker(pytest.mark.skip(reason=missing))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    async with chromium() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def console_world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with world(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def tab(browser: Browser, console_world: World) -> AsyncIterator[Tab]:
    """A page in a fresh context (its own sessionStorage). At the end: every request it made
    went to the bridge, no script opened a dialog, and no script error went uncaught."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    seen = Seen()

    def request(sent: Request) -> None:
        seen.requests.append(sent.url)

    async def dialog(opened: Dialog) -> None:
        seen.dialogs.append(opened.message)
        await opened.dismiss()

    page.on("request", request)
    page.on("dialog", dialog)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    yield Tab(page, seen)
    await context.close()
    ours = (console_world.origin + "/", "data:")
    elsewhere = [url for url in seen.requests if not url.startswith(ours)]
    assert not elsewhere, f"requests to another host: {elsewhere}"
    assert not seen.dialogs, f"a script opened dialogs: {seen.dialogs}"
    assert not seen.errors, f"uncaught errors in the page: {seen.errors}"
