"""The console's flows in chromium against a real bridge (SPEC §10): sign in, create a
webhook and see it deliver, pause, test, rotate, delete, find a job, replay a dead letter,
and what a viewer may (not) do."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from harness.console import (
    ADMIN_TOKEN,
    BROWSER,
    VIEWER_TOKEN,
    Tab,
    World,
    endpoint_down,
    show,
    sign_in,
)
from harness.receiver import Receiver
from harness.waiting import wait_for
from playwright.async_api import Browser, Page, expect

pytestmark = [BROWSER, pytest.mark.timeout(60)]

WRITE_CONTROLS = re.compile(
    r"^(New webhook|Edit|Pause|Resume|Send test|Rotate secret|Delete|Dry run|Replay.*)$"
)


async def test_sign_in_keeps_the_token_in_the_tab_only(tab: Tab, console_world: World) -> None:
    page = tab.page
    await page.goto(console_world.ui())
    await page.get_by_label("Access token").fill("not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("This token is not accepted.")
    await sign_in(page, console_world)
    await expect(page.get_by_text("admin (admin)")).to_be_visible()
    stored = await page.evaluate(
        "[document.cookie, localStorage.length, sessionStorage.getItem('webhook-bridge.token')]"
    )
    assert stored == ["", 0, ADMIN_TOKEN]
    assert not [url for url in tab.seen.requests if ADMIN_TOKEN in url]
    await page.reload()  # the same tab keeps its session
    await expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("Access token")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0


async def test_create_a_webhook_see_it_deliver_then_pause_it(
    tab: Tab, console_world: World
) -> None:
    page, receiver = tab.page, console_world.receiver
    await sign_in(page, console_world)
    await show(page, console_world, "#/webhooks", "Webhooks")
    await page.get_by_role("link", name="New webhook").click()
    await page.get_by_label("Id", exact=True).fill("not valid!")
    await page.get_by_label("URL").fill(receiver.url("/crm-console"))
    await page.get_by_role("button", name="Create").click()
    id_field = page.get_by_label("Id", exact=True)
    await expect(id_field).to_have_attribute("aria-invalid", "true")
    await expect(id_field).to_be_focused()
    await id_field.fill("crm-console")
    await page.get_by_label("URL").fill("ftp://127.0.0.1/x")
    await page.get_by_role("button", name="Create").click()
    await expect(page.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#f-url-error")).to_contain_text("url:")

    await page.get_by_label("URL").fill(receiver.url("/crm-console"))
    await page.get_by_label("Scope").select_option("global")
    await page.get_by_label("Events").fill("console.*")
    await page.get_by_role("button", name="Create").click()
    secret = page.get_by_role("dialog").get_by_label("New secret")
    await expect(secret).to_have_value(re.compile(r"^whsec_"))
    await page.get_by_role("button", name="Done").click()
    await expect(page.get_by_role("heading", name="crm-console", level=1)).to_be_visible()
    await expect(page.get_by_text("no attempt yet")).to_be_visible()

    await console_world.publish("console.created", "j-console-create")
    await wait_for(lambda: receiver.count("/crm-console") == 1, 15, "no delivery to the webhook")
    await expect(page.get_by_text("status code: 200").first).to_be_visible()
    await expect(page.get_by_role("link", name="j-console-create")).to_be_visible()
    ratio = page.locator("figure.ratio figcaption")
    await expect(ratio).to_contain_text("100.0 % of 1 attempt in the last 1 h succeeded")
    await page.get_by_label("Period").select_option("24h")
    await expect(ratio).to_contain_text("in the last 24 h succeeded, in bars of 24 min")

    await page.get_by_role("button", name="Pause").click()
    await expect(page.get_by_role("button", name="Resume")).to_be_visible()
    await expect(page.get_by_text("no (paused)")).to_be_visible()
    assert (await console_world.api("GET", "/webhooks/crm-console"))["active"] is False


async def test_a_test_send_to_a_failing_receiver_shows_its_answer(
    tab: Tab, console_world: World
) -> None:
    page = tab.page
    console_world.receiver.reply("/broken", 500)
    await console_world.api(
        "POST", "/webhooks", {"id": "broken", "url": console_world.receiver.url("/broken")}
    )
    await sign_in(page, console_world)
    await show(page, console_world, "#/webhooks/broken", "broken")
    await page.get_by_role("button", name="Send test").click()
    outcome = page.locator(".test-result")
    await expect(outcome).to_contain_text("unexpected status code: 500")
    await expect(outcome).to_contain_text("HTTP 500")
    ratio = page.locator("figure.ratio figcaption")
    await expect(ratio).to_contain_text("0.0 % of 1 attempt in the last 1 h succeeded")
    await show(page, console_world, "#/webhooks", "Webhooks")
    await page.get_by_label("Status").select_option("error")
    row = page.get_by_role("row").filter(has_text="broken")
    await expect(row).to_contain_text("unexpected status code: 500")


async def test_edit_rotate_shows_the_secret_once_and_delete_asks_first(
    tab: Tab, console_world: World
) -> None:
    page = tab.page
    await console_world.api(
        "POST", "/webhooks", {"id": "doomed", "url": console_world.receiver.url("/doomed")}
    )
    await sign_in(page, console_world)
    await show(page, console_world, "#/webhooks/doomed", "doomed")
    await page.get_by_role("link", name="Edit").click()
    await page.get_by_label("Description").fill("Soon gone")
    await page.get_by_label("Rate limit (per second)").fill("0")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_label("Rate limit (per second)")).to_have_attribute(
        "aria-invalid", "true"
    )
    await page.get_by_label("Rate limit (per second)").fill("5")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("heading", name="doomed", level=1)).to_be_visible()
    await expect(page.get_by_text("Soon gone")).to_be_visible()
    await expect(page.get_by_text("5 / s")).to_be_visible()

    await page.get_by_role("button", name="Rotate secret").click()
    await page.get_by_role("dialog").get_by_role("button", name="Rotate").click()
    secret = page.get_by_role("dialog").get_by_label("New secret")
    await expect(secret).to_have_value(re.compile(r"^whsec_"))
    shown = await secret.input_value()
    await page.get_by_role("button", name="Done").click()
    await expect(page.locator("dialog")).to_have_count(0)  # gone, not only closed
    assert shown not in await page.content()

    await page.get_by_role("button", name="Delete").click()
    await page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    await expect(page.get_by_role("heading", name="doomed", level=1)).to_be_visible()
    await page.get_by_role("button", name="Delete").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    await expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    await expect(page.get_by_role("link", name="doomed", exact=True)).to_have_count(0)
    status, _text = await console_world.bridge.get(
        "/webhooks/doomed", {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert status == 404


async def test_a_jobs_deliveries_as_a_timeline(tab: Tab, console_world: World) -> None:
    page = tab.page
    await console_world.publish("job.completed", "j-console-find")
    await wait_for(lambda: _delivered_job(console_world, "j-console-find"), 15, "not delivered")
    await sign_in(page, console_world)
    await show(page, console_world, "#/deliveries", "Deliveries")
    await page.get_by_label("Id", exact=True).fill("j-console-find")
    await page.get_by_role("button", name="Find").click()
    await expect(page.get_by_role("heading", name="Attempts of job j-console-find")).to_be_visible()
    step = page.locator("ol.timeline li")
    await expect(step).to_have_count(1)
    await expect(step).to_contain_text("attempt 1: HTTP 200")
    await expect(step).to_contain_text("delivered")
    assert "j-console-find" in page.url, "a search is a link one can share"


def _delivered_job(world: World, job_id: str) -> bool:
    return any(r.json().get("job_id") == job_id for r in world.receiver.received("/erp"))


async def test_replay_a_dead_letter_and_see_it_delivered(tab: Tab, console_world: World) -> None:
    page, receiver = tab.page, console_world.receiver
    await console_world.dead_letter("replay.check", "j-console-replay", "/recovering")
    receiver.reply("/recovering", 200)  # the receiver is back
    await sign_in(page, console_world)
    await show(page, console_world, "#/dead-letters?event=replay.check", "Dead letters")
    letter = page.locator("details.letter")
    await expect(letter).to_have_count(1)
    await letter.locator("summary").click()
    await expect(letter.locator("pre.payload")).to_contain_text('"job_id": "j-console-replay"')
    await expect(letter.get_by_role("cell", name="500", exact=True)).to_be_visible()

    await page.get_by_role("button", name="Dry run").click()
    await expect(page.get_by_text("Dry run: 1 would be replayed")).to_be_visible()
    assert receiver.count("/recovering") == 1, "a dry run replayed"
    await page.get_by_role("button", name="Replay 1").click()
    progress = page.get_by_role("progressbar")
    await expect(progress).to_have_attribute("value", "1")
    await expect(
        page.get_by_text("1 delivered, 0 dead-lettered again, 0 under way")
    ).to_be_visible()
    assert receiver.count("/recovering") == 2


async def test_a_viewer_sees_no_write_control_and_writes_are_refused(
    tab: Tab, console_world: World
) -> None:
    page = tab.page
    await sign_in(page, console_world, VIEWER_TOKEN)
    await expect(page.get_by_text("viewer (read only)")).to_be_visible()
    for fragment, heading in (
        ("#/webhooks", "Webhooks"),
        ("#/webhooks/erp", "erp"),
        ("#/dead-letters", "Dead letters"),
        ("#/webhooks/new", "New webhook"),
    ):
        await show(page, console_world, fragment, heading)
        await _no_write_controls(page)
    await expect(page.get_by_text("This token may only read.")).to_be_visible()
    status = await page.evaluate(
        """async () => (await fetch('/webhooks/erp/test', {method: 'POST', headers:
        {Authorization: 'Bearer ' + sessionStorage.getItem('webhook-bridge.token')}})).status"""
    )
    assert status == 403


async def _no_write_controls(page: Page) -> None:
    await expect(page.get_by_role("button", name=WRITE_CONTROLS)).to_have_count(0)
    await expect(page.get_by_role("link", name=WRITE_CONTROLS)).to_have_count(0)


async def test_times_are_shown_in_the_browsers_zone(browser: Browser, console_world: World) -> None:
    zone = "Pacific/Chatham"  # +12:45 or +13:45: no other zone shows the same clock
    context = await browser.new_context(timezone_id=zone, locale="en-GB")
    page = await context.new_page()
    await console_world.publish("job.completed", "j-console-zone")
    await wait_for(lambda: _delivered_job(console_world, "j-console-zone"), 15, "not delivered")
    await sign_in(page, console_world)
    await show(page, console_world, "#/deliveries?job_id=j-console-zone", "Deliveries")
    shown = page.locator("ol.timeline time").first
    at = datetime.fromisoformat(await shown.get_attribute("datetime") or "")
    await expect(shown).to_contain_text(at.astimezone(ZoneInfo(zone)).strftime("%H:%M:%S"))
    await context.close()


async def test_the_overview_lists_endpoints_in_trouble(tab: Tab, console_world: World) -> None:
    page = tab.page
    await sign_in(page, console_world)
    trouble = page.locator("section", has=page.get_by_role("heading", name="Endpoints in trouble"))
    await expect(trouble).to_contain_text("Every endpoint is healthy")

    down = Receiver()  # an origin of its own: the breaker is per origin (SPEC §11)
    await down.start()
    try:
        await _outage(console_world, down)
        await page.reload()
        row = trouble.get_by_role("row").filter(has_text=down.url("").rstrip("/"))
        await expect(row).to_contain_text(re.compile("open|half_open"))
    finally:
        await _recovered(console_world, down)


async def _outage(world: World, down: Receiver) -> None:
    """A webhook whose endpoint answers 503 until its breaker opens."""
    down.reply("/hook", 503)
    await endpoint_down(world, "outage", down.url("/hook"))


async def _recovered(world: World, down: Receiver) -> None:
    """The endpoint answers again: its held deliveries arrive, and the webhook goes away."""
    down.reply("/hook", 200)
    jobs = lambda: {r.json()["job_id"] for r in down.received("/hook")}  # noqa: E731
    await wait_for(lambda: len(jobs()) == 6, 90, lambda: f"{len(jobs())} of 6 after recovery")
    await world.api("DELETE", "/webhooks/outage")
    await down.stop()
