"""The docker-compose demo receiver: prints each webhook with both signatures checked.

`POST /hooks/greenlight` always answers 200; `POST /hooks/flaky` answers 503 to every third
request, so the dashboard shows retries. Runs in the webhook-bridge image (aiohttp and the
bridge's signing module are there): `python /app/receiver.py`.
"""

from __future__ import annotations

import json
import os

from aiohttp import web

from bridge.policy.signing import verify_delivery

SECRET = os.environ["WEBHOOK_SECRET"]
PORT = int(os.environ.get("RECEIVER_PORT", "9000"))
FLAKY_EVERY = 3


async def receive(request: web.Request) -> web.Response:
    body, name = await request.read(), request.match_info["name"]
    counts = request.app["counts"]
    counts[name] = counts.get(name, 0) + 1
    status = 503 if name == "flaky" and counts[name] % FLAKY_EVERY == 0 else 200
    event = json.loads(body)
    verdict = (
        "signatures verified"
        if verify_delivery(SECRET, request.headers, body)
        else "SIGNATURE MISMATCH"
    )
    where = f"{event.get('event')} {event.get('job_id')} → /hooks/{name}"
    print(f"{status} {where} {request.headers['X-Greenlight-Delivery']} {verdict}", flush=True)
    return web.Response(status=status)


def main() -> None:
    app = web.Application()
    app["counts"] = {}
    app.router.add_post("/hooks/{name}", receive)
    web.run_app(app, host="0.0.0.0", port=PORT, print=None)


if __name__ == "__main__":
    main()
