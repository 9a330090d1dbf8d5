"""The web console: GET / and its static files, served from the package, no build step.

The page talks to /gateway from the gateway's own origin, which the Origin check admits.
Where a credential is required (the default) the page needs the session cookie a login
link sets (console_login.py); without it ``/`` answers with a page saying how to log in.
``/console/config.json`` tells the page, before it connects, whether to ask for the token
(never, once the cookie is there); it never carries the token itself.
"""

from pathlib import Path

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.console_login import CONSOLE_LOGIN, login_page, setup_console_login
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


async def index(request: web.Request) -> web.StreamResponse:
    if token_required(request.app[appkeys.CONFIG]) and not request.app[
        CONSOLE_LOGIN
    ].request_has_session(request):
        return login_page("The console needs you to log in first.")
    return web.FileResponse(STATIC_DIR / "index.html", headers={**NO_CACHE, **SECURITY_HEADERS})


async def console_config(request: web.Request) -> web.Response:
    config = request.app[appkeys.CONFIG]
    # The cookie is the credential when present; the page asks for the token otherwise.
    ask = token_required(config) and not request.app[CONSOLE_LOGIN].request_has_session(request)
    return web.json_response({"requireToken": ask}, headers=NO_CACHE)


async def _secure_static(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/static/"):
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", NO_CACHE["Cache-Control"])


def setup_console(app: web.Application) -> None:
    setup_console_login(app)
    app.router.add_get("/", index)
    app.router.add_get("/console/config.json", console_config)
    # add_static refuses paths that climb out of the directory and never lists it.
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    app.on_response_prepare.append(_secure_static)
