"""Logging in to the console: a one-time link, then a session cookie.

``serve`` prints ``http://127.0.0.1:PORT/login?code=...`` and ``agentspace-gateway open``
asks the running gateway for a fresh one (proving the gateway token from the vault). A code
is 256 random bits, works once and expires (``gateway.login_code_seconds``); redeeming it
sets an HttpOnly, SameSite=Strict cookie holding a random session id, which the console's
pages and its WebSocket present from then on. Only SHA-256 digests of codes and session ids
are kept, in memory: a restart logs the console out, and ``open`` logs it in again.

A code, and the session redeemed with it, belong to the gateway token they were given
under: rotating the token (``agentspace-gateway token rotate``, often from another process)
ends them, as it closes the WebSocket connections that proved the old token. The gateway's
token watch (``gateway/token_holders.py``) tells ``note_token`` the current token while any
code or session lives; one given before the token was known (the link ``serve`` prints)
takes the token of the first look, within ``gateway.token_check_seconds``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.audited_keys import Actor
from agentspace_gateway.bearer import presented_token
from agentspace_gateway.http_errors import json_error
from agentspace_gateway.protocol.errors import ErrorCode
from agentspace_gateway.token_check import token_refusal

log = logging.getLogger(__name__)

COOKIE = "agentspace_console"
LOGIN_PATH = "/login"
CODE_PATH = "/console/login-code"
# Sessions kept at most; the oldest goes first. A browser logs in a handful of times a day.
MAX_SESSIONS = 256
MAX_CODES = 64


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _token_digest(token: str | None) -> bytes | None:
    return None if token is None else _digest(token)


class ConsoleLogin:
    def __init__(self, code_seconds: float) -> None:
        self.code_seconds = code_seconds
        # digest -> (monotonic expiry, digest of the token it was given under, if known)
        self._codes: dict[bytes, tuple[float, bytes | None]] = {}
        # digest -> the token digest its code had; oldest first
        self._sessions: dict[bytes, bytes | None] = {}

    def __len__(self) -> int:
        """Live codes and sessions: what a rotation of the token would end."""
        self._drop_expired_codes()
        return len(self._codes) + len(self._sessions)

    def _drop_expired_codes(self) -> None:
        now = time.monotonic()
        self._codes = {d: c for d, c in self._codes.items() if c[0] > now}

    def new_code(self, token: str | None = None) -> str:
        """A one-time code; ``token``: the gateway token it is given under, when known."""
        now = time.monotonic()
        self._drop_expired_codes()
        while len(self._codes) >= MAX_CODES:
            self._codes.pop(next(iter(self._codes)))
        code = secrets.token_urlsafe(32)
        self._codes[_digest(code)] = (now + self.code_seconds, _token_digest(token))
        return code

    def redeem(self, code: str) -> str | None:
        """A new session id for a live, unused code; None otherwise. The code is spent."""
        expires, token = self._codes.pop(_digest(code), (None, None))
        if expires is None or expires <= time.monotonic():
            return None
        session = secrets.token_urlsafe(32)
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        self._sessions[_digest(session)] = token
        return session

    def note_token(self, token: str | None) -> int:
        """The gateway token is now ``token`` (None: there is none). Codes and sessions given
        under another one end; those given before it was known take this one. Returns how
        many ended."""
        current = _token_digest(token) or b""

        def belongs(given_under: bytes | None) -> bool:
            return given_under is None or hmac.compare_digest(given_under, current)

        before = len(self)
        self._codes = {d: (t, current) for d, (t, under) in self._codes.items() if belongs(under)}
        self._sessions = {d: current for d, under in self._sessions.items() if belongs(under)}
        ended = before - len(self)
        if ended:
            log.info(
                "the gateway token changed: %d console login code(s) or session(s) ended", ended
            )
        return ended

    def is_session(self, session: str | None) -> bool:
        if not session:
            return False
        presented = _digest(session)
        # Constant time against each, so a near miss takes as long as a far one.
        return any(hmac.compare_digest(presented, known) for known in list(self._sessions))

    def request_has_session(self, request: web.Request) -> bool:
        return self.is_session(request.cookies.get(COOKIE))


CONSOLE_LOGIN = web.AppKey("console_login", ConsoleLogin)


def console_url(host: str, port: int) -> str:
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    authority = f"[{host}]" if ":" in host else host
    return f"http://{authority}:{port}/"


def login_url(host: str, port: int, code: str) -> str:
    return f"{console_url(host, port).rstrip('/')}{LOGIN_PATH}?code={code}"


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>agentspace-gateway: log in</title></head>
<body><h1>agentspace-gateway</h1><p>{problem}</p>
<p>To open the console logged in, run <code>agentspace-gateway open</code> on this machine
(it asks the running gateway for a fresh link), or use the link that
<code>agentspace-gateway serve</code> printed when it started. A link works once and expires
after a few minutes.</p></body></html>
"""


