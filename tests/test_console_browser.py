"""The web console in a real browser: Debian's chromium, headless, driven by Playwright,
against a real ``serve`` process and the fake Anthropic upstream.

The browser is never downloaded: Playwright's wheel brings its driver, and chromium comes
from apt (``.ci/run`` installs it). One gateway, fake upstream and browser serve the whole
module, since starting them is most of the cost; each test gets a fresh browser context and
page, so a test sees the sessions earlier ones left and compares against live answers of the
gateway rather than fixed totals. Screenshots and the gateway's log land in
``$AGENTSPACE_TEST_ARTIFACTS`` or ``tests/artifacts/``, under ``console/``.
"""

import asyncio
import contextlib
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from attrs import frozen
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from agentspace_gateway.cli.context import open_database
from agentspace_gateway.config import Config
from agentspace_gateway.home import Home
from agentspace_gateway.runtime_file import read_runtime
from agentspace_gateway.storage import SessionRepository

from conftest import PASSPHRASE, TEST_API_KEY
from fake_anthropic import FakeAnthropic, Scenario, running_fake_anthropic
from processes import BIN, free_port, gateway_env, running
from wsclient import exchange, receive

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The bound on every wait here: each expect() and page action, the gateway coming up or
# exiting, a frame or a closed request. Generous: a loaded 2-core machine runs chromium, the
# gateway and the fake side by side (5 s was once too short). A hang still fails the wait,
# inside pytest-timeout's bound on the test.
WAIT_MS = 30_000
WAIT_SECONDS = WAIT_MS / 1000
# The console's page of sessions (SESSION_PAGE in static/js/chat.js).
SESSION_PAGE = 100


@frozen
class Served:
    port: int
    env: dict[str, str]
    process: subprocess.Popen[str]

    @property
    def page_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def socket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    # Read before the per-test fixtures clear AGENTSPACE_* from the environment.
    configured = os.environ.get("AGENTSPACE_TEST_ARTIFACTS")
    root = Path(configured) if configured else Path(__file__).parent / "artifacts"
    directory = root / "console"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@contextlib.asynccontextmanager
async def serve(directory: Path, log: Path, **env: str) -> AsyncIterator[Served]:
    """A real gateway process; its log is kept beside the screenshots."""
    home = Home(directory / "home")
    environment = gateway_env(home.root, PASSPHRASE, **env)
    argv = [str(BIN / "agentspace-gateway"), "serve", "--port", str(free_port())]
    with running(argv, environment, directory) as process:
        try:
            port = await serving_port(home, process)
            yield Served(port, environment, process)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            _, errors = await asyncio.to_thread(process.communicate, timeout=WAIT_SECONDS)
            await asyncio.to_thread(log.write_text, errors, encoding="utf-8")


async def serving_port(home: Home, process: subprocess.Popen[str]) -> int:
    """The port this very process serves on: when the one asked for was taken meanwhile (other
    suites run gateways too), it moves to the next, and runtime.json says where."""
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(WAIT_SECONDS):
            while True:
                assert process.poll() is None, process.communicate()
                info = read_runtime(home.runtime_file)
                if info is not None and info.pid == process.pid:
                    async with http.get(f"http://127.0.0.1:{info.port}/health") as response:
                        assert (await response.json())["pid"] == process.pid
                    return info.port
                # Without blocking the loop: the fake upstream answers on it.
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"the gateway did not come up within {WAIT_SECONDS} s") from None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstream() -> AsyncIterator[tuple[FakeAnthropic, str]]:
    async with running_fake_anthropic() as running_upstream:
        yield running_upstream


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    upstream: tuple[FakeAnthropic, str],
    artifacts: Path,
) -> AsyncIterator[Served]:
    _, base_url = upstream
    async with serve(
        tmp_path_factory.mktemp("console"),
        artifacts / "gateway.log",
        ANTHROPIC_API_KEY=TEST_API_KEY,
        ANTHROPIC_BASE_URL=base_url,
        AGENTSPACE_ANTHROPIC_MAX_RETRIES="0",
    ) as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: apt-get install chromium"
    # expect() has its own default (5 s), apart from the context's for actions.
    expect.set_options(timeout=WAIT_MS)
    async with async_playwright() as playwright:
        # launch() gives the browser a new, empty profile directory of its own.
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@contextlib.asynccontextmanager
async def open_page(browser: Browser, url: str, screenshot: Path) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1440, "height": 860})
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    try:
        await page.goto(url)
        yield page
    finally:
        await page.screenshot(path=screenshot)
        await context.close()
    assert script_errors == [], "the page's scripts failed"


