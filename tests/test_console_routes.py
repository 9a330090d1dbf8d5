"""The console's HTTP side: the page, its static files, what it is told before connecting."""

import re

import pytest

from agentspace_gateway.config import Config, GatewayConfig
from agentspace_gateway.console import STATIC_DIR


async def test_the_page_is_served_at_the_root_with_a_strict_policy(client) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert '<script type="module" src="/static/js/main.js"></script>' in page
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-cache"


async def test_every_file_the_page_names_is_served_from_the_package(client) -> None:
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    scripts = sorted(path.name for path in (STATIC_DIR / "js").glob("*.js"))
    named = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert named == ["/static/console.css", "/static/js/main.js"]
    imported = {
        name
        for path in (STATIC_DIR / "js").glob("*.js")
        for name in re.findall(r'from "\./([a-z]+\.js)"', path.read_text(encoding="utf-8"))
    }
    # Every module is reachable from main.js, so none is dead weight in the wheel.
    assert imported | {"main.js"} == set(scripts)

    for url in [*named, *(f"/static/js/{name}" for name in scripts)]:
        response = await client.get(url)
        assert response.status == 200, url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    script = await client.get("/static/js/main.js")
    # Browsers refuse to run a module served with any other type.
    assert script.content_type in ("text/javascript", "application/javascript")
    assert (await client.get("/static/console.css")).content_type == "text/css"


@pytest.mark.parametrize(
    "path",
    [
        "/static/",
        "/static/js/",
        "/static/nope.js",
        "/static/../console.py",
        "/static/%2e%2e/app.py",
    ],
)
async def test_nothing_outside_the_static_files_is_served(client, path: str) -> None:
    response = await client.get(path)
    assert response.status in (403, 404)
    assert "def " not in await response.text()


async def test_the_config_says_whether_a_token_is_needed_and_never_the_token(
    make_client, vault
) -> None:
    # Logged in (the fixture's console cookie), the cookie is the credential.
    logged_in = await make_client()
    response = await logged_in.get("/console/config.json")
    assert response.status == 200
    assert await response.json() == {"requireToken": False}

    open_gateway = await make_client(Config(gateway=GatewayConfig(require_token=False)))
    response = await open_gateway.get("/console/config.json")
    assert await response.json() == {"requireToken": False}

    guarded = await make_client(logged_in=False)
    response = await guarded.get("/console/config.json")
    assert await response.json() == {"requireToken": True}
    token = vault.get_token()
    assert token is not None
    assert token not in await response.text()


async def test_the_page_is_refused_under_a_foreign_host_name(client) -> None:
    # DNS rebinding: evil.example resolving to 127.0.0.1 must not get the console either.
    response = await client.get("/", headers={"Host": "evil.example"})
    assert response.status == 421
