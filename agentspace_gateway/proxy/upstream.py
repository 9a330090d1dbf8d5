"""Where proxied requests go: Anthropic's base URL, with the provider key and the headers a
client may pass on.

``anthropic-version`` and ``anthropic-beta`` are forwarded verbatim, whatever their values:
a gateway that allow-lists beta names breaks Claude Code on every release. Other client
headers stay behind unless ``proxy.forward_headers`` names them; the client's own
credential never goes upstream.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

DEFAULT_BASE_URL = "https://api.anthropic.com"
ALWAYS_FORWARDED = ("anthropic-version", "anthropic-beta")
# Forwarded only with proxy.passthrough_credentials, for a caller bringing its own.
CREDENTIALS = ("x-api-key", "authorization")

# Response headers that describe the upstream connection or body encoding, not the reply:
# aiohttp sets its own for the client's connection (and has already decoded the body).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "date",
        "server",
        "proxy-authenticate",
        "upgrade",
        "trailer",
        "te",
        "set-cookie",
    }
)

KeySource = Callable[[], Awaitable[tuple[str | None, str]]]


class Upstream:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        key_source: KeySource,
        forward_headers: tuple[str, ...],
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.proxy = environment_proxy(self.base_url)
        self._key_source = key_source
        self._forwarded = (*ALWAYS_FORWARDED, *(name.lower() for name in forward_headers))

    async def provider_key(self) -> str | None:
        key, _ = await self._key_source()
        return key

    def url(self, path: str) -> str:
        return self.base_url + path

    def request_headers(self, request: web.Request, key: str | None) -> CIMultiDict[str]:
        """The headers to send; ``key`` None passes the caller's own credential through."""
        headers: CIMultiDict[str] = CIMultiDict()
        names = self._forwarded if key is not None else (*self._forwarded, *CREDENTIALS)
        for name in names:
            for value in request.headers.getall(name, ()):
                headers.add(name, value)
        headers["content-type"] = request.headers.get("Content-Type", "application/json")
        if key is not None:
            headers["x-api-key"] = key
        return headers


def environment_proxy(url: str) -> str | None:
    """The proxy HTTPS_PROXY/HTTP_PROXY name for ``url`` (None under NO_PROXY), as the SDK
    would use for chat."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def response_headers(upstream: aiohttp.ClientResponse) -> CIMultiDict[str]:
    """The upstream reply's headers as the client gets them (request-id included)."""
    kept: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.headers.items():
        if name.lower() not in _HOP_BY_HOP:
            kept.add(name, value)
    return kept


def error_message(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text[:300]


def json_object(data: Any) -> dict[str, Any] | None:
    return data if isinstance(data, dict) else None
