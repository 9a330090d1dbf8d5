"""#19: the console's one-time login link, its session cookie, and ``agentspace-gateway open``."""

import asyncio
import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from agentspace_gateway.config import Config, GatewayConfig
from agentspace_gateway.console_login import CONSOLE_LOGIN, announce_console_login
from agentspace_gateway.vault import CredentialVault

from conftest import PASSPHRASE
from processes import (
    BIN,
    free_port,
    gateway_env,
    read_link,
    running,
    wait_for_health_async,
)
from wsclient import exchange

GATEWAY = str(BIN / "agentspace-gateway")
Client = TestClient[web.Request, web.Application]


def code_of(link: str) -> str:
    return link.split("/login?code=", 1)[1]


async def login_code(client: Client, token: str) -> str:
    response = await client.post(
        "/console/login-code", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["url"].startswith(f"http://127.0.0.1:{client.server.port}/login?code=")
    return code_of(body["url"])


async def test_the_console_without_a_cookie_shows_how_to_log_in(make_client) -> None:
    client = await make_client(logged_in=False)
    response = await client.get("/")
    assert response.status == 401
    page = await response.text()
    assert "agentspace-gateway open" in page
    assert "<script" not in page
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect("/gateway")


async def test_a_login_link_works_once_and_sets_a_strict_http_only_cookie(
    make_client, vault: CredentialVault
) -> None:
    client = await make_client(logged_in=False)
    code = await login_code(client, str(vault.get_token()))

    response = await client.get(f"/login?code={code}", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert code not in cookie

    page = await client.get("/")
    assert page.status == 200
    assert "console" in (await page.text()).lower()
    async with client.ws_connect("/gateway") as ws:
        assert (await exchange(ws, {"type": "ping", "id": "p"}))["type"] == "pong"

    # Spent: a second visit (another browser, say) gets the login page, and no cookie.
    fresh = await make_client(logged_in=False)
    again = await fresh.get(f"/login?code={code}", allow_redirects=False)
    assert again.status == 401
    assert "Set-Cookie" not in again.headers
    assert "agentspace-gateway open" in await again.text()


async def test_an_expired_code_is_refused(make_client, vault: CredentialVault) -> None:
    config = Config(gateway=GatewayConfig(login_code_seconds=0.2))
    client = await make_client(config, logged_in=False)
    code = await login_code(client, str(vault.get_token()))
    await asyncio.sleep(0.4)
    response = await client.get(f"/login?code={code}", allow_redirects=False)
    assert response.status == 401
    assert (await client.get("/")).status == 401


async def test_a_made_up_cookie_or_code_is_refused(make_client) -> None:
    client = await make_client(logged_in=False)
    assert (await client.get("/login?code=guess", allow_redirects=False)).status == 401
    client.session.cookie_jar.update_cookies({"agentspace_console": "x" * 43}, client.make_url("/"))
    assert (await client.get("/")).status == 401


async def test_a_login_code_needs_the_gateway_token(make_client, vault: CredentialVault) -> None:
    client = await make_client(logged_in=False)
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = await client.post("/console/login-code", headers=headers)
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "UNAUTHORIZED"
    # The cookie of a logged-in console is not the token either.
    logged_in = await make_client()
    assert (await logged_in.post("/console/login-code")).status == 401
    assert len(client.app[CONSOLE_LOGIN].new_code()) >= 43  # 256 bits, base64url


# Rotating the token (another process's `token rotate`, seen through a second vault on the
# same file) ends what was given under the old one; the watch looks every CHECK seconds.
CHECK = 0.1


def watched() -> Config:
    return Config(gateway=GatewayConfig(token_check_seconds=CHECK))


async def logged_out(client: Client, timeout: float = 10.0) -> bool:
    """Whether the client's console cookie stops opening the console within ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if (await client.get("/")).status == 401:
            return True
        await asyncio.sleep(CHECK / 2)
    return False


async def test_rotating_the_token_ends_console_sessions_and_unused_codes(
    make_client, vault: CredentialVault
) -> None:
    client = await make_client(watched(), logged_in=False)
    old = str(vault.get_token())
    used, unused = await login_code(client, old), await login_code(client, old)
    assert (await client.get(f"/login?code={used}", allow_redirects=False)).status == 303
    assert (await client.get("/")).status == 200

    new = vault.rotate_token()

    assert await logged_out(client)
    # The cookie proves nothing now: the gateway waits for the token in an auth frame.
    async with client.ws_connect("/gateway") as ws:
        await ws.send_json({"type": "ping", "id": "p"})
        closed = await ws.receive(timeout=10)
        assert (closed.type, closed.data) == (aiohttp.WSMsgType.CLOSE, 4401)
    assert (await client.get(f"/login?code={unused}", allow_redirects=False)).status == 401
    # The new token gives a link that works, and the console stays open under it.
    fresh = await login_code(client, new)
    assert (await client.get(f"/login?code={fresh}", allow_redirects=False)).status == 303
    await asyncio.sleep(CHECK * 5)
    assert (await client.get("/")).status == 200


async def test_a_console_websocket_open_on_the_cookie_is_closed_by_a_rotation(
    make_client, vault: CredentialVault
) -> None:
    client = await make_client(watched(), logged_in=False)
    code = await login_code(client, str(vault.get_token()))
    assert (await client.get(f"/login?code={code}", allow_redirects=False)).status == 303
    async with client.ws_connect("/gateway") as ws:
        await ws.send_json({"type": "ping", "id": "before"})
        assert (await ws.receive_json(timeout=10))["type"] == "pong"

        vault.rotate_token()

        closed = await ws.receive(timeout=10)
        assert (closed.type, closed.data) == (aiohttp.WSMsgType.CLOSE, 4401)
        assert "token rotated" in closed.extra


async def test_the_link_serve_printed_ends_with_the_token_it_was_printed_under(
    make_client, vault: CredentialVault
) -> None:
    client = await make_client(watched(), logged_in=False)
    printed: list[str] = []
    announce_console_login(client.app, "127.0.0.1", client.server.port, printed.append)
    probe = await login_code(client, str(vault.get_token()))
    assert (await client.get(f"/login?code={probe}", allow_redirects=False)).status == 303
    await asyncio.sleep(CHECK * 10)  # the watch has looked at the token meanwhile

    vault.rotate_token()

    assert await logged_out(client)  # the rotation has been seen
    spent = await client.get(f"/login?code={code_of(printed[0])}", allow_redirects=False)
    assert spent.status == 401


async def test_serve_prints_a_link_open_prints_another_and_neither_is_logged(
    tmp_path: Path,
) -> None:
    home, port = tmp_path / "home", free_port()
    env = gateway_env(
        home,
        PASSPHRASE,
        AGENTSPACE_GATEWAY_REQUIRE_TOKEN="true",
        AGENTSPACE_LOGGING_LEVEL="DEBUG",
    )
    with running([GATEWAY, "serve", "--port", str(port)], env, tmp_path) as process:
        printed = await asyncio.to_thread(read_link, process)
        await wait_for_health_async(port, process)
        opened = await asyncio.create_subprocess_exec(
            GATEWAY, "open", "--print", env=env, cwd=tmp_path, stdout=subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(opened.communicate(), timeout=60)
        assert opened.returncode == 0
        link = out.decode().strip()
        assert link.startswith(f"http://127.0.0.1:{port}/login?code=")
        assert code_of(link) != code_of(printed)

        for url in (printed, link):
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.get(url) as page:
                    assert page.status == 200
                    assert str(page.url) == f"http://127.0.0.1:{port}/"
                async with http.ws_connect(f"ws://127.0.0.1:{port}/gateway") as ws:
                    await ws.send_json({"type": "ping", "id": "p"})
                    assert (await ws.receive_json(timeout=10))["type"] == "pong"
        async with aiohttp.ClientSession() as http, http.get(printed) as spent:
            assert spent.status == 401
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(process.communicate, timeout=30)

    assert "GET /login?code=[REDACTED]" in err
    for code in (code_of(printed), code_of(link)):
        assert code not in err
        for path in home.rglob("*"):
            if path.is_file():
                assert code.encode() not in path.read_bytes(), path


async def test_serve_warns_when_the_doors_are_opened_explicitly(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    env = gateway_env(home, AGENTSPACE_GATEWAY_REQUIRE_TOKEN="false")
    with running([GATEWAY, "serve", "--port", str(port)], env, tmp_path) as process:
        await wait_for_health_async(port, process)
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(process.communicate, timeout=30)
    assert "gateway.require_token = false" in err
    assert "ANY local user" in err
    assert "/login?code=" not in out


async def run_cli(env: dict[str, str], cwd: Path, *argv: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        GATEWAY, *argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_without_a_vault_the_link_and_a_client_key_still_get_in(tmp_path: Path) -> None:
    # The README's first run: no passphrase, no keychain, so no vault and no token to read.
    home, port = tmp_path / "home", free_port()
    env = gateway_env(home, AGENTSPACE_GATEWAY_REQUIRE_TOKEN="true")
    with running([GATEWAY, "serve", "--port", str(port)], env, tmp_path) as process:
        printed = await asyncio.to_thread(read_link, process)
        await wait_for_health_async(port, process)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(printed) as page:
                assert page.status == 200
            async with http.ws_connect(f"ws://127.0.0.1:{port}/gateway") as ws:
                await ws.send_json({"type": "session.list", "id": "l"})
                assert (await ws.receive_json(timeout=10))["type"] == "session.list"

        status, _, err = await run_cli(env, tmp_path, "sessions")
        assert status == 1
        assert "AGENTSPACE_CLIENT_KEY" in err
        status, out, _ = await run_cli(env, tmp_path, "clients", "add", "laptop")
        assert status == 0
        key = out.splitlines()[0]
        status, out, err = await run_cli(
            {**env, "AGENTSPACE_CLIENT_KEY": key}, tmp_path, "sessions", "--json"
        )
        assert status == 0, err
        assert key not in out + err
        status, _, err = await run_cli(
            {**env, "AGENTSPACE_CLIENT_KEY": key[:-2] + "xx"}, tmp_path, "sessions"
        )
        assert status == 1
        assert "refused the client key" in err
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.communicate, timeout=30)