@pytest_asyncio.fixture(loop_scope="module")
async def page(
    browser: Browser, gateway: Served, artifacts: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    async with open_page(
        browser, gateway.page_url, artifacts / f"{request.node.name}.png"
    ) as opened:
        await expect(opened.locator("#status")).to_have_attribute("data-state", "connected")
        yield opened


async def ask(served: Served, message: dict[str, Any]) -> dict[str, Any]:
    """What the gateway answers over a WebSocket of the test's own, to compare with the page."""
    async with aiohttp.ClientSession() as http, http.ws_connect(served.socket_url) as ws:
        return await exchange(ws, message)


async def send(page: Page, text: str) -> None:
    await page.locator("#prompt").fill(text)
    await page.locator("#send").click()


def last_reply(page: Page) -> Locator:
    return page.locator("#messages li.message.assistant").last


def number(text: str) -> float:
    return float(re.sub(r"[^0-9.]", "", text))


# Chat ---------------------------------------------------------------------------------------


async def test_a_reply_streams_in_delta_by_delta_with_its_usage_and_cost(
    page: Page, gateway: Served, upstream: tuple[FakeAnthropic, str], artifacts: Path
) -> None:
    fake, _ = upstream
    # Two chunks, then a pause long enough to look at the half-written reply.
    fake.enqueue(
        Scenario(text_chunks=["Once ", "upon ", "a ", "time."], stall_after=2, stall_seconds=3)
    )
    await send(page, "tell me a story")

    reply = last_reply(page)
    await expect(reply.locator(".text")).to_have_text("Once upon ")
    mid_stream = await reply.evaluate(
        "item => ({streaming: item.classList.contains('streaming'),"
        " stop: !document.getElementById('stop').disabled,"
        " send: !document.getElementById('send').disabled})"
    )
    assert mid_stream == {"streaming": True, "stop": True, "send": False}
    await page.screenshot(path=artifacts / "streaming-mid-reply.png")

    await expect(reply.locator(".text")).to_have_text("Once upon a time.", timeout=WAIT_MS)
    await expect(reply).not_to_have_class(re.compile(r"\bstreaming\b"))
    session_id = await page.locator("#session-list .session.active").get_attribute(
        "data-session-id"
    )
    assert session_id
    usage = await ask(gateway, {"type": "usage.query", "id": "u", "sessionId": session_id})
    total = usage["grandTotal"]
    tokens = reply.locator(".meta .tokens")
    assert int(await tokens.get_attribute("data-value") or "") == total["totalTokens"]
    assert f"{total['totalTokens']:,} tokens" in await tokens.inner_text()
    cost_text = await reply.locator(".meta .cost").inner_text()
    assert number(cost_text) == pytest.approx(total["totalCost"], rel=5e-3)
    assert await page.locator("#send").is_enabled()
    assert await page.locator("#stop").is_disabled()


async def test_stop_cancels_the_reply_and_keeps_what_had_arrived(
    page: Page, upstream: tuple[FakeAnthropic, str]
) -> None:
    fake, _ = upstream
    fake.enqueue(Scenario(text_chunks=["Counting: ", "1, ", "2, ", "3"], stall_after=3))
    await send(page, "count for me")
    reply = last_reply(page)
    await expect(reply.locator(".text")).to_have_text("Counting: 1, 2, ")

    await page.locator("#stop").click()

    await expect(reply).to_have_attribute("data-stop-reason", "cancelled")
    await expect(reply.locator(".badge")).to_have_text("cancelled: the partial reply is kept")
    await expect(reply.locator(".text")).to_have_text("Counting: 1, 2, ")
    assert await reply.locator(".meta .tokens").get_attribute("data-value")
    # Cut off before Anthropic's final count: the output billed is the streamed estimate.
    await expect(reply.locator(".meta .tokens")).to_contain_text("out (estimated)")
    await fake.wait_for_disconnect(timeout=WAIT_SECONDS)  # the gateway closed it upstream
    assert await page.locator("#send").is_enabled()

    # Back in the session later, the stored reply says it was cut short.
    session_id = await page.locator(".session.active").get_attribute("data-session-id")
    await page.locator("#new-session").click()
    await page.locator(f".session[data-session-id='{session_id}']").click()
    stored = page.locator("#messages li.message.assistant")
    await expect(stored.locator(".text")).to_have_text("Counting: 1, 2, ")
    await expect(stored.locator(".badge")).to_contain_text("incomplete")


async def test_a_reply_the_upstream_drops_shows_its_estimated_bill(
    page: Page, upstream: tuple[FakeAnthropic, str]
) -> None:
    fake, _ = upstream
    fake.enqueue(Scenario(text_chunks=["Counting: ", "one, ", "two, ", "three"], drop_after=3))
    await send(page, "count again")
    reply = last_reply(page)
    await expect(reply).to_have_class(re.compile(r"\bfailed\b"))
    await expect(reply.locator(".text")).to_have_text("Counting: one, two, ")
    # The error says what the failed request cost, its output estimated.
    await expect(reply.locator(".meta .tokens")).to_contain_text("out (estimated)")
    assert number(await reply.locator(".meta .cost").inner_text()) > 0


async def test_switching_sessions_shows_each_conversation(page: Page) -> None:
    await send(page, "the first question")
    await expect(last_reply(page).locator(".meta .cost")).to_be_visible()
    first = await page.locator("#session-list .session.active").get_attribute("data-session-id")
    await page.locator("#new-session").click()
    await expect(page.locator("#chat-title")).to_have_text("New session")
    await expect(page.locator("#session-list .session.active")).to_have_count(0)
    await send(page, "the second question")
    await expect(last_reply(page).locator(".meta .cost")).to_be_visible()
    second = await page.locator("#session-list .session.active").get_attribute("data-session-id")
    assert first
    assert second
    assert first != second

    await page.locator(f"#session-list .session[data-session-id='{first}']").click()
    await expect(page.locator("#chat-title")).to_have_text(f"Session {first}")
    texts = page.locator("#messages li.message .text")
    await expect(texts).to_have_text(["the first question", "Hello, world!"])
    await expect(page.locator("#messages li.message.assistant .meta")).to_contain_text(
        "4 output tokens"
    )
    history = page.locator("#context-body details[data-section='history']")
    await history.locator("summary").click()
    await expect(history.locator(".content")).to_contain_text("user: the first question")

    await page.locator(f"#session-list .session[data-session-id='{second}']").click()
    await expect(texts).to_have_text(["the second question", "Hello, world!"])
    await expect(page.locator(f".session[data-session-id='{second}']")).to_have_class(
        re.compile(r"\bactive\b")
    )


# Sessions, a page at a time ------------------------------------------------------------------


async def seed_sessions(served: Served, how_many: int) -> None:
    """Sessions written straight into the gateway's database (another connection to the same
    file, as a CLI command would open): far quicker than a chat.send each."""
    async with open_database(Home(Path(served.env["AGENTSPACE_HOME"])), Config()) as database:
        sessions = SessionRepository(database)
        creating = (
            sessions.create(agent_id="default", model="claude-sonnet-5-5") for _ in range(how_many)
        )
        await asyncio.gather(*creating)


async def chat_directly(served: Served, session_id: str) -> None:
    """A reply in ``session_id`` over a socket of the test's own: the session becomes the most
    recently active one without the page hearing of it."""
    async with aiohttp.ClientSession() as http, http.ws_connect(served.socket_url) as ws:
        message = {"type": "chat.send", "id": "s", "content": "hi", "sessionId": session_id}
        await ws.send_json(message)
        while (frame := await receive(ws, WAIT_SECONDS))["type"] != "chat.stream.end":
            assert frame["type"] != "error", frame


async def shown_sessions(page: Page) -> list[str]:
    buttons = page.locator("#session-list .session")
    return await buttons.evaluate_all("buttons => buttons.map(b => b.dataset.sessionId)")


async def test_more_sessions_loads_the_next_page_until_there_are_no_more(
    browser: Browser, gateway: Served, artifacts: Path
) -> None:
    # More than one page and less than two, whatever the earlier tests left.
    await seed_sessions(gateway, SESSION_PAGE + 30)
    everything = await ask(gateway, {"type": "session.list", "id": "all"})
    total = len(everything["sessions"])
    assert SESSION_PAGE < total < 2 * SESSION_PAGE - 1
    async with open_page(browser, gateway.page_url, artifacts / "more-sessions.png") as page:
        rows, more = page.locator("#session-list .session"), page.locator("#more-sessions")
        await expect(rows).to_have_count(SESSION_PAGE)
        await expect(more).to_have_text("More sessions")
        await more.scroll_into_view_if_needed()
        await page.screenshot(path=artifacts / "more-sessions-button.png")
        first_page = await shown_sessions(page)
        assert first_page == [s["sessionId"] for s in everything["sessions"][:SESSION_PAGE]]

        # The last one shown becomes active elsewhere: the next page starts again at the front,
        # with the first page's sessions, which the list keeps once each.
        await chat_directly(gateway, first_page[-1])
        await more.click()
        await expect(rows).to_have_count(SESSION_PAGE + 1)
        await expect(more).to_be_visible()
        await expect(more).to_be_enabled()
        # The keyboard goes on at the first session the page added.
        await expect(rows.nth(SESSION_PAGE)).to_be_focused()
        await more.click()
        await expect(rows).to_have_count(total)
        await expect(more).to_have_count(0)
        shown = await shown_sessions(page)
        assert shown[:SESSION_PAGE] == first_page
        assert sorted(shown) == sorted(s["sessionId"] for s in everything["sessions"])

        # A reply refreshes the list, as many sessions as are shown, not back to one page.
        oldest = shown[-1]
        await page.locator(f".session[data-session-id='{oldest}']").click()
        await expect(page.locator("#chat-title")).to_have_text(f"Session {oldest}")
        await send(page, "back to the oldest")
        await expect(last_reply(page).locator(".meta .cost")).to_be_visible()
        await expect(rows.first).to_have_attribute("data-session-id", oldest)
        await expect(rows.first).to_have_class(re.compile(r"\bactive\b"))
        await expect(rows).to_have_count(total)
        await expect(more).to_have_count(0)


# Context inspector and usage ----------------------------------------------------------------


async def test_the_inspector_shows_what_context_inspect_reports(
    page: Page, gateway: Served
) -> None:
    await send(page, "what is in my context?")
    await expect(last_reply(page).locator(".meta .cost")).to_be_visible()
    session_id = await page.locator("#session-list .session.active").get_attribute(
        "data-session-id"
    )
    inspection = await ask(gateway, {"type": "context.inspect", "id": "c", "sessionId": session_id})
    body = page.locator("#context-body")
    totals = inspection["totals"]
    await expect(body.locator("[data-section='totals'] .tokens")).to_have_text(
        f"{totals['tokenEstimate']:,}"
    )

    rows = body.locator("details.section")
    await expect(rows).to_have_count(len(inspection["sections"]))
    for section in inspection["sections"]:
        row = body.locator(f"details[data-section='{section['name']}']")
        summary = row.locator("summary")
        assert await summary.locator(".tokens").inner_text() == f"{section['tokenEstimate']:,}"
        assert await summary.locator(".bytes").inner_text() == f"{section['byteCount']:,} B"
        cost = number(await summary.locator(".cost").inner_text())
        assert cost == pytest.approx(section["costEstimate"], rel=5e-3, abs=1e-12)
        share = await summary.locator(".fill").evaluate("fill => fill.style.width")
        expected = 100 * section["tokenEstimate"] / totals["tokenEstimate"]
        assert float(share.removesuffix("%")) == pytest.approx(expected)
        await summary.click()
        shown = await row.locator(".content").inner_text()
        assert shown == (section["content"] or "(empty)")
    total_row = body.locator("[data-section='totals']")
    assert await total_row.locator(".bytes").inner_text() == f"{totals['byteCount']:,} B"
    total_cost = number(await total_row.locator(".cost").inner_text())
    assert total_cost == pytest.approx(totals["costEstimate"], rel=5e-3)
    ratio = body.locator(".accuracy .ratio")
    assert float(await ratio.get_attribute("data-value") or "") == inspection["estimateRatio"]
    await expect(ratio).to_contain_text(f"\N{MULTIPLICATION SIGN}{inspection['estimateRatio']:.2f}")
    spread = inspection["estimateSpread"]
    shown_spread = body.locator(".accuracy .spread")
    assert float(await shown_spread.get_attribute("data-median") or "") == spread["medianRatio"]
    await expect(shown_spread).to_contain_text(f"Per request ({spread['requestCount']:,})")
    calibrated = inspection["calibrated"]
    shown_calibrated = body.locator(".accuracy .calibrated")
    assert await shown_calibrated.get_attribute("data-basis") == calibrated["basis"]
    basis = "this session" if calibrated["basis"] == "session" else "the model"
    await expect(shown_calibrated).to_contain_text(f"Calibrated estimate ({basis}")
    await expect(shown_calibrated).to_contain_text(f"{calibrated['tokenEstimate']:,} input tokens")

    exact = await ask(
        gateway, {"type": "context.inspect", "id": "e", "sessionId": session_id, "exact": True}
    )
    await page.locator("#context-exact").click()
    await expect(body.locator(".accuracy .exact")).to_contain_text(
        f"{exact['exactInputTokens']:,} input tokens"
    )


async def test_the_usage_table_and_chart_show_what_usage_query_reports(
    page: Page, gateway: Served
) -> None:
    await send(page, "a priced question")
    await expect(last_reply(page).locator(".meta .cost")).to_be_visible()
    await page.locator("#new-session").click()
    await page.locator("#model").fill("claude-unpriced-test")
    await send(page, "a question at an unknown price")
    await expect(last_reply(page).locator(".meta .cost.unpriced")).to_contain_text("cost unknown")
    await page.locator("#tab-usage").click()

    report = await ask(gateway, {"type": "usage.query", "id": "u"})
    assert set(report["perModel"]) == {"claude-sonnet-5-5", "claude-unpriced-test"}
    body = page.locator("#usage-body")
    await expect(body.locator("tbody tr")).to_have_count(2)
    for model, usage in report["perModel"].items():
        row = body.locator(f"tr[data-model='{model}']")
        for column, key in [
            ("requests", "requestCount"),
            ("input", "inputTokens"),
            ("output", "outputTokens"),
            ("tokens", "totalTokens"),
        ]:
            assert await row.locator(f".{column}").inner_text() == f"{usage[key]:,}"
        cost = await row.locator(".cost").inner_text()
        assert number(cost) == pytest.approx(usage["totalCost"], rel=5e-3, abs=1e-12)
        assert cost.endswith("*") is not usage["priced"]
        # Every digit, from the integer: the rows add up to the total shown below them.
        assert Decimal(re.sub(r"[^0-9.]", "", cost)) * 10**9 == usage["totalCostNanos"]
    grand = report["grandTotal"]
    total = body.locator("tfoot .grand-total")
    assert await total.locator(".requests").inner_text() == f"{grand['requestCount']:,}"
    assert await total.locator(".tokens").inner_text() == f"{grand['totalTokens']:,}"
    total_cost = await total.locator(".cost").inner_text()
    assert total_cost.startswith("≥ ")  # a floor: one model has no price
    assert number(total_cost) == pytest.approx(grand["totalCost"], rel=5e-3)
    assert Decimal(re.sub(r"[^0-9.]", "", total_cost)) * 10**9 == grand["totalCostNanos"]

    days = body.locator("svg g.day")
    await expect(days).to_have_count(14)
    costs = [float(await day.get_attribute("data-cost") or "") for day in await days.all()]
    assert sum(costs) == pytest.approx(grand["totalCost"])
    assert max(costs) > 0
    nanos = [int(await day.get_attribute("data-nanos") or "") for day in await days.all()]
    assert sum(nanos) == grand["totalCostNanos"]
    caption = body.locator("figure.chart figcaption")
    assert int(await caption.get_attribute("data-nanos") or "") == grand["totalCostNanos"]
    tallest = await body.locator("svg rect").evaluate_all(
        "rects => Math.max(...rects.map(rect => rect.height.baseVal.value))"
    )
    assert tallest > 0

    # Scoped to the open session: the unpriced one.
    await page.locator("#usage-scope").select_option("session")
    await expect(body.locator("tbody tr")).to_have_count(1)
    await expect(body.locator("tbody tr")).to_have_attribute("data-model", "claude-unpriced-test")


# Errors and the token -----------------------------------------------------------------------


async def test_gateway_errors_are_shown_as_readable_messages(
    page: Page, upstream: tuple[FakeAnthropic, str]
) -> None:
    fake, _ = upstream
    fake.enqueue(Scenario.overloaded())
    await send(page, "are you there?")
    failed = last_reply(page).locator(".error-box")
    await expect(failed).to_have_attribute("data-code", "UPSTREAM_OVERLOADED")
    await expect(failed).to_contain_text("Overloaded")
    await expect(failed).to_contain_text("Trying again may work.")

    fake.enqueue(Scenario(text_chunks=["Half ", "a ", "reply"], error_event_after=2))
    await send(page, "try again")
    reply = last_reply(page)
    await expect(reply.locator(".error-box")).to_have_attribute("data-code", "UPSTREAM_OVERLOADED")
    await expect(reply.locator(".text")).to_have_text("Half a ")
    await expect(reply.locator(".badge")).to_have_text("incomplete: the partial reply is kept")

    # Refused before anything is stored: the text comes back to be corrected.
    await page.locator("#model").fill("not a model!")
    await send(page, "with a bad model")
    refused = last_reply(page).locator(".error-box")
    await expect(refused).to_have_attribute("data-code", "INVALID_MESSAGE")
    await expect(refused).to_contain_text("model: must be a model id such as claude-sonnet-4-5")
    assert (await refused.inner_text()).count("must be a model id") == 1  # said once
    await expect(page.locator("#prompt")).to_have_value("with a bad model")
    await expect(page.locator("#messages li.message.user").last).to_have_class(
        re.compile(r"\bunsent\b")
    )


@pytest_asyncio.fixture(loop_scope="module")
async def guarded(tmp_path: Path, artifacts: Path) -> AsyncIterator[Served]:
    """A gateway of its own that wants the token, with no Anthropic key anywhere."""
    log = artifacts / "token-required.gateway.log"
    async with serve(tmp_path, log, AGENTSPACE_GATEWAY_REQUIRE_TOKEN="true") as served:
        yield served


async def test_a_required_credential_sends_the_browser_to_log_in_first(
    browser: Browser, guarded: Served, artifacts: Path
) -> None:
    # #19: the console's own page no longer asks for the token; it needs the login cookie.
    opened = await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "agentspace-gateway"), "open", "--print"],
        env=guarded.env,
        capture_output=True,
        text=True,
        check=True,
    )
    link = opened.stdout.strip()
    screenshot = artifacts / "token-required.png"
    async with open_page(browser, guarded.page_url, screenshot) as page:
        await expect(page.locator("body")).to_contain_text("agentspace-gateway open")
        await expect(page.locator("#workspace")).to_have_count(0)
        await page.screenshot(path=artifacts / "login-needed.png")

        await page.goto(link)
        await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        await expect(page.locator("#token-form")).to_be_hidden()

        await send(page, "hello")
        refused = last_reply(page).locator(".error-box")
        await expect(refused).to_have_attribute("data-code", "NO_API_KEY")
        await expect(refused).to_contain_text("Run: agentspace-gateway keys add anthropic")
        # The message was stored all the same, in a session the page now shows.
        await expect(page.locator("#session-list .session.active .count")).to_have_text("1 msgs")

        # The gateway going away is said, and the page offers to connect again.
        guarded.process.send_signal(signal.SIGTERM)
        await expect(page.locator("#status")).to_have_attribute("data-state", "disconnected")
        await expect(page.locator("#alerts .alert").last).to_contain_text(
            "The gateway is shutting down."
        )
        await expect(page.locator("#reconnect")).to_be_visible()
