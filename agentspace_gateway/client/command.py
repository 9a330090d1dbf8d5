"""Running a command against the gateway: connect, do the work, turn failures into exits."""

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from agentspace_gateway.cli.context import CommandError, load
from agentspace_gateway.client.errors import ClientError
from agentspace_gateway.client.events import ErrorReply

if TYPE_CHECKING:
    from agentspace_gateway.client.connection import GatewayConnection

Work = Callable[["GatewayConnection"], Awaitable[int]]


def add_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        help="the gateway's WebSocket URL (default: the gateway running for this home, "
        "from runtime.json, else server.host and server.port, ws://127.0.0.1:3271)",
    )


def run_against_gateway(args: argparse.Namespace, work: Work) -> int:
    home, config = load(args)
    # Imported here: aiohttp is needed only once a command connects.
    from agentspace_gateway.client.local import connect

    async def session() -> int:
        async with await connect(home, config, args.url) as connection:
            return await work(connection)

    try:
        return asyncio.run(session())
    except ErrorReply as error:
        raise CommandError(error_line(error), status=2 if error.bad_request else 1) from None
    except ClientError as error:
        raise CommandError(str(error), error.status) from None


def error_line(error: ErrorReply) -> str:
    return f"{error.text} ({error.code})"
