"""JSON Schema (draft 2020-12) of the wire protocol, derived from the attrs message classes.

Derived rather than written by hand, so the published schema cannot drift from the classes
the codec decodes with, and a plugin's messages are described exactly like the built-in ones.
Each field's checks state their own JSON Schema keywords (protocol/validators.py), so the
lengths, ranges and patterns published are the ones the decoder enforces; descriptions come
from class docstrings and ``about(...)`` field metadata.

Keys are camelCase. An ``X | None = None`` field is optional: in what a client sends it may
also be null, which the decoder reads as absent; what the gateway sends leaves it out, so
server messages never hold null there.
"""

import inspect
import itertools
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, Union, get_args, get_origin

import attrs

from agentspace_gateway.protocol.message_base import ClientMessage, ServerMessage
from agentspace_gateway.protocol.validators import DESCRIPTION, SCHEMA, facet_of
from agentspace_gateway.protocol.wire import camel

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# .invalid never resolves (RFC 2606): the id names the document, it is not a download URL.
SCHEMA_ID = "https://agentspace.invalid/gateway-protocol.json"

JsonSchema = dict[str, Any]
Reference = Callable[[type], str]

_UNIONS = ("ClientMessage", "ServerMessage")
_SCALARS: dict[Any, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}
_SUPPORTED = (
    "str, int, float, bool, Any, Literal[...], X | None, list[X], dict[str, X] or an attrs class"
)


class SchemaError(TypeError):
    """A message class the schema cannot describe; the message names the class and field."""


def json_schema(
    client_classes: Iterable[type[ClientMessage]],
    server_classes: Iterable[type[ServerMessage]],
) -> JsonSchema:
    """The whole protocol: ``$defs`` per class, a union per direction, and a top-level union."""
    clients = _by_tag(client_classes, ClientMessage)
    servers = _by_tag(server_classes, ServerMessage)
    classes = _reachable([*clients.values(), *servers.values()])
    # A class a client message holds is decoded, so its optional fields take null too.
    decoded = set(_reachable(list(clients.values())))
    names = _def_names(classes)

    def reference(cls: type) -> str:
        return f"#/$defs/{names[cls]}"

    defs = {
        names[cls]: _Translator(reference, null_is_absent=cls in decoded).object_schema(cls)
        for cls in classes
    }
    defs["ClientMessage"] = _union("Any message a client sends.", clients, reference)
    defs["ServerMessage"] = _union("Any message the gateway sends.", servers, reference)
    return {
        "$schema": DIALECT,
        "$id": SCHEMA_ID,
        "title": "agentspace-gateway WebSocket protocol",
        "description": "Each WebSocket text frame on /gateway holds one of these JSON objects.",
        "oneOf": [{"$ref": f"#/$defs/{name}"} for name in _UNIONS],
        "$defs": dict(sorted(defs.items())),
    }


def _by_tag(classes: Iterable[type], base: type) -> dict[str, type]:
    by_tag: dict[str, type] = {}
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, base) and attrs.has(cls)):
            raise SchemaError(f"{cls!r} is not an attrs class subclassing {base.__name__}")
        tag = getattr(cls, "type", None)
        if not isinstance(tag, str) or not tag:
            raise SchemaError(f"{cls.__name__} needs a wire tag: type: ClassVar[str] = '...'")
        other = by_tag.setdefault(tag, cls)
        if other is not cls:
            raise SchemaError(
                f"{base.__name__} tag {tag!r} is claimed by both {_qualified(other)} and "
                f"{_qualified(cls)}; a tag must name one class."
            )
    return dict(sorted(by_tag.items()))


def _union(description: str, members: dict[str, type], reference: Reference) -> JsonSchema:
    return {"description": description, "oneOf": [{"$ref": reference(c)} for c in members.values()]}


def _reachable(roots: list[type]) -> list[type]:
    """Every attrs class the roots mention, found by translating once with a recording ref."""
    found: list[type] = []
    pending = list(roots)

    def record(cls: type) -> str:
        pending.append(cls)
        return ""

    while pending:
        cls = pending.pop(0)
        if cls not in found:
            found.append(cls)
            _Translator(record).object_schema(cls)
    return found


def _def_names(classes: list[type]) -> dict[type, str]:
    # Built-in classes claim their plain names first, so "#/$defs/Cost" means the same thing
    # whichever plugins are installed; a plugin's clashing class is qualified by its module.
    def priority(cls: type) -> tuple[bool, str, str]:
        builtin = cls.__module__.startswith("agentspace_gateway.")
        return (not builtin, cls.__module__, cls.__qualname__)

    names: dict[type, str] = {}
    taken = set(_UNIONS)
    for cls in sorted(classes, key=priority):
        name = next(candidate for candidate in _candidates(cls) if candidate not in taken)
        taken.add(name)
        names[cls] = name
    return names


def _candidates(cls: type) -> Iterator[str]:
    yield cls.__name__
    yield f"{cls.__module__}.{cls.__name__}"
    for number in itertools.count(2):
        yield f"{cls.__module__}.{cls.__name__}_{number}"


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _tag_of(cls: type) -> str | None:
    if not issubclass(cls, ClientMessage | ServerMessage):
        return None
    tag = getattr(cls, "type", None)
    return tag if isinstance(tag, str) else None


