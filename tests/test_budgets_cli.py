"""agentspace-gateway budgets set|list|remove against a real home: what is stored, to the
nano-dollar, what is refused and how, and a change seen by a gateway already running."""

import asyncio
import io
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_terminal_interactive import CTRL_D, GATEWAY, Terminal
from test_terminal_interactive import gateway as terminal_gateway  # noqa: F401 - a fixture

from agentspace_gateway.cli import main
from agentspace_gateway.cli.budgets import MAX_LIMIT_NANOUSD, usd_amount
from agentspace_gateway.home import Home
from agentspace_gateway.pricing import usd_text
from agentspace_gateway.storage import (
    Database,
    NewUsage,
    ReplyRecorder,
    SessionRepository,
    apply_migrations,
)
from agentspace_gateway.storage.budgets import BudgetStore, Scope
from agentspace_gateway.storage.client_keys import ClientKeyRepository
from agentspace_gateway.storage.usage import Attribution

from wsclient import exchange


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(""))
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse's own usage errors
            status = int(exit_.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def stored(home: Home) -> set[tuple[str, str, str, int, int]]:
    with sqlite3.connect(home.database) as connection:
        rows = connection.execute(
            "SELECT scope_kind, scope_id, period, limit_nanousd, clip_max_tokens FROM budgets"
        ).fetchall()
    return set(rows)


def audited(home: Home) -> list[tuple[str, str]]:
    with sqlite3.connect(home.database) as connection:
        return connection.execute(
            "SELECT event, detail FROM audit_log WHERE event LIKE 'budget.%' ORDER BY id"
        ).fetchall()


async def in_database(home: Home) -> Database:
    database = await Database.open(home.database)
    await apply_migrations(database)
    return database


def test_amounts_are_stored_as_exact_nanodollars_and_listed_back(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["budgets", "set", "global", "12.345678912", "--period", "day"], capsys)[0] == 0
    status, out, _ = run(
        ["budgets", "set", "agent:main", "0.000000001", "--period", "total", "--clip-max-tokens"],
        capsys,
    )
    assert status == 0
    assert "agent:main (total): $0.000000001" in out
    assert run(["budgets", "set", "agent:sub", "$7", "--period", "month"], capsys)[0] == 0

    assert stored(home) == {
        ("global", "", "day", 12_345_678_912, 0),
        ("agent", "main", "total", 1, 1),
        ("agent", "sub", "month", 7_000_000_000, 0),
    }
    status, out, _ = run(["budgets", "list"], capsys)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "scope", "period", "limit", "spent", "reserved", "remaining", "resets", "over"
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["global"][1:3] == ["day", "$12.345678912"]
    assert rows["global"][5] == "$12.345678912"
    assert rows["agent:main"][1:] == [
        "total", "$0.000000001", "$0.000000", "$0.000000", "$0.000000001", "never", "clip"
    ]  # fmt: skip
    assert rows["agent:sub"][6].endswith("-01T00:00:00.000Z")  # the first of next month
    assert [event for event, _ in audited(home)] == ["budget.set"] * 3


def test_setting_again_changes_the_limit_and_remove_deletes_it(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["budgets", "set", "global", "5", "--period", "day"], capsys)
    run(["budgets", "set", "global", "5.5", "--period", "day", "--clip-max-tokens"], capsys)
    assert stored(home) == {("global", "", "day", 5_500_000_000, 1)}

    status, out, _ = run(["budgets", "remove", "global", "--period", "day"], capsys)
    assert (status, out.strip()) == (0, "budget global (day) removed")
    assert stored(home) == set()
    status, out, _ = run(["budgets", "list"], capsys)
    assert status == 0
    assert out.startswith("no budgets")
    assert [event for event, _ in audited(home)] == ["budget.set", "budget.set", "budget.remove"]

    status, _, err = run(["budgets", "remove", "global", "--period", "day"], capsys)
    assert status == 2
    assert "no budget for global (day)" in err


@pytest.mark.parametrize(
    ("amount", "problem"),
    [
        ("-1", "cannot be negative"),
        ("-0.5", "cannot be negative"),
        ("0.0000000001", "more than 9 decimal places"),
        ("1.1234567891", "more than 9 decimal places"),
        ("NaN", "not an amount in USD"),
        ("inf", "not an amount in USD"),
        ("Infinity", "not an amount in USD"),
        ("1e3", "not an amount in USD"),
        ("five", "not an amount in USD"),
        ("1_000", "not an amount in USD"),
        (" 5", "not an amount in USD"),
        ("1.2.3", "not an amount in USD"),
        ("", "not an amount in USD"),
        ("9223372037", "more than a budget can hold"),
    ],
)
def test_a_bad_amount_is_a_usage_error_and_stores_nothing(
    home: Home, capsys: pytest.CaptureFixture[str], amount: str, problem: str
) -> None:
    status, _, err = run(["budgets", "set", "global", amount, "--period", "day"], capsys)

    assert status == 2
    assert problem in err
    assert "AMOUNT" in err
    assert not home.database.exists() or stored(home) == set()


@given(nanos=st.integers(min_value=0, max_value=MAX_LIMIT_NANOUSD))
def test_every_amount_written_in_dollars_reads_back_as_its_nanodollars(nanos: int) -> None:
    assert usd_amount(usd_text(nanos)) == nanos


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["budgets", "set", "everyone", "5", "--period", "day"], "is not a scope"),
        (["budgets", "set", "client:", "5", "--period", "day"], "is not a scope"),
        (["budgets", "set", "team:x", "5", "--period", "day"], "is not a scope"),
        (["budgets", "set", "global", "5", "--period", "week"], "invalid choice"),
        (["budgets", "set", "global", "5"], "--period"),
        (["budgets", "set", "client:nobody", "5", "--period", "day"], "no live client key"),
        (["budgets", "set", "session:nope", "5", "--period", "day"], "no session 'nope'"),
    ],
)
def test_a_bad_scope_or_period_is_a_usage_error(
    home: Home, capsys: pytest.CaptureFixture[str], argv: list[str], problem: str
) -> None:
    status, _, err = run(argv, capsys)

    assert status == 2
    assert problem in err


