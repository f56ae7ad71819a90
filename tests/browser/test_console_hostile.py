"""Untrusted data in the console stays text (SPEC §10): a dead letter whose job id, payload
and event hold markup and script renders them literally, and nothing of them runs."""

from __future__ import annotations

import pytest
from harness.console import BROWSER, Tab, World, show, sign_in
from playwright.async_api import expect

pytestmark = [BROWSER, pytest.mark.timeout(60)]

# Each would set window.__pwned, or open a dialog, if it were ever interpreted.
JOB_ID = '<img src=x onerror="window.__pwned=1;alert(1)">'
SCRIPT = "<script>window.__pwned=2;alert(2)</script>"
LINK = '<a href="javascript:window.__pwned=3">click</a>'


async def test_a_hostile_dead_letter_renders_inert(tab: Tab, console_world: World) -> None:
    page = tab.page
    await console_world.dead_letter(
        "hostile.event", JOB_ID, "/hostile", note=SCRIPT, status=LINK, tenant_id=SCRIPT
    )
    await sign_in(page, console_world)
    await show(page, console_world, "#/dead-letters?event=hostile.event", "Dead letters")
    letter = page.locator("details.letter")
    await letter.locator("summary").click()
    await expect(letter.get_by_text(JOB_ID, exact=True)).to_be_visible()
    payload = letter.locator("pre.payload")
    await expect(payload).to_contain_text(SCRIPT)
    await expect(payload).to_contain_text("javascript:window.__pwned=3")
    assert await page.locator("main img, main script, main a[href^=javascript]").count() == 0

    await show(page, console_world, f"#/deliveries?job_id={JOB_ID}", "Deliveries")
    await expect(page.get_by_role("heading", name=f"Attempts of job {JOB_ID}")).to_be_visible()
    await expect(page.locator("ol.timeline li")).to_have_count(1)
    assert await page.locator("main img, main script").count() == 0
    assert await page.evaluate("window.__pwned") is None
    # the page fixture fails the test if any dialog opened or a request left the bridge
