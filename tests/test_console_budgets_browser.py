"""The console's budgets panel in Chromium: budgets set with the CLI against a real serve,
shown to the nano-dollar as budget.status answers, and budget.alert events appearing live.

The standings run against test_console_browser's real gateway process. An alert is published
through the alert hub the doors publish to (``app[BUDGETS].alerts``), which only a test in
the same process can reach: that test serves the app in-process (the standard make_client
fixture) and points the same Debian chromium at it.
"""

import asyncio
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect
from test_console_browser import (  # noqa: F401 - the fixtures this module uses
    CHROMIUM,
    CHROMIUM_ARGS,
    WAIT_MS,
    WAIT_SECONDS,
    Served,
    artifacts,
    ask,
    browser,
    gateway,
    open_page,
    page,
    upstream,
)

from agentspace_gateway import appkeys
from agentspace_gateway.config import Config, GatewayConfig
from agentspace_gateway.console_login import CONSOLE_LOGIN
from agentspace_gateway.metering.budget_alerts import BudgetAlert
from agentspace_gateway.metering.budget_setup import BUDGETS
from agentspace_gateway.storage import NewUsage, ReplyRecorder, SessionRepository

from processes import BIN


def dollars(text: str) -> int:
    """Nano-dollars from what the page shows ("$12.345678912", "$1,000.50")."""
    return int(Decimal(re.sub(r"[^0-9.]", "", text)) * 10**9)


async def cli(served: Served, *argv: str) -> str:
    done = await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "agentspace-gateway"), *argv],
        env=served.env,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=True,
    )
    return done.stdout


async def connected(opened: Page) -> None:
    """Connected, giving the token first if the gateway asks for one (as the person would,
    from agentspace-gateway token show), so the test holds whatever access the app requires."""
    await opened.locator(
        "#status[data-state='connected'], #token-form:not([hidden])"
    ).first.wait_for()
    if await opened.locator("#token-form").is_visible():
        shown = await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "agentspace-gateway"), "token", "show"],
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS,
            check=True,
        )
        await opened.locator("#token").fill(shown.stdout.strip())
        await opened.locator("#token-form button[type='submit']").click()
    await expect(opened.locator("#status")).to_have_attribute("data-state", "connected")


async def row_figures(row: Locator) -> dict[str, int]:
    return {
        name: dollars(await row.locator(f".{name}").inner_text())
        for name in ("limit", "spent", "reserved", "remaining")
    }


@pytest.mark.asyncio(loop_scope="module")
async def test_the_panel_shows_each_budget_as_budget_status_answers(
    page: Page,  # noqa: F811
    gateway: Served,  # noqa: F811
) -> None:
    await cli(gateway, "budgets", "set", "global", "12.345678912", "--period", "day")
    await cli(gateway, "budgets", "set", "agent:main", "0.000000001", "--period", "total")

    await page.locator("#tab-budgets").click()

    body = page.locator("#budgets-body")
    await expect(body.locator("tbody tr")).to_have_count(2)
    status = await ask(gateway, {"type": "budget.status", "id": "b"})
    for budget in status["budgets"]:
        row = body.locator(
            f"tbody tr[data-scope='{budget['scope']}'][data-period='{budget['period']}']"
        )
        assert await row_figures(row) == {
            name: budget[f"{name}Nanos"] for name in ("limit", "spent", "reserved", "remaining")
        }
    agent = body.locator("tbody tr[data-scope='agent']")
    await expect(agent.locator("th .name")).to_have_text("agent:main")
    await expect(agent.locator("th .period")).to_have_text("total")
    await expect(agent.locator(".limit")).to_have_text("$0.000000001")
    await expect(agent.locator(".resets")).to_have_text("never resets")
    everything = body.locator("tbody tr[data-scope='global']")
    await expect(everything.locator(".limit")).to_have_text("$12.345678912")
    await expect(everything.locator(".resets")).to_have_text(re.compile(r"^resets \w+"))
    resets_at = next(b["resetsAt"] for b in status["budgets"] if b["scope"] == "global")
    assert await everything.locator(".resets").get_attribute("title") == await page.evaluate(
        "iso => new Date(iso).toLocaleString()", resets_at
    )

    # Removed with the CLI, gone at the next refresh.
    await cli(gateway, "budgets", "remove", "agent:main", "--period", "total")
    await page.locator("#budgets-refresh").click()
    await expect(body.locator("tbody tr")).to_have_count(1)
    await cli(gateway, "budgets", "remove", "global", "--period", "day")


@pytest.mark.parametrize("require_token", [False, True], ids=["open", "token"])
async def test_an_alert_appears_live_and_the_standings_follow(
    make_client,
    passphrase: str,
    artifacts: Path,  # noqa: F811
    require_token: bool,
) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(Config(gateway=GatewayConfig(require_token=require_token)))
    app = client.app
    store = app[BUDGETS].store
    await store.set("global", "", "total", 1_000_000_000)
    # The browser has its own cookies: it logs in through a one-time link, as a person would.
    url = str(client.make_url(f"/login?code={app[CONSOLE_LOGIN].new_code()}"))
    async with async_playwright() as playwright:
        launched: Browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            expect.set_options(timeout=WAIT_MS)
            screenshot = artifacts / f"budget-alert-{'token' if require_token else 'open'}.png"
            async with open_page(launched, url, screenshot) as page:
                await connected(page)
                # The page watches from the moment it connects, whichever tab is open.
                await expect(page.locator("#budgets-body")).to_have_attribute(
                    "data-watching", "true"
                )
                session = await SessionRepository(app[appkeys.DATABASE]).create(
                    agent_id="main", model="m"
                )
                await ReplyRecorder(app[appkeys.DATABASE]).record(
                    None,
                    NewUsage(
                        session_id=session.id,
                        model="m",
                        input_tokens=1,
                        output_tokens=1,
                        cost_nanousd=812_345_678,
                        request_id="r1",
                    ),
                )

                app[BUDGETS].alerts.publish(
                    BudgetAlert(
                        scope_kind="global",
                        scope_id="",
                        period="total",
                        threshold_percent=80,
                        limit_nanousd=1_000_000_000,
                        spent_nanousd=812_345_678,
                        reserved_nanousd=0,
                        resets_at=None,
                    )
                )

                await expect(page.locator("#tab-budgets")).to_have_attribute("data-alerts", "1")
                await page.locator("#tab-budgets").click()
                alert = page.locator("#budget-alerts .budget-alert")
                await expect(alert).to_have_count(1)
                await expect(alert).to_have_attribute("data-threshold", "80")
                await expect(alert).to_contain_text("80% of global (total)")
                await expect(alert.locator(".figures")).to_have_text(
                    "$0.812345678 spent + $0.00 reserved of $1.00"
                )
                row = page.locator("#budgets-body tbody tr[data-scope='global']")
                await expect(row.locator(".spent")).to_have_text("$0.812345678")
                await expect(row.locator(".remaining")).to_have_text("$0.187654322")
                await expect(page.locator("#tab-budgets")).not_to_have_attribute("data-alerts", "1")
        finally:
            await launched.close()
