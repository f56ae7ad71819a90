"""The web console (SPEC §10) in a real browser: Debian's chromium driven by Playwright, and a
world for it to look at (a nats-server, the `webhook-bridge` command, a loopback receiver).

The browser is the system's (`CHROMIUM`, default /usr/bin/chromium), never a download, and
runs with chromium's own background connections switched off: the machine's network is closed.

`python -m harness.console docs/console` (with `tests/` on PYTHONPATH: `make screenshots`)
regenerates the screenshots of every page at laptop and phone widths shown in the README.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext
from playwright.async_api import Browser, Page, async_playwright, expect

from harness.bridge import FAST_ENV, BridgeProcess
from harness.nats import NatsServer
from harness.ports import free_port
from harness.publish import job_event, publish_event
from harness.receiver import Receiver
from harness.waiting import wait_for

BROWSER = pytest.mark.asyncio(loop_scope="session")  # the browser's loop: tests/browser
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_TOKEN = "console-admin-token"
VIEWER_TOKEN = "console-viewer-token"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
AXE = Path(__file__).resolve().parents[1] / "browser" / "vendor" / "axe-core" / "axe.min.js"
CONFIG = """webhooks:
  - id: erp
    url: {url}
    description: The ERP's job feed
    events: ["job.*", "console.*"]
