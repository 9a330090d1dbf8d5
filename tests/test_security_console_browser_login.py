"""#19 in a real browser: Debian's chromium, headless, driven by Playwright, logs in to the
console of a real ``serve`` through its one-time link (see test_console_browser.py for the
setup this follows)."""

import asyncio
import os
import signal
from pathlib import Path

from playwright.async_api import async_playwright, expect

from conftest import PASSPHRASE
from processes import (
    BIN,
    free_port,
    gateway_env,
    read_link,
    running,
    wait_for_health_async,
)

GATEWAY = str(BIN / "agentspace-gateway")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
WAIT_MS = 30_000


async def test_the_browser_logs_in_through_the_link_once(tmp_path: Path) -> None:
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: apt-get install chromium"
    home, port = tmp_path / "home", free_port()
    env = gateway_env(home, PASSPHRASE, AGENTSPACE_GATEWAY_REQUIRE_TOKEN="true")
    console = f"http://127.0.0.1:{port}/"
    expect.set_options(timeout=WAIT_MS)
    with running([GATEWAY, "serve", "--port", str(port)], env, tmp_path) as process:
        link = await asyncio.to_thread(read_link, process)
        await wait_for_health_async(port, process)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                stranger = await browser.new_context()
                page = await stranger.new_page()
                await page.goto(console)
                await expect(page.locator("body")).to_contain_text("agentspace-gateway open")
                assert await page.locator("#status").count() == 0

                owner = await browser.new_context()
                page = await owner.new_page()
                await page.goto(link)
                assert page.url == console
                await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
                (cookie,) = await owner.cookies()
                assert cookie["httpOnly"] is True
                assert cookie["sameSite"] == "Strict"
                assert cookie["path"] == "/"
                # The page's scripts cannot read it.
                assert await page.evaluate("document.cookie") == ""

                # The link is spent: in the stranger's browser it is only the login page.
                page = await stranger.new_page()
                await page.goto(link)
                await expect(page.locator("body")).to_contain_text("not valid")
                assert await stranger.cookies() == []
            finally:
                await browser.close()
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.communicate, timeout=30)
