"""The console in a real browser (Debian's chromium, headless) choosing a model of another
provider: a keyed OpenAI-kind one (the fake OpenAI upstream) shows its exact cost, a keyless
local one shows its cost as "local". Against a real ``serve`` process, as
test_console_browser.py is."""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from fake_openai import FakeOpenAI, Scenario, running_fake_openai
from playwright.async_api import Browser, Page, async_playwright, expect
from test_console_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    WAIT_MS,
    Served,
    last_reply,
    open_page,
    send,
    serve,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "sk-test-openai-key-for-the-console"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstreams() -> AsyncIterator[tuple[FakeOpenAI, str, FakeOpenAI, str]]:
    async with (
        running_fake_openai(FakeOpenAI({KEY})) as (keyed, keyed_url),
        running_fake_openai() as (local, local_url),
    ):
        yield keyed, keyed_url, local, local_url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    upstreams: tuple[FakeOpenAI, str, FakeOpenAI, str],
) -> AsyncIterator[Served]:
    _, keyed_url, _, local_url = upstreams
    directory = tmp_path_factory.mktemp("console-providers")
    (directory / "home").mkdir(mode=0o700)
    (directory / "home" / "config.toml").write_text(
        f'[providers.openai]\nkind = "openai"\nbase_url = "{keyed_url}"\n'
        'key = "env:TEST_OPENAI_KEY"\n'
        f'[providers.lab]\nkind = "openai"\nbase_url = "{local_url}"\nkey = "none"\n'
    )
    async with serve(directory, directory / "gateway.log", TEST_OPENAI_KEY=KEY) as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: apt-get install chromium"
    expect.set_options(timeout=WAIT_MS)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, gateway: Served, tmp_path: Path) -> AsyncIterator[Page]:
    async with open_page(browser, gateway.page_url, tmp_path / "page.png") as opened:
        await expect(opened.locator("#status")).to_have_attribute("data-state", "connected")
        yield opened


async def test_an_openai_model_chosen_in_the_console_shows_its_exact_cost(
    page: Page, upstreams: tuple[FakeOpenAI, str, FakeOpenAI, str]
) -> None:
    keyed, _, _, _ = upstreams
    keyed.enqueue(Scenario(text_chunks=["Hi", " from", " GPT"]))
    await page.locator("#model").fill("openai/gpt-4.1")
    await send(page, "hello")
    reply = last_reply(page)
    await expect(reply.locator(".text")).to_have_text("Hi from GPT")
    cost = reply.locator(".meta .cost")
    # gpt-4.1: 10 prompt tokens (the system prompt and "hello", 36 characters // 4 + 1) at
    # $2 per MTok and 3 completion tokens at $8: 20,000 + 24,000 nano-dollars.
    await expect(cost).to_have_attribute("data-nanos", "44000")
    assert "local" not in await cost.inner_text()
    assert keyed.requests[-1].body["model"] == "gpt-4.1"


async def test_a_local_model_chosen_in_the_console_shows_local(
    page: Page, upstreams: tuple[FakeOpenAI, str, FakeOpenAI, str]
) -> None:
    _, _, local, _ = upstreams
    await page.locator("#model").fill("lab/tiny-1.5b")
    await send(page, "hello")
    reply = last_reply(page)
    await expect(reply.locator(".text")).to_have_text("Hello, world!")
    cost = reply.locator(".meta .cost")
    await expect(cost).to_have_text("$0.00 (local)")
    await expect(cost).to_have_attribute("data-nanos", "0")
    assert local.requests[-1].api_key is None
