"""The console in Chromium shows where a session opened through the Anthropic API door came
from: its client key's name and the caller's agent, in the list and the conversation's title.
The gateway, fake upstream and browser fixtures are test_console_browser's."""

import asyncio
import re
import subprocess

import aiohttp
import pytest
from playwright.async_api import Page, expect
from test_console_browser import (  # noqa: F401 - the fixtures this module uses
    WAIT_SECONDS,
    Served,
    artifacts,
    browser,
    gateway,
    page,
    upstream,
)

from fake_anthropic import FakeAnthropic, Scenario
from processes import BIN

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def issue_key(served: Served, name: str) -> str:
    done = await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "agentspace-gateway"), "clients", "add", name],
        env=served.env,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=True,
    )
    found = re.search(r"asg_[A-Za-z0-9_-]+", done.stdout)
    assert found, done.stdout
    return found.group(0)


async def proxied(served: Served, key: str, agent: str, *, session: str) -> None:
    """One request through the Anthropic API door, as Claude Code sends it."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{served.page_url}v1/messages",
            json={
                "model": "claude-sonnet-4-5",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "from the terminal"}],
            },
            headers={
                "x-api-key": key,
                "anthropic-version": "2023-06-01",
                "x-claude-code-session-id": session,
                "x-claude-code-agent-id": agent,
            },
        ) as response,
    ):
        assert response.status == 200, await response.text()


async def test_a_proxied_session_shows_its_client_and_agent(
    page: Page,  # noqa: F811
    gateway: Served,  # noqa: F811
    upstream: tuple[FakeAnthropic, str],  # noqa: F811
) -> None:
    fake, _ = upstream
    key = await issue_key(gateway, "laptop")
    fake.enqueue(Scenario(input_tokens=12, output_tokens=3))
    await proxied(gateway, key, "main", session="cc-console-1")
    await page.reload()
    origin = page.locator("#session-list .session .origin")
    await expect(origin).to_have_text(["via laptop, agent main"])
    button = page.locator("#session-list .session", has=page.locator(".origin"))
    session_id = await button.get_attribute("data-session-id")
    await button.click()
    await expect(page.locator("#chat-title")).to_have_text(
        f"Session {session_id} (via laptop, agent main)"
    )
