"""The ``agentspace-gateway`` command: serve, chat, usage, sessions, keys, token, audit,
migrate, protocol.

Exit status: 0 done, 1 the operation failed, 2 bad usage or configuration.
"""

import argparse
import sys
from collections.abc import Sequence

from agentspace_gateway import __version__
from agentspace_gateway.cli import (
    audit,
    chat,
    keys,
    migrate,
    protocol,
    serve,
    sessions,
    token,
    usage,
)
from agentspace_gateway.cli.context import CommandError
from agentspace_gateway.cli.session_option import attach_session_ids
from agentspace_gateway.config import ConfigError

COMMANDS = (serve, chat, usage, sessions, keys, token, audit, migrate, protocol)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentspace-gateway",
        description="Self-hosted AI agent gateway: every byte of context and every cent visible.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--home",
        help="data directory (default: $AGENTSPACE_HOME, else ~/.config/agentspace)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(attach_session_ids(sys.argv[1:] if argv is None else argv))
    try:
        status: int = args.run(args)
    except ConfigError as error:
        print(f"agentspace-gateway: config error: {error}", file=sys.stderr)
        return 2
    except CommandError as error:
        print(f"agentspace-gateway: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        return 130
    return status
