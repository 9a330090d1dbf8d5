"""agentspace-gateway budgets set SCOPE AMOUNT --period P [--clip-max-tokens] |
list [--json] | remove SCOPE --period P

Spend limits in USD (docs/budgets.md). SCOPE is ``global``, ``client:NAME`` (a client key's
name), ``session:ID`` (a session id or full key) or ``agent:ID``. These commands work on the
database directly, as ``clients`` does, so they work whether or not the gateway runs: a
running gateway reads the budgets at every request, so a change holds from its next one.
"""

import argparse
import asyncio
import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from agentspace_gateway.audited_keys import Actor
from agentspace_gateway.cli.context import CommandError, load, open_database
from agentspace_gateway.client.tables import money, table
from agentspace_gateway.config import Config
from agentspace_gateway.storage import AuditLog, Database, SessionRepository
from agentspace_gateway.storage.budgets import PERIODS, Budget, BudgetError, BudgetStore, Standing
from agentspace_gateway.storage.client_keys import ClientKey, ClientKeyRepository

NANOUSD_PER_USD = 10**9
# A limit is a SQLite INTEGER of nano-dollars: at most 2**63 - 1, about 9.2 billion USD.
MAX_LIMIT_NANOUSD = 2**63 - 1
# Digits with at most one point; Decimal alone would also take "NaN", "1e3", " 5" and "1_0".
_AMOUNT = re.compile(r"\$?(?:\d+(?:\.\d*)?|\.\d+)")
SCOPE_HELP = "global, client:NAME (a client key), session:ID (id or full key) or agent:ID"


class BudgetEvent(StrEnum):
    SET = "budget.set"
    REMOVE = "budget.remove"