def _peer_is_loopback(request: web.Request) -> bool:
    # As gateway.access's check; not imported from there, which would import the gateway
    # package (whose view imports this module) half-way through loading it.
    try:
        return ipaddress.ip_address((request.remote or "").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def login_page(problem: str, status: int = 401) -> web.Response:
    return web.Response(
        status=status,
        text=LOGIN_PAGE.format(problem=problem),
        content_type="text/html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


async def login(request: web.Request) -> web.Response:
    code = request.query.get("code", "")
    session = request.app[CONSOLE_LOGIN].redeem(code) if code else None
    if session is None:
        return login_page("This login link is not valid: it was used already, or it expired.")
    response = web.Response(status=303, headers={"Location": "/", "Cache-Control": "no-store"})
    response.set_cookie(COOKIE, session, httponly=True, samesite="Strict", path="/")
    return response


async def new_login_code(request: web.Request) -> web.Response:
    """POST /console/login-code: a fresh login link for whoever proves the gateway token."""
    app = request.app
    actor = Actor(request.remote, request.headers.get("User-Agent"))
    if not _peer_is_loopback(request):
        return json_error(403, ErrorCode.FORBIDDEN, "Login links are given on loopback only.")
    keys = app[appkeys.VAULT].keys
    if keys is None:
        return json_error(
            503,
            ErrorCode.VAULT_UNAVAILABLE,
            "The gateway token is in the credential vault, which is unavailable "
            f"({app[appkeys.VAULT].problem}); use the link serve printed at start.",
        )
    refused = await token_refusal(
        request,
        keys,
        actor,
        where="console login code",
        hint="See the token with: agentspace-gateway token show",
    )
    if refused is not None:
        return refused
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    port = sockname[1] if sockname else app[appkeys.CONFIG].server.port
    login = app[CONSOLE_LOGIN]
    # Proved just above, so it is the vault's token now: the code belongs to it.
    token = presented_token(request.headers.get("Authorization")).token
    url = login_url(request.url.host or "127.0.0.1", port, login.new_code(token))
    return web.json_response(
        {"url": url, "expiresInSeconds": login.code_seconds}, headers={"Cache-Control": "no-store"}
    )


def announce_console_login(
    app: web.Application, host: str, port: int, announce: Callable[[str], None]
) -> None:
    """At start: the console's login link on the terminal (never in the log), or a warning
    that the gateway's doors are open to every local user."""
    config = app[appkeys.CONFIG]
    if not config.gateway.require_token:
        log.warning(
            "gateway.require_token = false: the WebSocket and the console accept ANY local "
            "user without a credential (they can read every session and spend your keys); "
            "remove the setting to require a credential again"
        )
        announce(f"console: {console_url(host, port)}")
        return
    minutes = app[CONSOLE_LOGIN].code_seconds / 60
    announce(
        f"console (this link logs you in once, within {minutes:g} min; later: "
        f"agentspace-gateway open): {login_url(host, port, app[CONSOLE_LOGIN].new_code())}"
    )


def setup_console_login(app: web.Application) -> None:
    app[CONSOLE_LOGIN] = ConsoleLogin(app[appkeys.CONFIG].gateway.login_code_seconds)
    app.router.add_get(LOGIN_PATH, login)
    app.router.add_post(CODE_PATH, new_login_code)