class _Translator:
    def __init__(self, reference: Reference, *, null_is_absent: bool = False) -> None:
        self._reference = reference
        self._null_is_absent = null_is_absent

    def object_schema(self, cls: type) -> JsonSchema:
        try:
            hints = typing.get_type_hints(cls)
        except (NameError, TypeError) as error:
            raise SchemaError(f"{cls.__name__}: cannot resolve its annotations ({error})") from None
        tag = _tag_of(cls)
        schema: JsonSchema = {"title": tag or cls.__name__}
        doc = cls.__dict__.get("__doc__")  # not inspect.getdoc: that inherits the base's text
        if isinstance(doc, str) and doc.strip():
            schema["description"] = inspect.cleandoc(doc)
        schema["type"] = "object"
        properties: JsonSchema = {}
        required: list[str] = []
        if tag is not None:
            properties["type"] = {"const": tag, "description": "The message's tag."}
            required.append("type")
        for attribute in attrs.fields(cls):
            if not attribute.init:
                continue  # the codec neither reads nor writes it
            where = f"{cls.__name__}.{attribute.name}"
            key = camel(attribute.name)
            if key in properties:
                raise SchemaError(f"{where}: the wire key {key!r} is already taken")
            if attribute.name not in hints:
                raise SchemaError(f"{where} has no type annotation; give it one ({_SUPPORTED})")
            properties[key], is_required = self._field(attribute, hints[attribute.name], where)
            if is_required:
                required.append(key)
        schema["properties"] = properties
        schema["required"] = sorted(required)
        schema["additionalProperties"] = False
        return schema

    def _field(
        self, attribute: "attrs.Attribute[Any]", annotation: Any, where: str
    ) -> tuple[JsonSchema, bool]:
        default = attribute.default
        inner = _optional_inner(annotation)
        if default is attrs.NOTHING:
            schema, required = self._checked(attribute, annotation, where), True
        elif inner is not None and default is None:
            # The encoder leaves None out; the decoder reads null as None, the same as absent.
            schema, required = self._checked(attribute, inner, where), False
            if self._null_is_absent:
                schema = _or_null(schema)
        else:
            schema, required = self._checked(attribute, annotation, where), False
            example = _json_default(default)
            if example is not None:
                schema["default"] = example
        description = attribute.metadata.get(DESCRIPTION)
        if isinstance(description, str):
            schema = {"description": description, **schema}
        return schema, required

    def _checked(
        self, attribute: "attrs.Attribute[Any]", annotation: Any, where: str
    ) -> JsonSchema:
        """The annotation's schema with the keywords the field's checks state."""
        schema = self.annotation(annotation, where)
        schema.update(facet_of(attribute.validator))
        schema.update(facet_of(attribute.converter))
        schema.update(attribute.metadata.get(SCHEMA, {}))
        return schema

    def annotation(self, annotation: Any, where: str) -> JsonSchema:
        if annotation is Any:
            return {}
        if annotation in _SCALARS:
            return {"type": _SCALARS[annotation]}
        if annotation is type(None):
            return {"type": "null"}
        if isinstance(annotation, type) and attrs.has(annotation):
            return {"$ref": self._reference(annotation)}
        origin, arguments = get_origin(annotation), get_args(annotation)
        if origin is Literal and all(type(value) in _SCALARS for value in arguments):
            return {"enum": list(arguments)}
        if origin in (Union, types.UnionType) and _optional_inner(annotation) is not None:
            return {"anyOf": [self.annotation(arg, where) for arg in arguments]}
        if origin is list and len(arguments) == 1:
            return {"type": "array", "items": self.annotation(arguments[0], where)}
        if origin is tuple and len(arguments) == 2 and arguments[1] is Ellipsis:
            return {"type": "array", "items": self.annotation(arguments[0], where)}
        if origin is dict and len(arguments) == 2 and arguments[0] is str:
            return {"type": "object", "additionalProperties": self.annotation(arguments[1], where)}
        raise SchemaError(
            f"{where}: the annotation {annotation!r} cannot be described on the wire; "
            f"use {_SUPPORTED}"
        )


def _or_null(schema: JsonSchema) -> JsonSchema:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    if not schema:  # Any already admits null
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _optional_inner(annotation: Any) -> Any:
    """X for ``X | None``; None for anything else, including wider unions the codec refuses."""
    if get_origin(annotation) not in (Union, types.UnionType):
        return None
    others = [arg for arg in get_args(annotation) if arg is not type(None)]
    if len(others) != 1 or len(others) == len(get_args(annotation)):
        return None
    return others[0]


def _json_default(default: Any) -> Any:
    # A reader needs the default: the codec leaves a field out when it holds its default.
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        if default.takes_self:
            return None
        default = default.factory()
    if type(default) in _SCALARS:
        return default
    if isinstance(default, list | tuple) and not default:
        return []
    if isinstance(default, dict) and not default:
        return {}
    return None
