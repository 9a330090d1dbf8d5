"""The web console: GET / and its static files, served from the package, no build step.

The page talks to /gateway from the gateway's own origin, which the Origin check admits.
``/console/config.json`` tells it, before it connects, whether to ask for the token; it never
carries the token itself.
"""

from pathlib import Path

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.gateway.access import token_required

STATIC_DIR = Path(__file__).with_name("static")

# The console runs only its own files: no inline script, no other origin, no framing (so no
# other page can click its buttons). 'self' in connect-src covers ws:// to the same host.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# A page from an older version must not outlive an upgrade in the browser's cache.
NO_CACHE = {"Cache-Control": "no-cache"}


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={**NO_CACHE, **SECURITY_HEADERS})


async def console_config(request: web.Request) -> web.Response:
    config = request.app[appkeys.CONFIG]
    return web.json_response({"requireToken": token_required(config)}, headers=NO_CACHE)


async def _secure_static(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/static/"):
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", NO_CACHE["Cache-Control"])


def setup_console(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/console/config.json", console_config)
    # add_static refuses paths that climb out of the directory and never lists it.
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    app.on_response_prepare.append(_secure_static)
