"""Before the first message: the gateway's own word (``GET /health``) on whether chat has a
provider key, and if not, the step that gives it one (worded by first_run.py)."""

import aiohttp
from yarl import URL

from agentspace_gateway import __version__

HEALTH_TIMEOUT_SECONDS = 5.0


def health_url(socket_url: str) -> str:
    url = URL(socket_url)
    return str(url.with_scheme("https" if url.scheme == "wss" else "http").with_path("/health"))


async def key_hint(socket_url: str) -> str | None:
    """The gateway's hint, or None when chat has a key or the gateway does not say (an older
    gateway, or /health not answering: the chat itself will then tell what is wrong)."""
    timeout = aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_SECONDS)
    headers = {"User-Agent": f"agentspace-gateway-client/{__version__}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout, headers=headers) as http,
            http.get(health_url(socket_url)) as response,
        ):
            body = await response.json() if response.status == 200 else {}
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return None
    hint = body.get("keyHint") if isinstance(body, dict) else None
    return hint if isinstance(hint, str) and hint else None
