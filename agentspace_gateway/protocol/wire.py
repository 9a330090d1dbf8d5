"""JSON text to message objects and back, through one strict converter built at startup.

The converter is built once the handler plugins are loaded, because their message classes
join the tagged union: a plugin's messages are validated exactly like the built-in ones.
"""

import json
import re
import typing
from collections.abc import Sequence
from typing import Any

import attrs
import cattrs
from cattrs.strategies import configure_tagged_union

from agentspace_gateway.protocol.connection_messages import FieldProblem
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError
from agentspace_gateway.protocol.message_base import ClientMessage, ServerMessage
from agentspace_gateway.protocol.validators import Text
from agentspace_gateway.strict_converter import make_strict_converter, validation_problems


def _request_id_limit() -> int:
    # The id's own check says how long a readable id may be; one number, declared once.
    check = attrs.fields(ClientMessage).id.validator
    if not isinstance(check, Text):
        raise TypeError("ClientMessage.id must be checked by Text(max_length)")
    return check.max_length


_REQUEST_ID_LIMIT = _request_id_limit()
_SNAKE = re.compile(r"_([a-z0-9])")


def camel(name: str) -> str:
    return _SNAKE.sub(lambda match: match.group(1).upper(), name)


class DecodeError(GatewayError):
    """An inbound frame that is not a valid message; ``request_id`` is echoed when readable."""

    def __init__(
        self, code: ErrorCode, message: str, details: Any = None, request_id: str | None = None
    ) -> None:
        super().__init__(code, message, details)
        self.request_id = request_id


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class WireCodec:
    def __init__(self, client_messages: Sequence[type[ClientMessage]]) -> None:
        self.converter = make_strict_converter(rename=camel, json_numbers=True)
        self.by_tag = {cls.type: cls for cls in client_messages}
        self.supported_types = sorted(self.by_tag)
        # A union needs two members; a lone plugin-less registry still decodes its one type.
        members = tuple(client_messages) if len(client_messages) > 1 else (*client_messages, _Never)
        self.union: Any = typing.Union[members]  # noqa: UP007 - built at run time
        configure_tagged_union(self.union, self.converter, tag_generator=_tag, tag_name="type")

    def decode(self, text: str) -> ClientMessage:
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as error:
            raise DecodeError(
                ErrorCode.INVALID_MESSAGE, f"Frame is not valid JSON: {error}"
            ) from None
        if not isinstance(data, dict):
            raise DecodeError(ErrorCode.INVALID_MESSAGE, "A message must be a JSON object.")
        request_id = _readable_id(data)
        where = _lone_surrogate(data) if _SURROGATE_ESCAPE.search(text) else None
        if where is not None:
            # json accepts "\ud800", but the text is not Unicode: it cannot be stored in
            # SQLite, sent upstream or even echoed back as UTF-8. The path may be the bad key
            # itself, so it is escaped before it goes into the reply.
            where = where.encode("utf-8", "backslashreplace").decode("utf-8")
            raise DecodeError(
                ErrorCode.INVALID_MESSAGE,
                f"{where}: contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff); "
                "send valid Unicode text.",
                [_problem(where, "unpaired surrogate")],
                request_id,
            )
        tag = data.get("type")
        if not isinstance(tag, str):
            problem = "required" if tag is None else "must be a string"
            raise DecodeError(
                ErrorCode.INVALID_MESSAGE,
                f"The message has no usable 'type' ({problem}).",
                [_problem("type", problem)],
                request_id,
            )
        if tag not in self.by_tag:
            raise DecodeError(
                ErrorCode.UNKNOWN_TYPE,
                f"Unknown message type {tag[:64]!r}. Supported: {', '.join(self.supported_types)}.",
                {"supportedTypes": self.supported_types},
                request_id,
            )
        try:
            message: ClientMessage = self.converter.structure(data, self.union)
        except (cattrs.BaseValidationError, ValueError, TypeError) as error:
            problems = _field_problems(error)
            summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            raise DecodeError(
                ErrorCode.INVALID_MESSAGE, f"Invalid {tag} message: {summary}", problems, request_id
            ) from None
        return message

    def request_id_of(self, text: str) -> str | None:
        """The frame's ``id`` when readable, without decoding the message."""
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            return None
        return _readable_id(data) if isinstance(data, dict) else None

    def encode(self, message: ServerMessage) -> str:
        body = self.converter.unstructure(message)
        return json.dumps({"type": message.type, **body}, ensure_ascii=False, separators=(",", ":"))


class _Never(ClientMessage):
    type: typing.ClassVar[str] = "\x00never"


def _readable_id(data: dict[str, Any]) -> str | None:
    raw_id = data.get("id")
    if (
        isinstance(raw_id, str)
        and len(raw_id) <= _REQUEST_ID_LIMIT
        and not _SURROGATE.search(raw_id)
    ):
        return raw_id
    return None


# A \uD800-\uDFFF escape (or, from a caller other than the socket, a raw surrogate): when
# the text holds none, no decoded string can hold one, so the walk below is usually skipped.
_SURROGATE_ESCAPE = re.compile("\\\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(data: Any) -> str | None:
    """The key or field path of the first string holding a surrogate, else None."""
    pending: list[tuple[str, Any]] = [("message", data)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return where
        elif isinstance(value, dict):
            for key, item in value.items():
                path = _path(where, key)
                if _SURROGATE.search(key):
                    return path
                pending.append((path, item))
        elif isinstance(value, list):
            pending.extend((f"{where}.{index}", item) for index, item in enumerate(value))
    return None


def _path(where: str, key: str) -> str:
    return key if where == "message" else f"{where}.{key}"


def _tag(cls: Any) -> str:
    tag: str = cls.type
    return tag


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _field_problems(error: BaseException) -> list[dict[str, str]]:
    problems = []
    for path, problem in validation_problems(error):
        where = ".".join(camel(str(step)) if isinstance(step, str) else str(step) for step in path)
        if isinstance(problem, cattrs.ForbiddenExtraKeysError):
            for extra in sorted(problem.extra_fields):
                field = f"{where}.{extra}" if where else extra
                problems.append(_problem(field, "unknown field"))
        elif isinstance(problem, KeyError):
            missing = camel(str(problem.args[0])) if problem.args else where
            problems.append(_problem(where or missing, "required"))
        else:
            problems.append(_problem(where or "message", str(problem)))
    return problems or [_problem("message", str(error))]


__all__ = ["DecodeError", "FieldProblem", "WireCodec", "camel"]
