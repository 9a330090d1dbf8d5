"""agentspace-gateway serve [--host H] [--port P] [--allow-remote]"""

import argparse
import asyncio
from typing import Any

from agentspace_gateway.cli.context import CommandError, load
from agentspace_gateway.config_loading import Sources


def register(commands: Any) -> None:
    parser = commands.add_parser("serve", help="run the gateway (key server and WebSocket)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", help="port to listen on (default 3271; busy → next free)")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        default=None,
        help="allow listening on a non-loopback address",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    sources: Sources = {}
    if args.host is not None:
        overrides["host"] = args.host
        sources[("server", "host")] = "command line --host"
    if args.port is not None:
        overrides["port"] = _port_argument(args.port)
        sources[("server", "port")] = "command line --port"
    if args.allow_remote:
        overrides["allow_remote"] = True
        sources[("server", "allow_remote")] = "command line --allow-remote"
    home, config = load(args, {"server": overrides}, sources, serving=True)
    # Imported here: the app pulls in the Anthropic SDK, tiktoken and the price data, which
    # the other commands never need.
    from agentspace_gateway.serving import RemoteBindRefused, ServeError, serve

    try:
        asyncio.run(serve(config, home, announce=_announce))
    except RemoteBindRefused as error:
        raise CommandError(str(error), status=2) from None
    except ServeError as error:
        raise CommandError(str(error)) from error
    return 0


def _port_argument(text: str) -> int | str:
    # A non-number goes through as text so the config layer reports it with its source.
    return int(text) if text.strip().isdigit() else text


def _announce(line: str) -> None:
    print(line, flush=True)
