"""The drift report: estimates against Anthropic's counts, per request and calibrated."""

from __future__ import annotations

import pytest

from agentspace_gateway.pricing import Cost, TokenCounts
from agentspace_gateway.storage import Database, NewUsage, SessionRepository, Spread, UsageLedger

from chat_helpers import send_chat
from fake_anthropic import Scenario
from wsclient import exchange


async def add(
    ledger: UsageLedger, session_id: str, model: str, actual: int, estimated: int | None
) -> None:
    usage = NewUsage.of(
        TokenCounts(actual, 1),
        Cost.unpriced(),
        session_id=session_id,
        model=model,
        request_id=None,
        estimated_input_tokens=estimated,
        stop_reason="end_turn",
    )
    await ledger.open(usage)


async def test_rows_without_reported_input_are_left_out(db: Database) -> None:
    ledger = UsageLedger(db)
    session = await SessionRepository(db).create(agent_id="main", model="m")
    await add(ledger, session.id, "m", 120, 100)
    await add(ledger, session.id, "m", 0, 100)  # failed before message_start: no count
    await add(ledger, session.id, "m", 50, None)  # no estimate recorded

    accuracy = await ledger.estimate_accuracy(session.id)

    assert (accuracy.actual_input_tokens, accuracy.estimated_input_tokens) == (120, 100)
    assert accuracy.ratio == 1.2
    assert accuracy.ratios == (1.2,)


async def test_the_spread_of_per_request_ratios(db: Database) -> None:
    ledger = UsageLedger(db)
    session = await SessionRepository(db).create(agent_id="main", model="m")
    # Ratios 0.5, 0.7, 0.9, ..., 2.3 (ten requests); cumulative 140 / 100 = 1.4.
    for tenth in range(5, 24, 2):
        await add(ledger, session.id, "m", tenth, 10)

    accuracy = await ledger.estimate_accuracy(session.id)

    assert accuracy.request_count == 10
    assert accuracy.ratio == pytest.approx(1.4)
    # Nearest rank: p10 is the 1st of 10, p90 the 9th; the median averages the 5th and 6th.
    assert accuracy.spread() == Spread(
        minimum=0.5, p10=0.5, median=pytest.approx(1.4), p90=2.1, maximum=2.3
    )


async def test_the_model_ratio_spans_sessions_and_only_that_model(db: Database) -> None:
    ledger = UsageLedger(db)
    sessions = SessionRepository(db)
    first = await sessions.create(agent_id="main", model="m")
    second = await sessions.create(agent_id="main", model="m")
    await add(ledger, first.id, "m", 90, 100)
    await add(ledger, second.id, "m", 130, 100)
    await add(ledger, second.id, "other", 500, 100)

    accuracy = await ledger.model_estimate_accuracy("m")

    assert (accuracy.ratio, accuracy.request_count) == (1.1, 2)


async def test_inspection_reports_the_spread_and_a_calibrated_estimate(
    chat_client, fake_anthropic
) -> None:
    fake, _ = fake_anthropic
    async with chat_client.ws_connect("/gateway") as ws:
        fake.enqueue(Scenario(input_tokens=0))  # upstream reported no input: left out
        session_id = (await send_chat(ws, "a", "first"))[0]["sessionId"]
        before = await exchange(
            ws, {"type": "context.inspect", "id": "i0", "sessionId": session_id}
        )
        fake.enqueue(Scenario(input_tokens=40))
        await send_chat(ws, "b", "second", sessionId=session_id)
        by_model = await exchange(
            ws, {"type": "context.inspect", "id": "i1", "sessionId": session_id}
        )
        for index, tokens in enumerate((60, 80)):
            fake.enqueue(Scenario(input_tokens=tokens))
            await send_chat(ws, f"c{index}", "more", sessionId=session_id)
        by_session = await exchange(
            ws, {"type": "context.inspect", "id": "i2", "sessionId": session_id}
        )

    for absent in ("estimateRatio", "estimateSpread", "calibrated"):
        assert absent not in before
    # One measured request: too few for the session's own ratio, so the model's is used.
    assert by_model["estimateSpread"]["requestCount"] == 1
    calibrated = by_model["calibrated"]
    assert (calibrated["basis"], calibrated["requestCount"]) == ("model", 1)
    assert calibrated["ratio"] == pytest.approx(by_model["estimateRatio"])
    estimate = by_model["totals"]["tokenEstimate"]
    assert calibrated["tokenEstimate"] == round(estimate * calibrated["ratio"])
    # The default model's $2 per MTok input: 2,000 nano-dollars a token.
    assert calibrated["costEstimateNanos"] == calibrated["tokenEstimate"] * 2_000

    spread = by_session["estimateSpread"]
    assert spread["requestCount"] == 3
    assert spread["minRatio"] <= spread["p10Ratio"] <= spread["medianRatio"]
    assert spread["medianRatio"] <= spread["p90Ratio"] <= spread["maxRatio"]
    assert spread["minRatio"] < spread["maxRatio"]
    assert by_session["calibrated"]["basis"] == "session"
    assert by_session["calibrated"]["ratio"] == pytest.approx(by_session["estimateRatio"])
