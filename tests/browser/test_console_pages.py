"""Every page of the console, at laptop and phone widths: no serious or critical accessibility
violation (axe-core, vendored under tests/browser/vendor for these tests only), nothing wider
than the screen, and the page's data shown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from harness.console import AXE, BROWSER, LAPTOP, PAGES, PHONE, World, populate, show, sign_in
from playwright.async_api import Browser, Page, expect

pytestmark = [BROWSER, pytest.mark.timeout(90)]

SEVERE = ("serious", "critical")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def populated(console_world: World) -> World:
    await populate(console_world)
    return console_world


@pytest_asyncio.fixture(loop_scope="session", params=["laptop", "phone"])
async def axe_page(
    request: pytest.FixtureRequest, browser: Browser, populated: World
) -> AsyncIterator[Page]:
    viewport = LAPTOP if request.param == "laptop" else PHONE
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    # an init script, because the console's CSP rightly refuses any script injected later
    await context.add_init_script(path=str(AXE))
    yield await context.new_page()
    await context.close()


async def violations(page: Page) -> list[str]:
    found: list[dict[str, Any]] = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in found
        if v["impact"] in SEVERE
    ]


async def fits(page: Page) -> bool:
    width: bool = await page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    return width


async def test_the_sign_in_page(axe_page: Page, populated: World) -> None:
    await axe_page.goto(populated.ui())
    await expect(axe_page.get_by_label("Access token")).to_be_focused()
    assert await violations(axe_page) == []
    assert await fits(axe_page)
    # the check can fail: an unlabelled field is a critical violation
    await axe_page.evaluate(
        "document.querySelector('form').append(document.createElement('input'))"
    )
    assert [v for v in await violations(axe_page) if v.startswith("label ")]


async def test_every_page_is_accessible_and_fits(axe_page: Page, populated: World) -> None:
    await sign_in(axe_page, populated)
    problems = {}
    for name, fragment, heading in PAGES:
        await show(axe_page, populated, fragment, heading)
        await expect(axe_page.get_by_role("heading", name=heading, level=1)).to_be_focused()
        found = await violations(axe_page)
        if not await fits(axe_page):
            found.append("wider than the screen")
        if found:
            problems[name] = found
    assert not problems, problems


async def test_a_dialog_and_an_opened_dead_letter(axe_page: Page, populated: World) -> None:
    await sign_in(axe_page, populated)
    await show(axe_page, populated, "#/dead-letters", "Dead letters")
    await axe_page.locator("details.letter summary").first.click()
    assert await violations(axe_page) == []
    await show(axe_page, populated, "#/webhooks/crm", "crm")
    await axe_page.get_by_role("button", name="Delete").click()
    dialog = axe_page.get_by_role("dialog")
    await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    assert await violations(axe_page) == []
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_have_count(0)