@attrs.frozen
class ScopeArgument:
    """A scope as typed: its kind and the name or id after the colon ('' for global)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return self.kind if self.kind == "global" else f"{self.kind}:{self.name}"


def register(commands: Any) -> None:
    parser = commands.add_parser("budgets", help="spend limits per client, session, agent or all")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    setting = actions.add_parser("set", help="create a budget, or change its limit")
    setting.add_argument("scope", type=scope_argument, metavar="SCOPE", help=SCOPE_HELP)
    setting.add_argument("amount", type=usd_amount, metavar="AMOUNT", help="USD, e.g. 5 or 0.25")
    _period_option(setting)
    setting.add_argument(
        "--clip-max-tokens",
        action="store_true",
        help="lower a request's max_tokens to fit what remains, instead of refusing it",
    )
    setting.set_defaults(run=run_set)
    listing = actions.add_parser(
        "list", help="every budget: limit, spent, reserved, remaining, when it resets"
    )
    listing.add_argument(
        "--json",
        action="store_true",
        help="print the budgets as one JSON object, in integer nano-dollars",
    )
    listing.set_defaults(run=run_list)
    removing = actions.add_parser("remove", help="remove a budget")
    removing.add_argument("scope", type=scope_argument, metavar="SCOPE", help=SCOPE_HELP)
    _period_option(removing)
    removing.set_defaults(run=run_remove)


def _period_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--period",
        required=True,
        choices=PERIODS,
        help="day or month (calendar, in [budgets] time_zone, UTC by default) or total",
    )


def usd_amount(text: str) -> int:
    """USD as decimal text, exactly, in nano-dollars: '12.345678912' -> 12345678912."""
    if text.startswith("-"):
        raise argparse.ArgumentTypeError(f"{text!r}: a budget cannot be negative")
    if not _AMOUNT.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an amount in USD: write digits with at most one point, "
            "e.g. 5, 0.25 or 12.345678912"
        )
    try:
        _sign, digits, exponent = Decimal(text.removeprefix("$")).as_tuple()
    except InvalidOperation:  # the pattern admits only what Decimal reads; kept as a guard
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount in USD") from None
    assert isinstance(exponent, int)
    # Integer arithmetic on the digits: exact at any size, unlike a Decimal context's 28.
    value = int("".join(map(str, digits)))
    shift = exponent + 9
    if shift < 0:
        divisor: int = 10**-shift
        value, rest = divmod(value, divisor)
        if rest:
            raise argparse.ArgumentTypeError(
                f"{text!r} has more than 9 decimal places: a nano-dollar (0.000000001) is "
                "the smallest amount"
            )
    else:
        multiplier: int = 10**shift
        value *= multiplier
    if value > MAX_LIMIT_NANOUSD:
        raise argparse.ArgumentTypeError(f"{text!r} is more than a budget can hold")
    return value


def scope_argument(text: str) -> ScopeArgument:
    if text == "global":
        return ScopeArgument("global", "")
    kind, colon, name = text.partition(":")
    if not colon or kind not in ("client", "session", "agent") or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not a scope: write {SCOPE_HELP}")
    return ScopeArgument(kind, name)


def run_set(args: argparse.Namespace) -> int:
    home, config = load(args)

    async def store() -> Budget:
        async with open_database(home, config) as database:
            scope_id = await _scope_id(database, args.scope, for_removal=False)
            try:
                budget = await _store(database, config).set(
                    args.scope.kind,
                    scope_id,
                    args.period,
                    args.amount,
                    clip_max_tokens=args.clip_max_tokens,
                )
            except BudgetError as error:
                raise CommandError(str(error), status=2) from None
            clip = ", max_tokens clipped to fit" if budget.clip_max_tokens else ""
            await _audit(
                database,
                BudgetEvent.SET,
                f"{args.scope} ({args.period}): {money(None, budget.limit_nanousd)}{clip}",
            )
            return budget

    budget = asyncio.run(store())
    how = "clipping max_tokens to fit" if budget.clip_max_tokens else "refusing what does not fit"
    print(f"budget {args.scope} ({budget.period}): {money(None, budget.limit_nanousd)}, {how}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    home, config = load(args)

    async def remove() -> bool:
        async with open_database(home, config) as database:
            scope_id = await _scope_id(database, args.scope, for_removal=True)
            removed = await _store(database, config).remove(args.scope.kind, scope_id, args.period)
            if removed:
                await _audit(database, BudgetEvent.REMOVE, f"{args.scope} ({args.period})")
            return removed

    if not asyncio.run(remove()):
        raise CommandError(
            f"no budget for {args.scope} ({args.period}); see: agentspace-gateway budgets list",
            status=2,
        )
    print(f"budget {args.scope} ({args.period}) removed")
    return 0


def run_list(args: argparse.Namespace) -> int:
    home, config = load(args)

    async def listing() -> tuple[list[Standing], dict[int, ClientKey]]:
        async with open_database(home, config) as database:
            standings = await _store(database, config).standings(datetime.now(UTC))
            keys = await ClientKeyRepository(database).list_all()
            return standings, {key.id: key for key in keys}

    standings, keys = asyncio.run(listing())
    if args.json:
        # The keys of budget.status.result, so a script reads either the same way.
        budgets = [_json_budget(standing, keys) for standing in standings]
        print(json.dumps({"budgets": budgets}, ensure_ascii=False))
        return 0
    if not standings:
        print("no budgets (set one with: agentspace-gateway budgets set global 5 --period day)")
        return 0
    rows = [
        [
            scope_label(standing.budget, keys),
            standing.budget.period,
            money(None, standing.budget.limit_nanousd),
            money(None, standing.spent_nanousd),
            money(None, standing.reserved_nanousd),
            money(None, standing.remaining_nanousd),
            standing.resets_at or "never",
            "clip" if standing.budget.clip_max_tokens else "refuse",
        ]
        for standing in standings
    ]
    headers = ("scope", "period", "limit", "spent", "reserved", "remaining", "resets", "over")
    for line in table(headers, rows, right=(2, 3, 4, 5)):
        print(line)
    return 0


def _json_budget(standing: Standing, keys: dict[int, ClientKey]) -> dict[str, Any]:
    budget = standing.budget
    found: dict[str, Any] = {"scope": budget.scope_kind, "scopeId": budget.scope_id}
    if budget.scope_kind == "client" and int(budget.scope_id) in keys:
        found["client"] = keys[int(budget.scope_id)].name
    found.update(
        period=budget.period,
        limitNanos=budget.limit_nanousd,
        spentNanos=standing.spent_nanousd,
        reservedNanos=standing.reserved_nanousd,
        remainingNanos=standing.remaining_nanousd,
        clipMaxTokens=budget.clip_max_tokens,
    )
    # Left out for a total budget, as budget.status leaves it out.
    if standing.resets_at is not None:
        found["resetsAt"] = standing.resets_at
    return found


def scope_label(budget: Budget, keys: dict[int, ClientKey]) -> str:
    if budget.scope_kind == "global":
        return "global"
    if budget.scope_kind == "client":
        key = keys.get(int(budget.scope_id))
        if key is None:
            return f"client:#{budget.scope_id}"
        return f"client:{key.name}" + (" (revoked)" if key.revoked_at is not None else "")
    return f"{budget.scope_kind}:{budget.scope_id}"


def _store(database: Database, config: Config) -> BudgetStore:
    return BudgetStore(database, ZoneInfo(config.budgets.time_zone))


async def _scope_id(database: Database, scope: ScopeArgument, *, for_removal: bool) -> str:
    """The id a budget stores for ``scope``: a client key's id, a session's id."""
    match scope.kind:
        case "client":
            return await _client_key_id(database, scope.name, for_removal=for_removal)
        case "session":
            sessions = SessionRepository(database)
            if scope.name.startswith("agent:"):
                session = await sessions.get_by_key(scope.name)
            else:
                session = await sessions.get(scope.name)
            if session is not None:
                return session.id
            if for_removal:
                return scope.name
            raise CommandError(
                f"no session {scope.name!r} (see: agentspace-gateway sessions)", status=2
            )
        case _:
            return scope.name


async def _client_key_id(database: Database, name: str, *, for_removal: bool) -> str:
    named = [key for key in await ClientKeyRepository(database).list_all() if key.name == name]
    live = [key for key in named if key.revoked_at is None]
    # A revoked key's budget can still be removed; only a live key gets a new one.
    chosen = live or (named if for_removal else [])
    if not chosen:
        raise CommandError(
            f"no live client key named {name!r} (see: agentspace-gateway clients list)",
            status=2,
        )
    # The newest key of that name: the live one, or the last revoked.
    return str(max(key.id for key in chosen))


async def _audit(database: Database, event: BudgetEvent, detail: str) -> None:
    actor = Actor.command_line()
    await AuditLog(database).record(
        event.value,
        remote_addr=actor.remote_addr,
        user_agent=actor.user_agent,
        detail=f"{detail}; {actor.detail}",
    )
