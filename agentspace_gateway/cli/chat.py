"""agentspace-gateway chat [--session=ID] [--model M] [--url URL] [--message TEXT [--json]]

Interactive by default. With --message it sends one message, prints the reply as it streams
(its usage and cost go to stderr, so the reply alone can be captured) and exits: 0 when the
reply ended, 1 (2 for a request the gateway found invalid) on an error reply, whose message
goes to stderr. --json prints every event received instead, one JSON object per line.
"""

import argparse
import sys
from typing import TYPE_CHECKING, Any

from agentspace_gateway.cli.context import CommandError
from agentspace_gateway.client.command import add_url_option, run_against_gateway

if TYPE_CHECKING:
    from agentspace_gateway.client.connection import GatewayConnection
    from agentspace_gateway.client.events import Event
    from agentspace_gateway.client.replies import Reply


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "chat", help="chat through the running gateway, with every token and cent shown"
    )
    parser.add_argument(
        "--session",
        metavar="ID",
        help="continue this session (its id or full key; --session=ID for an id starting with '-')",
    )
    parser.add_argument("--model", help="the model for new sessions, or for this client's requests")
    add_url_option(parser)
    parser.add_argument(
        "--message", help="send this one message, print the reply and exit ('-' reads stdin)"
    )
    parser.add_argument(
        "--json", action="store_true", help="with --message: print every event as a JSON line"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.json and args.message is None:
        raise CommandError("--json goes with --message: it prints one message's events", 2)
    if args.message is None:
        return run_against_gateway(args, lambda connection: _interactive(connection, args))
    content = sys.stdin.read() if args.message == "-" else args.message
    if not content.strip():
        raise CommandError("the message is empty: give some text with --message", 2)
    return run_against_gateway(args, lambda connection: _one_message(connection, args, content))


async def _interactive(connection: "GatewayConnection", args: argparse.Namespace) -> int:
    from agentspace_gateway.client.chat_loop import ChatLoop
    from agentspace_gateway.client.key_notice import key_hint

    hint = await key_hint(connection.url)
    if hint is not None:
        print(f"Before you chat: {hint}", file=sys.stderr, flush=True)
    chat = ChatLoop(
        connection, session_id=args.session, model=args.model, prompt=sys.stdin.isatty()
    )
    return await chat.run()


async def _one_message(
    connection: "GatewayConnection", args: argparse.Namespace, content: str
) -> int:
    from agentspace_gateway.client.replies import follow_reply
    from agentspace_gateway.client.reports import reply_summary

    request_id = await connection.send(
        "chat.send", content=content, sessionId=args.session, model=args.model
    )

    def show(event: "Event", reply: "Reply") -> None:
        if args.json:
            print(event.to_json(), flush=True)
        elif event.answers(request_id) and event.type == "chat.stream.delta":
            sys.stdout.write(str(event.get("delta", "")))
            sys.stdout.flush()

    reply = await follow_reply(connection, request_id, show)
    if not args.json:
        if reply.parts and not reply.text.endswith("\n"):
            print(flush=True)
        if reply.end is not None:
            summary = reply_summary(reply.end.data, reply.model, reply.session_id)
            print(summary, file=sys.stderr, flush=True)
        elif reply.error is not None and "usage" in reply.error.event.data:
            # The failed request was billed: its tokens and cost still count.
            summary = reply_summary(reply.error.event.data, reply.model, reply.session_id)
            print(summary, file=sys.stderr, flush=True)
    if reply.error is not None:
        raise reply.error
    return 0