"""


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if shutil.which(CHROMIUM) is None:
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class World:
    """What the console looks at: a bridge (admin and viewer tokens, the YAML webhook `erp`
    on the receiver's /erp for every job event) and a producer's JetStream context."""

    bridge: BridgeProcess
    receiver: Receiver
    js: JetStreamContext

    @property
    def origin(self) -> str:
        return self.bridge.admin_url("")

    def ui(self, fragment: str = "") -> str:
        return self.bridge.admin_url("/ui/") + fragment

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        answer = await self.bridge.call(method, path, body, _bearer(ADMIN_TOKEN))
        assert answer.status < 300, f"{method} {path}: {answer.status} {answer.text}"
        return answer.json() if answer.text else None

    async def publish(self, event: str, job_id: str, **fields: Any) -> None:
        await publish_event(self.js, job_event(event, job_id, **fields), f"{job_id}-{event}")

    async def dead_letter(self, event: str, job_id: str, path: str, **fields: Any) -> None:
        """An event whose per-job URL (`path` of the receiver, answering 500) dead-letters it."""
        self.receiver.reply(path, 500)
        await self.publish(event, job_id, webhook=self.receiver.url(path), **fields)
        await wait_for(lambda: self._dead(job_id), 15, f"no dead letter of {job_id}")

    async def _dead(self, job_id: str) -> bool:
        answer = await self.bridge.call("GET", "/dlq?all=true", None, _bearer(ADMIN_TOKEN))
        return any(d["job_id"] == job_id for d in answer.json()["dead_letters"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def world(workdir: Path) -> AsyncIterator[World]:
    server = NatsServer(store_dir=workdir / "nats", log_path=workdir / "nats-server.log")
    receiver = Receiver()
    await server.start()
    await receiver.start()
    config = workdir / "bridge.yaml"
    config.write_text(CONFIG.format(url=receiver.url("/erp")), encoding="utf-8")
    env = {
        **FAST_ENV,
        "NATS_URL": server.url,
        "BRIDGE_CONFIG": str(config),
        "DEFAULT_WEBHOOKS": "erp",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "VIEWER_TOKEN": VIEWER_TOKEN,
        "WEBHOOK_MAX_RETRY": "0",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",  # the receiver is on loopback
    }
    bridge = BridgeProcess(env, workdir)
    nc = await nats.connect(server.url)
    try:
        await bridge.start()
        await bridge.wait_ready()
        yield World(bridge, receiver, nc.jetstream())
    finally:
        await nc.close()
        if bridge.running:
            await bridge.terminate()
        await receiver.stop()
        await server.stop()


@dataclass
class Seen:
    """What a page did: every request's URL, every dialog it opened, every uncaught error."""

    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Tab:
    """A test's page, and what it did (checked when the test ends)."""

    page: Page
    seen: Seen


async def sign_in(page: Page, world: World, token: str = ADMIN_TOKEN) -> None:
    await page.goto(world.ui())
    await page.get_by_label("Access token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()


# Every page of the console: (file name, fragment, heading that shows it has loaded)
PAGES = [
    ("overview", "#/overview", "Overview"),
    ("webhooks", "#/webhooks", "Webhooks"),
    ("webhook", "#/webhooks/erp", "erp"),
    ("webhook-new", "#/webhooks/new", "New webhook"),
    ("deliveries", "#/deliveries?job_id=j-shown", "Deliveries"),
    ("dead-letters", "#/dead-letters", "Dead letters"),
    ("audit", "#/audit", "Audit"),
]


async def show(page: Page, world: World, fragment: str, heading: str) -> None:
    """Open a page of the console and wait until its data is shown."""
    await page.goto(world.ui(fragment))
    await expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
    await expect(page.locator("[aria-busy=true]")).to_have_count(0)


async def populate(world: World) -> None:
    """Something on every page: a delivered job, a dead letter, API webhooks, a test that
    succeeded and one that failed."""
    await world.publish("job.completed", "j-shown")
    await world.dead_letter("job.failed", "j-refused", "/refusing")
    await world.api("POST", "/webhooks", {"id": "crm", "url": world.receiver.url("/crm")})
    await world.api("POST", "/webhooks/crm/test")
    billing = {"id": "billing", "url": world.receiver.url("/refusing"), "description": "Down"}
    await world.api("POST", "/webhooks", billing)
    await world.api("POST", "/webhooks/billing/test")
    await wait_for(lambda: world.receiver.count("/erp") >= 1, 15, "nothing delivered to erp")
    await _an_endpoint_down(world)


async def _an_endpoint_down(world: World) -> None:
    """A webhook whose origin nothing listens on, listed among the endpoints in trouble."""
    await endpoint_down(world, "warehouse", f"http://127.0.0.1:{free_port()}/hooks")


async def endpoint_down(world: World, webhook_id: str, url: str) -> None:
    """A global webhook at `url`, which fails, gets job events until the breaker of its
    endpoint opens (SPEC §11; WEBHOOK_BREAKER_FAILURES is 5)."""
    await world.api("POST", "/webhooks", {"id": webhook_id, "url": url, "scope": "global"})
    for n in range(6):
        await world.publish("job.completed", f"{webhook_id}-{n}")
    origin = "/".join(url.split("/", 3)[:3])

    async def opened() -> bool:
        answer = await world.api("GET", "/endpoints")
        return any(e["endpoint"] == origin and e["state"] != "healthy" for e in answer["endpoints"])

    await wait_for(opened, 60, f"the breaker of {origin} did not open")


async def capture(browser: Browser, world: World, out_dir: Path) -> list[Path]:
    """A full-page screenshot of every page at laptop and phone widths, into `out_dir`."""
    written = []
    for width, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        page = await context.new_page()
        await sign_in(page, world)
        for name, fragment, heading in PAGES:
            await show(page, world, fragment, heading)
            if name == "overview":  # a few updates draw the chart
                await expect(page.locator("figure.sparkline")).to_be_visible()
            path = out_dir / f"{name}-{width}.png"
            await page.screenshot(path=str(path), full_page=True)
            written.append(path)
        await context.close()
    return written


async def _screenshots(workdir: Path, out_dir: Path) -> None:
    async with world(workdir) as shown, chromium() as browser:
        await populate(shown)
        for path in await capture(browser, shown, out_dir):
            print(path)


def main(out_dir: Path) -> None:
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / "console-screenshots"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(_screenshots(workdir, out_dir))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console"))
