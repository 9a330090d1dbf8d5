"""Frames checked against the published JSON Schema, with the jsonschema library.

The schema is built the way ``agentspace-gateway protocol --json-schema`` builds it, from a
registry holding the built-in handlers and the tests' inline plugins, so every frame the
gateway tests exchange can be judged by it.
"""

import functools
import importlib.metadata
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from agentspace_gateway.cli.protocol import client_classes, server_classes
from agentspace_gateway.handler_registry import ENTRY_POINT_GROUP, load_registry
from agentspace_gateway.protocol.schema import json_schema

CLIENT = "ClientMessage"
SERVER = "ServerMessage"
# The inline plugins tests/conftest.py registers (gateway_plugins.py).
TEST_PLUGIN_TARGETS = ("gateway_plugins:shout", "gateway_plugins:crash", "gateway_plugins:flood")


def schema_for(entry_points: Iterable[importlib.metadata.EntryPoint]) -> dict[str, Any]:
    registry = load_registry(list(entry_points))
    return json_schema(client_classes(registry), server_classes(registry))


@functools.cache
def published_schema() -> dict[str, Any]:
    group = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    builtins = [ep for ep in group if ep.value.startswith("agentspace_gateway.")]
    plugins = [
        importlib.metadata.EntryPoint(name=f"test.{target}", value=target, group=ENTRY_POINT_GROUP)
        for target in TEST_PLUGIN_TARGETS
    ]
    return schema_for(builtins + plugins)


class FrameSchema:
    """One direction of a schema: ``problems(frame)`` lists what the schema refuses."""

    def __init__(self, schema: dict[str, Any], union: str | None = None) -> None:
        Draft202012Validator.check_schema(schema)
        resource = Resource.from_contents(schema)
        registry: Registry[Any] = Registry().with_resource(schema["$id"], resource)
        pointer = "" if union is None else f"#/$defs/{union}"
        self.validator = Draft202012Validator(
            {"$ref": f"{schema['$id']}{pointer}"}, registry=registry
        )

    def problems(self, frame: Any) -> list[str]:
        return [error.message for error in self.validator.iter_errors(frame)]

    def accepts(self, frame: Any) -> bool:
        return bool(self.validator.is_valid(frame))


@functools.cache
def published(union: str) -> FrameSchema:
    return FrameSchema(published_schema(), union)


def assert_server_frame(frame: Any) -> None:
    """A frame the gateway sent must be one the published schema describes."""
    problems = published(SERVER).problems(frame)
    assert not problems, f"the gateway sent a frame its schema refuses: {frame!r}: {problems}"


def client_frame_conforms(frame: Any) -> bool:
    return published(CLIENT).accepts(frame)
