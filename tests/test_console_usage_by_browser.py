"""The console's usage panel in Chromium, grouped by client, agent and session with its "by"
selector: each row is what usage.query groupBy answers, every cost digit from the integers.
The gateway, fake upstream and browser fixtures are test_console_browser's."""

import re
from decimal import Decimal

import pytest
from playwright.async_api import Page, expect
from test_console_browser import (  # noqa: F401 - the fixtures this module uses
    Served,
    artifacts,
    ask,
    browser,
    gateway,
    last_reply,
    page,
    send,
    upstream,
)
from test_console_proxied_browser import issue_key, proxied

from fake_anthropic import FakeAnthropic, Scenario

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_by_selector_groups_usage_per_client_agent_and_session(
    page: Page,  # noqa: F811
    gateway: Served,  # noqa: F811
    upstream: tuple[FakeAnthropic, str],  # noqa: F811
) -> None:
    fake, _ = upstream
    key = await issue_key(gateway, "laptop")
    for agent in ("main", "main", "sub-1"):
        fake.enqueue(Scenario(input_tokens=12, output_tokens=3))
        await proxied(gateway, key, agent, session="cc-usage-1")
    await send(page, "a question from the console")
    await expect(last_reply(page).locator(".meta .cost")).to_be_visible()
    await page.locator("#tab-usage").click()
    body = page.locator("#usage-body")
    await expect(body.locator("thead th").first).to_have_text("model")

    await page.locator("#usage-by").select_option("client")
    await expect(body.locator("thead th").first).to_have_text("client")
    report = await ask(gateway, {"type": "usage.query", "id": "u", "groupBy": "client"})
    assert {group["key"] for group in report["groups"]} == {"laptop", None}
    rows = body.locator("tbody tr")
    await expect(rows).to_have_count(2)
    for group in report["groups"]:
        row = body.locator(f"tbody tr[data-group='{group['key'] or ''}']")
        name = group["key"] or "(websocket)"
        await expect(row.locator("th")).to_have_text(name)
        await expect(row.locator(".requests")).to_have_text(f"{group['requestCount']:,}")
        cost = await row.locator(".cost").inner_text()
        assert Decimal(re.sub(r"[^0-9.]", "", cost)) * 10**9 == group["totalCostNanos"]
    total = await body.locator("tfoot .grand-total .cost").inner_text()
    assert Decimal(re.sub(r"[^0-9.]", "", total)) * 10**9 == sum(
        group["totalCostNanos"] for group in report["groups"]
    )

    await page.locator("#usage-by").select_option("agent")
    await expect(body.locator("thead th").first).to_have_text("agent")
    agents = await ask(gateway, {"type": "usage.query", "id": "a", "groupBy": "agent"})
    names = [f"{g['client'] or '(websocket)'}/{g['key'] or '(none)'}" for g in agents["groups"]]
    assert sorted(names) == ["(websocket)/(none)", "laptop/main", "laptop/sub-1"]
    await expect(body.locator("tbody th")).to_have_text(names)  # most expensive first

    await page.locator("#usage-by").select_option("session")
    sessions = await ask(gateway, {"type": "usage.query", "id": "s", "groupBy": "session"})
    await expect(body.locator("tbody th")).to_have_text(
        [group["label"] for group in sessions["groups"]]
    )

    # The open session alone: the console's own chat, not the client's.
    await page.locator("#usage-scope").select_option("session")
    await expect(body.locator("tbody tr")).to_have_count(1)
    await expect(body.locator("tbody tr")).to_have_attribute("data-client", "")
