"""agentspace-gateway clients add|list|revoke against a real home, and what is stored."""

import asyncio
import hashlib
import io
import json
import re
import sqlite3

import pytest

from agentspace_gateway.cli import main
from agentspace_gateway.home import Home
from agentspace_gateway.storage import Database, NewUsage, UsageLedger
from agentspace_gateway.storage.client_keys import ClientKeyRepository
from agentspace_gateway.storage.session_origins import SessionOrigins
from agentspace_gateway.storage.usage import Attribution

KEY = re.compile(r"^asg_[A-Za-z0-9_-]{43}$")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(""))
        status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_key_is_printed_once_and_only_its_hash_is_stored(home: Home, capsys) -> None:
    status, out, _ = run(["clients", "add", "laptop", "--expires", "2099-01-31"], capsys)
    assert status == 0
    secret = out.splitlines()[0]
    assert KEY.match(secret)
    # 43 base64url characters carry 258 bits, of which the token holds 256 random ones.
    assert "expires 2099-01-31T00:00:00.000Z" in out

    stored = home.database.read_bytes() + b"".join(
        path.read_bytes() for path in home.root.glob("*.db-wal")
    )
    assert secret.encode() not in stored
    with sqlite3.connect(home.database) as connection:
        (digest,) = connection.execute("SELECT key_sha256 FROM client_keys").fetchone()
    assert digest == hashlib.sha256(secret.encode()).hexdigest()

    status, out, _ = run(["clients", "list"], capsys)
    assert status == 0
    assert "laptop" in out
    assert secret[:10] + "…" in out
    assert "live" in out
    assert secret not in out


def test_two_keys_differ(home: Home, capsys) -> None:
    first = run(["clients", "add", "one"], capsys)[1].splitlines()[0]
    second = run(["clients", "add", "two"], capsys)[1].splitlines()[0]
    assert first != second


def test_revoke_and_reissue_under_the_same_name_with_every_step_audited(home: Home, capsys) -> None:
    run(["clients", "add", "ci"], capsys)
    assert run(["clients", "add", "ci"], capsys)[0] == 2
    status, out, _ = run(["clients", "revoke", "ci"], capsys)
    assert (status, out.startswith("client ci revoked")) == (0, True)
    assert "revoked 20" in run(["clients", "list"], capsys)[1]
    assert run(["clients", "revoke", "ci"], capsys)[0] == 2
    assert run(["clients", "add", "ci"], capsys)[0] == 0

    events = [json.loads(line) for line in run(["audit", "--json"], capsys)[1].splitlines()]
    assert [event["event"] for event in events] == ["client.add", "client.revoke", "client.add"]
    assert all("client ci (asg_" in event["detail"] for event in events)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["clients", "add", "bad name"], "Invalid client name"),
        (["clients", "add", "x", "--expires", "2001-01-01"], "already past"),
        (["clients", "revoke", "nobody"], "No live client key named 'nobody'"),
    ],
)
def test_bad_requests_say_what_to_do(home: Home, capsys, argv: list[str], message: str) -> None:
    status, _, err = run(argv, capsys)
    assert status == 2
    assert message in err


def test_an_unreadable_expiry_is_a_usage_error(home: Home, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(["clients", "add", "x", "--expires", "next tuesday"], capsys)
    assert exit_.value.code == 2
    assert "is not a date" in capsys.readouterr().err


async def bill_two_requests(home: Home) -> None:
    database = await Database.open(home.database)
    try:
        clients = await ClientKeyRepository(database).list_all()
        (laptop,) = [client for client in clients if client.name == "laptop"]
        origins = SessionOrigins(database)
        session = await origins.session_for(
            client_key_id=laptop.id,
            client_name="laptop",
            external_id=None,
            agent_id=None,
            model="m",
        )
        ledger = UsageLedger(database)
        for index, cost in enumerate((1_500_000_001, 250)):
            usage = NewUsage(
                session_id=session.id,
                model="m",
                input_tokens=1,
                output_tokens=1,
                cost_nanousd=cost,
                request_id=f"r{index}",
            )
            await ledger.open(usage)
            await origins.attribute(f"r{index}", Attribution(laptop.id))
    finally:
        await database.close()


def test_the_listing_shows_each_clients_requests_and_exact_cost(home: Home, capsys) -> None:
    run(["clients", "add", "laptop"], capsys)
    run(["clients", "add", "idle"], capsys)
    asyncio.run(bill_two_requests(home))
    out = run(["clients", "list"], capsys)[1]
    laptop_line = next(line for line in out.splitlines() if line.startswith("laptop"))
    idle_line = next(line for line in out.splitlines() if line.startswith("idle"))
    assert laptop_line.split()[-2:] == ["2", "$1.500000251"]
    assert idle_line.split()[-2:] == ["0", "$0"]
