"""The ``agentspace-gateway`` command: serve, chat, usage, budgets, sessions, keys, clients,
models, token, audit, migrate, doctor, protocol.

Exit status: 0 done, 1 the operation failed, 2 bad usage or configuration.
"""

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from agentspace_gateway import __version__
from agentspace_gateway.cli import (
    audit,
    budgets,
    chat,
    clients,
    doctor,
    keys,
    migrate,
    models,
    open,
    protocol,
    serve,
    sessions,
    token,
    usage,
)
from agentspace_gateway.cli.context import CommandError
from agentspace_gateway.cli.session_option import attach_session_ids
from agentspace_gateway.config_loading import ConfigError
from agentspace_gateway.home import Home
from agentspace_gateway.storage import StorageError
from agentspace_gateway.storage.failures import storage_problem

COMMANDS = (
    serve,
    open,
    chat,
    usage,
    budgets,
    sessions,
    keys,
    clients,
    models,
    token,
    audit,
    migrate,
    doctor,
    protocol,
)


HOME_HELP = "data directory (default: $AGENTSPACE_HOME, else ~/.config/agentspace)"
DEBUG_HELP = "on a failure, print the Python traceback too, and log at DEBUG level"


class CommandParser(argparse.ArgumentParser):
    """Every command and action takes ``--home`` too, so it may come before or after them.

    Its default is SUPPRESS: a command that was not given one leaves the value taken before
    the command name in place. argparse gives nested subcommands the parser's own class, so
    ``keys add anthropic --home DIR`` works as well.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--home", default=argparse.SUPPRESS, help=HOME_HELP)
        self.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentspace-gateway",
        description="Self-hosted AI agent gateway: every byte of context and every cent visible.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--home", help=HOME_HELP)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=CommandParser
    )
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
        _traceback(args, error)
        print(f"agentspace-gateway: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        # A storage failure is the machine's state, not a bug: one line a person can act
        # on, whichever command met it. Anything else keeps its traceback.
        problem = storage_problem(error, Home.locate(args.home).database)
        if problem is None and not isinstance(error, StorageError):
            raise
        _traceback(args, error)
        print(f"agentspace-gateway: {problem or error}", file=sys.stderr)
        return 1
    return status


def _traceback(args: argparse.Namespace, error: BaseException) -> None:
    if args.debug:
        traceback.print_exception(error)
