"""The console's first run in Chromium (Debian's, never a downloaded one), against real
``serve`` processes: before anything is sent, the page says whether chat has a key and, if
not, the step that gives it one; each step, followed as worded, makes chat work.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect
from test_first_run import ENV_STEP, VAULT_STEP, WITH_VAULT

from conftest import PASSPHRASE, TEST_API_KEY
from fake_anthropic import FakeAnthropic, running_fake_anthropic
from processes import BIN, WAIT_SECONDS, free_port, gateway_env, running, wait_for_health_async

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
# Generous: a 2-core machine runs chromium, the gateway and the fake side by side.
WAIT_MS = int(WAIT_SECONDS * 1000)
GATEWAY = str(BIN / "agentspace-gateway")


@pytest.fixture(scope="module")
def shots() -> Path:
    """Screenshots beside test_console_browser.py's (read before AGENTSPACE_* is cleared)."""
    configured = os.environ.get("AGENTSPACE_TEST_ARTIFACTS")
    root = Path(configured) if configured else Path(__file__).parent / "artifacts"
    directory = root / "console"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstream() -> AsyncIterator[tuple[FakeAnthropic, str]]:
    async with running_fake_anthropic() as running_upstream:
        yield running_upstream


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: apt-get install chromium"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@contextlib.asynccontextmanager
async def console(browser: Browser, env: dict[str, str], cwd: Path) -> AsyncIterator[Page]:
    """A real gateway and a fresh page on its console, connected."""
    port = free_port()
    with running([GATEWAY, "serve", "--port", str(port)], env, cwd) as process:
        await wait_for_health_async(port, process)
        context = await browser.new_context()
        context.set_default_timeout(WAIT_MS)
        page = await context.new_page()
        script_errors: list[str] = []
        page.on("pageerror", lambda error: script_errors.append(str(error)))
        try:
            await page.goto(f"http://127.0.0.1:{port}/")
            await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
            yield page
        finally:
            await context.close()
            process.send_signal(signal.SIGTERM)
            _, err = await asyncio.to_thread(process.communicate, timeout=WAIT_SECONDS)
        assert script_errors == [], "the page's scripts failed"
        assert TEST_API_KEY not in err


async def send(page: Page, text: str) -> None:
    await page.locator("#prompt").fill(text)
    await page.locator("#send").click()


def environment(home: Path, base_url: str, **extra: str) -> dict[str, str]:
    return gateway_env(
        home, ANTHROPIC_BASE_URL=base_url, AGENTSPACE_ANTHROPIC_MAX_RETRIES="0", **extra
    )


async def test_no_key_no_vault_the_notice_comes_before_any_message(
    browser: Browser, upstream: tuple[FakeAnthropic, str], tmp_path: Path, shots: Path
) -> None:
    _, base_url = upstream
    bare = environment(tmp_path / "home", base_url)
    async with console(browser, bare, tmp_path) as page:
        notice = page.locator("#key-notice")
        await expect(notice).to_be_visible()
        await expect(notice).to_have_attribute("data-state", "missing")
        await expect(notice).to_contain_text(ENV_STEP)
        await expect(notice).to_contain_text(VAULT_STEP)
        assert await page.locator("#messages li.message").count() == 0  # nothing sent yet
        hint = await notice.locator("span").inner_text()
        await page.screenshot(path=shots / "first-run-no-key.png")

        await send(page, "hello?")
        refused = page.locator("#messages li.message.assistant").last.locator(".error-box")
        await expect(refused).to_have_attribute("data-code", "NO_API_KEY")
        await expect(refused.locator(".error-text")).to_contain_text(hint)


async def test_with_the_environment_key_there_is_no_notice_and_chat_works(
    browser: Browser, upstream: tuple[FakeAnthropic, str], tmp_path: Path
) -> None:
    _, base_url = upstream
    with_key = environment(tmp_path / "home", base_url, ANTHROPIC_API_KEY=TEST_API_KEY)
    async with console(browser, with_key, tmp_path) as page:
        notice = page.locator("#key-notice")
        await expect(notice).to_have_attribute("data-state", "ready")
        await expect(notice).to_have_attribute("data-providers", "anthropic")
        await expect(notice).to_be_hidden()
        await send(page, "hello again")
        reply = page.locator("#messages li.message.assistant").last
        await expect(reply.locator(".text")).to_have_text("Hello, world!")


async def test_a_vault_without_a_key_asks_for_keys_add_which_works_while_open(
    browser: Browser, upstream: tuple[FakeAnthropic, str], tmp_path: Path
) -> None:
    fake, base_url = upstream
    env = environment(tmp_path / "home", base_url, AGENTSPACE_VAULT_PASSPHRASE=PASSPHRASE)
    async with console(browser, env, tmp_path) as page:
        notice = page.locator("#key-notice")
        await expect(notice).to_be_visible()
        await expect(notice.locator("span")).to_have_text(WITH_VAULT)

        added = await asyncio.to_thread(
            subprocess.run,
            [GATEWAY, "keys", "add", "anthropic"],
            input=TEST_API_KEY + "\n",
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS,
        )
        assert added.returncode == 0, added.stderr
        await send(page, "with the vault's key")
        reply = page.locator("#messages li.message.assistant").last
        await expect(reply.locator(".text")).to_have_text("Hello, world!")
        # Once the reply has ended the page asks again, and the notice goes.
        await expect(notice).to_be_hidden()
        await expect(notice).to_have_attribute("data-providers", "anthropic")
    assert fake.message_requests[-1].api_key == TEST_API_KEY
