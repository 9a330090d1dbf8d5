"""Shared fixtures: every test gets a private home, no real keychain and no stray settings."""

import importlib.metadata
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import keyring
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from keyring.backends import fail

from agentspace_gateway.access_log import RedactingAccessLogger
from agentspace_gateway.app import create_app
from agentspace_gateway.appkeys import VAULT
from agentspace_gateway.config import AnthropicConfig, Config
from agentspace_gateway.console_login import CONSOLE_LOGIN, COOKIE
from agentspace_gateway.handler_registry import ENTRY_POINT_GROUP
from agentspace_gateway.home import Home
from agentspace_gateway.providers.upstream_http import upstream_session, upstream_timeout
from agentspace_gateway.storage import Database, apply_migrations
from agentspace_gateway.vault import CredentialVault, open_vault

from fake_anthropic import FakeAnthropic, running_fake_anthropic

PASSPHRASE = "correct horse battery staple, for tests only"
NO_KEYCHAIN = "keyring.backends.fail.Keyring"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("AGENTSPACE_") or name.startswith("ANTHROPIC_"):
            monkeypatch.delenv(name)
    # The developer's own keychain must never be read or written by a test.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", NO_KEYCHAIN)
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database of its own, for repository tests."""
    database = await Database.open(tmp_path / "agentspace.db")
    try:
        await apply_migrations(database)
        yield database
    finally:
        await database.close()


@pytest.fixture
async def upstream_pool() -> AsyncIterator[aiohttp.ClientSession]:
    """The upstream pool as the app opens it (and closes it), for a provider's client built
    without the app."""
    pool = upstream_session(upstream_timeout(AnthropicConfig().timeout_seconds))
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    root = tmp_path / "home"
    monkeypatch.setenv("AGENTSPACE_HOME", str(root))
    return Home(root)


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AGENTSPACE_VAULT_PASSPHRASE", PASSPHRASE)
    return PASSPHRASE


@pytest.fixture
def vault(home: Home, passphrase: str) -> CredentialVault:
    """The same file vault the app under test opens, as a second process would see it."""
    home.ensure()
    return open_vault("file", home.root)


def inline_plugin(name: str, target: str) -> importlib.metadata.EntryPoint:
    """An entry point for a handler defined in this tests folder, registered inline."""
    return importlib.metadata.EntryPoint(name=name, value=target, group=ENTRY_POINT_GROUP)


TEST_PLUGINS = [
    inline_plugin("test.shout", "gateway_plugins:shout"),
    inline_plugin("test.crash", "gateway_plugins:crash"),
    inline_plugin("test.flood", "gateway_plugins:flood"),
]


@pytest.fixture
def make_client(aiohttp_client, home: Home):  # type: ignore[no-untyped-def]
    async def make(
        config: Config | None = None,
        plugins: list[importlib.metadata.EntryPoint] | None = None,
        *,
        logged_in: bool = True,
    ) -> TestClient[web.Request, web.Application]:
        """A client of a fresh app; ``logged_in`` (the default) gives it the console's session
        cookie, the credential every page and WebSocket of the gateway accepts, so tests
        about something else need not present one. Tests about credentials pass False."""
        app = create_app(
            home=home,
            config=config or Config(),
            handler_entry_points=TEST_PLUGINS if plugins is None else plugins,
        )
        # TestServer drops its constructor's keyword arguments (aiohttp_client's server_kwargs);
        # only start_server hands them to the runner, so the server's own access logger is used.
        server = TestServer(app)
        await server.start_server(access_log_class=RedactingAccessLogger)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(server)
        if logged_in:
            log_in(client)
        return client

    return make


def log_in(client: TestClient[web.Request, web.Application]) -> None:
    """Put a console session cookie in the client's jar, as redeeming a login link does,
    without a request (so no access-log line or audit row a test might count)."""
    login = client.app[CONSOLE_LOGIN]
    session = login.redeem(login.new_code())
    assert session is not None
    client.session.cookie_jar.update_cookies({COOKIE: session}, client.make_url("/"))


def credential_headers(client: TestClient[web.Request, web.Application]) -> dict[str, str]:
    """The fixture's console cookie as a header, for a test that writes its own upgrade
    request (a raw socket, or a client of its own) to the same gateway."""
    cookies = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    morsel = cookies.get(COOKIE)
    return {} if morsel is None else {"Cookie": f"{COOKIE}={morsel.value}"}


def gateway_token(client: TestClient[web.Request, web.Application]) -> str:
    """The app's own gateway token (its vault needs the passphrase fixture), for a client
    that presents a bearer token rather than the fixture's cookie."""
    keys = client.app[VAULT].keys
    assert keys is not None, "the gateway token needs a vault: use the passphrase fixture"
    token = keys.vault.get_token()
    assert token is not None
    return token


@pytest.fixture
async def client(make_client, passphrase: str) -> TestClient[web.Request, web.Application]:  # type: ignore[no-untyped-def]
    return await make_client()


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[tuple[FakeAnthropic, str]]:
    """A fake Anthropic API on loopback, spoken to by the real SDK."""
    async with running_fake_anthropic() as running:
        yield running


TEST_API_KEY = "sk-ant-api03-test-key-for-the-fake-upstream"


def chat_config(base_url: str, **anthropic: Any) -> Config:
    settings = {"base_url": base_url, "max_retries": 0, "timeout_seconds": 5.0, **anthropic}
    return Config(anthropic=AnthropicConfig(**settings))


@pytest.fixture
async def chat_client(make_client, fake_anthropic, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The gateway pointed at the fake upstream, with a key in ANTHROPIC_API_KEY."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    _, base_url = fake_anthropic
    return await make_client(chat_config(base_url))
