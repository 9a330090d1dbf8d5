"""agentspace-gateway protocol [--json-schema]: the message types this installation speaks.

Reads only the installed handler plugins, never the home, the vault or the database, so a
client author can run it anywhere the package is installed.
"""

import argparse
import json
from typing import Any

from agentspace_gateway.cli.context import CommandError
from agentspace_gateway.handler_registry import (
    HandlerRegistry,
    PluginConflictError,
    builtin_handlers,
    load_registry,
)
from agentspace_gateway.protocol.connection_messages import Auth
from agentspace_gateway.protocol.message_base import ClientMessage, ServerMessage
from agentspace_gateway.protocol.messages import SERVER_MESSAGES
from agentspace_gateway.protocol.schema import SchemaError, json_schema

BUILT_IN = "built in"
# The connection itself reads the auth frame before any handler runs.
CONNECTION = "the gateway (first frame, when a token is required)"
NO_HANDLER = "built in, no handler installed"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "protocol", help="list the WebSocket message types, or print their JSON Schema"
    )
    parser.add_argument(
        "--json-schema",
        action="store_true",
        help="print the JSON Schema (draft 2020-12) of every message, plugins' included",
    )
    parser.set_defaults(run=run)


def client_classes(registry: HandlerRegistry) -> list[type[ClientMessage]]:
    """The registry's classes, which are what the gateway decodes with, then the built-in
    ones no plugin replaced, so the schema is complete even from a source checkout."""
    by_tag: dict[str, type[ClientMessage]] = {cls.type: cls for cls in registry.message_classes}
    builtins: list[type[ClientMessage]] = [Auth]
    builtins += (handler.message_class for handler in builtin_handlers())
    for cls in builtins:
        by_tag.setdefault(cls.type, cls)
    return list(by_tag.values())


def server_classes(registry: HandlerRegistry) -> list[type[ServerMessage]]:
    by_tag: dict[str, type[ServerMessage]] = {}
    for cls in (*SERVER_MESSAGES, *registry.reply_classes):
        by_tag.setdefault(cls.type, cls)
    return list(by_tag.values())


def run(args: argparse.Namespace) -> int:
    try:
        registry = load_registry()
    except PluginConflictError as error:
        raise CommandError(str(error), status=2) from None
    clients, servers = client_classes(registry), server_classes(registry)
    if args.json_schema:
        try:
            schema = json_schema(clients, servers)
        except SchemaError as error:
            raise CommandError(f"cannot describe the protocol: {error}") from None
        print(json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False))
        return 0
    rows = [(cls.type, "client", _client_owner(cls, registry)) for cls in clients]
    rows += [(cls.type, "server", _server_owner(cls, registry)) for cls in servers]
    rows.sort(key=lambda row: (row[1], row[0]))
    width = max(len(tag) for tag, _, _ in rows)
    print(f"{'type':<{width}}  direction  owner")
    for tag, direction, owner in rows:
        print(f"{tag:<{width}}  {direction:<9}  {owner}")
    return 0


def _client_owner(cls: type[ClientMessage], registry: HandlerRegistry) -> str:
    if cls is Auth:
        return CONNECTION
    registration = registry.by_type.get(cls.type)
    return NO_HANDLER if registration is None else registration.owner


def _server_owner(cls: type[ServerMessage], registry: HandlerRegistry) -> str:
    if cls in SERVER_MESSAGES:
        return BUILT_IN
    owners = [
        registration.owner
        for registration in registry.by_type.values()
        if cls in registration.handler.replies
    ]
    return ", ".join(sorted(set(owners))) or BUILT_IN
