"""Handler plugins: built-ins through entry points, inline plugins, duplicates, broken ones."""

import importlib.metadata
import logging

import pytest

from agentspace_gateway.app import create_app
from agentspace_gateway.config import Config
from agentspace_gateway.handler_registry import (
    ENTRY_POINT_GROUP,
    PluginConflictError,
    handles,
    load_registry,
)
from agentspace_gateway.home import Home
from agentspace_gateway.protocol.message_base import ServerMessage

from conftest import inline_plugin
from gateway_plugins import Shout
from wsclient import exchange

BUILTIN_TYPES = {
    "chat.send",
    "chat.cancel",
    "context.inspect",
    "usage.query",
    "session.list",
    "session.history",
    "budget.status",
    "ping",
}


def test_built_in_handlers_register_without_installed_metadata() -> None:
    installed = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    assert not [ep for ep in installed if ep.value.startswith("agentspace_gateway.")]
    registry = load_registry([])
    assert set(registry.by_type) == BUILTIN_TYPES
    assert all("agentspace-gateway" in r.owner for r in registry.by_type.values())
    assert registry.by_type["ping"].owner.endswith("(ping = agentspace_gateway.handlers.ping:ping)")


async def test_health_lists_the_loaded_handlers(client) -> None:
    body = await (await client.get("/health")).json()
    assert set(body["handlers"]) == BUILTIN_TYPES | {"test.shout", "test.crash", "test.flood"}
    assert body["pluginErrors"] == []


async def test_without_the_plugin_its_type_is_unknown(make_client, passphrase) -> None:
    client = await make_client(plugins=[])
    async with client.ws_connect("/gateway") as ws:
        reply = await exchange(ws, {"type": "test.shout", "id": "s", "text": "x"})
    assert reply["code"] == "UNKNOWN_TYPE"


def test_a_type_claimed_twice_stops_startup_naming_both(home: Home) -> None:
    duplicate = inline_plugin("my-ping", "gateway_plugins:second_ping")
    with pytest.raises(PluginConflictError) as conflict:
        create_app(home=home, config=Config(), handler_entry_points=[duplicate])
    message = str(conflict.value)
    assert "'ping'" in message
    assert "agentspace_gateway.handlers.ping:ping" in message
    assert "gateway_plugins:second_ping" in message


async def test_a_broken_plugin_is_reported_and_skipped(
    make_client, passphrase, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = [
        inline_plugin("broken", "broken_plugin:handler"),
        inline_plugin("not-a-handler", "gateway_plugins:not_a_handler"),
        inline_plugin("missing", "gateway_plugins:no_such_name"),
        inline_plugin("test.shout", "gateway_plugins:shout"),
    ]
    with caplog.at_level(logging.ERROR):
        client = await make_client(plugins=plugins)
    body = await (await client.get("/health")).json()
    assert set(body["handlers"]) == BUILTIN_TYPES | {"test.shout"}
    failures = {f["plugin"]: f["reason"] for f in body["pluginErrors"]}
    assert len(failures) == 3
    assert any("ImportError" in reason for reason in failures.values())
    assert any("not a handler bound with @handles" in reason for reason in failures.values())
    assert any("AttributeError" in reason for reason in failures.values())
    assert "broken_plugin:handler" in caplog.text
    async with client.ws_connect("/gateway") as ws:
        assert (await exchange(ws, {"type": "test.shout", "id": "s", "text": "ok"}))["text"] == "OK"


def test_handles_refuses_classes_without_a_tag() -> None:
    with pytest.raises(TypeError, match="wire tag"):
        handles(ServerMessage)  # type: ignore[type-var]


def test_each_handler_keeps_its_message_class_and_replies() -> None:
    registry = load_registry([inline_plugin("test.shout", "gateway_plugins:shout")])
    handler = registry.handler_for("test.shout")
    assert handler is not None
    assert handler.message_class is Shout
    assert [reply.type for reply in handler.replies] == ["test.shouted"]
    assert "test.shouted" in [reply.type for reply in registry.reply_classes]


def test_the_auth_tag_is_reserved() -> None:
    with pytest.raises(PluginConflictError, match="reserved"):
        load_registry([inline_plugin("auth", "gateway_plugins:claims_auth")])