async def test_names_resolve_to_the_ids_a_budget_counts_by(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    home.ensure()
    database = await in_database(home)
    try:
        laptop = (await ClientKeyRepository(database).issue("laptop")).client
        old = (await ClientKeyRepository(database).issue("old")).client
        await ClientKeyRepository(database).revoke("old")
        session = await SessionRepository(database).create(agent_id="main", model="m")
    finally:
        await database.close()

    async def cli(*argv: str) -> tuple[int, str, str]:
        return await asyncio.to_thread(run, list(argv), capsys)

    assert (await cli("budgets", "set", "client:laptop", "3", "--period", "day"))[0] == 0
    assert (
        await cli("budgets", "set", f"session:{session.session_key}", "2", "--period", "total")
    )[0] == 0
    status, _, err = await cli("budgets", "set", "client:old", "1", "--period", "day")
    assert status == 2
    assert "no live client key named 'old'" in err
    assert old.id != laptop.id

    assert stored(home) == {
        ("client", str(laptop.id), "day", 3_000_000_000, 0),
        ("session", session.id, "total", 2_000_000_000, 0),
    }
    status, out, _ = await cli("budgets", "list")
    assert "client:laptop" in out
    assert f"session:{session.id}" in out
    assert (await cli("budgets", "remove", "client:laptop", "--period", "day"))[0] == 0
    assert stored(home) == {("session", session.id, "total", 2_000_000_000, 0)}


async def test_list_shows_spend_and_reservations_to_the_nanodollar(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    home.ensure()
    database = await in_database(home)
    try:
        laptop = (await ClientKeyRepository(database).issue("laptop")).client
        session = await SessionRepository(database).create(agent_id="main", model="m")
        store = BudgetStore(database, ZoneInfo("UTC"))
        await store.set("client", str(laptop.id), "total", 1_000_000_000)
        await ReplyRecorder(database).record(
            None,
            NewUsage(
                session_id=session.id,
                model="m",
                input_tokens=1,
                output_tokens=1,
                cost_nanousd=123_456_789,
                request_id="r1",
                attribution=Attribution(client_key_id=laptop.id),
            ),
        )
        scope = Scope(session_id=session.id, client_key_id=laptop.id)
        assert await store.reserve(scope, "r2", "m", 1, datetime.now(UTC)) is not None
    finally:
        await database.close()

    status, out, _ = await asyncio.to_thread(run, ["budgets", "list"], capsys)
    _, as_json, _ = await asyncio.to_thread(run, ["budgets", "list", "--json"], capsys)

    assert json.loads(as_json) == {
        "budgets": [
            {
                "scope": "client",
                "scopeId": str(laptop.id),
                "client": "laptop",
                "period": "total",
                "limitNanos": 1_000_000_000,
                "spentNanos": 123_456_789,
                "reservedNanos": 1,
                "remainingNanos": 876_543_210,
                "clipMaxTokens": False,
            }
        ]
    }
    assert status == 0
    row = out.splitlines()[1].split()
    assert row == [
        "client:laptop", "total", "$1.000000", "$0.123456789", "$0.000000001",
        "$0.87654321", "never", "refuse",
    ]  # fmt: skip


async def test_a_running_gateway_sees_a_budget_set_by_the_command(
    client, home: Home, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    status, _, _ = await asyncio.to_thread(
        run, ["budgets", "set", "agent:main", "0.25", "--period", "day"], capsys
    )
    assert status == 0

    async with client.ws_connect("/gateway") as ws:
        result = await exchange(ws, {"type": "budget.status", "id": "b1"})

    [budget] = result["budgets"]
    assert (budget["scope"], budget["scopeId"], budget["limitNanos"]) == (
        "agent",
        "main",
        250_000_000,
    )


async def test_the_interactive_client_lists_budgets_as_the_command_does(
    tmp_path: Path,
    terminal_gateway,  # noqa: F811 - the fixture imported above
    capsys: pytest.CaptureFixture[str],
) -> None:  # type: ignore[no-untyped-def]
    _, env, _ = terminal_gateway
    home = Home(Path(env["AGENTSPACE_HOME"]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AGENTSPACE_HOME", str(home.root))
        set_status, _, _ = await asyncio.to_thread(
            run, ["budgets", "set", "agent:main", "12.345678912", "--period", "total"], capsys
        )
        _, listing, _ = await asyncio.to_thread(run, ["budgets", "list"], capsys)
    assert set_status == 0

    terminal = Terminal([GATEWAY, "chat"], env, tmp_path)
    try:
        await terminal.expect("> ")
        terminal.type("/budgets\n")
        shown = await terminal.expect(r"\n> ")
        terminal.type(CTRL_D)
        assert await terminal.exit_status() == 0
    finally:
        terminal.close()

    row = next(line.split() for line in shown.splitlines() if line.startswith("agent:main"))
    assert row == [
        "agent:main", "total", "$12.345678912", "$0.000000", "$0.000000", "$12.345678912", "never"
    ]  # fmt: skip
    # The same figures as budgets list (which adds whether a request is clipped or refused).
    assert listing.splitlines()[1].split()[:-1] == row
