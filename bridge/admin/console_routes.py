"""The web console of SPEC §10: its static files, served at `/ui/` with strict headers.

The files ship inside the package (`bridge/admin/console/`, setuptools package-data) and are
read once, when the app is built, through importlib.resources: serving them depends neither
on the working directory nor on anything outside the package. Only the files found there are
served, by name, from memory; any other path under `/ui/` is 404.

Every `/ui` answer carries a Content-Security-Policy that allows scripts, styles and requests
from the bridge's own origin only (no inline script, no other host), and forbids framing. The
files are public like `/openapi.json`: the console signs in with the API's bearer tokens, which
it keeps in the tab's sessionStorage, and every API call it makes is checked as usual.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import PurePosixPath

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIX = "/ui"
INDEX = "index.html"
CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate: an upgraded bridge serves its own console
}


class Asset:
    """One file of the console: its bytes and content type."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type


def assets(folder: Traversable | None = None) -> dict[str, Asset]:
    """The console's files by name (those of a known type), read from the package."""
    folder = folder or resources.files("bridge.admin") / "console"
    found: dict[str, Asset] = {}
    for entry in folder.iterdir():
        content_type = CONTENT_TYPES.get(PurePosixPath(entry.name).suffix)
        if entry.is_file() and content_type is not None:
            found[entry.name] = Asset(entry.read_bytes(), content_type)
    return found


def add_routes(app: web.Application, files: dict[str, Asset] | None = None) -> None:
    served = assets() if files is None else files
    app.router.add_get(PREFIX, _to_index)
    app.router.add_get(f"{PREFIX}/", _serving(served, INDEX))
    app.router.add_get(PREFIX + "/{name}", _serving(served, None))


async def _to_index(_request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently(f"{PREFIX}/", headers=HEADERS)


def _serving(files: dict[str, Asset], fixed: str | None) -> Handler:
    async def serve(request: web.Request) -> web.Response:
        asset = files.get(fixed or request.match_info["name"])
        if asset is None:
            return web.Response(status=404, text="not found", headers=HEADERS)
        return web.Response(
            body=asset.body, content_type=asset.content_type, charset="utf-8", headers=HEADERS
        )

    return serve
