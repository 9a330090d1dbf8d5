"""Frames from the gateway, as events: the wire tag, the request they answer, and the rest.

The client keeps frames as the JSON it received rather than decoding them into the gateway's
own classes: a newer gateway or a plugin may add keys and types, which a client should show
or pass on, not refuse.
"""

import json
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from agentspace_gateway.client.errors import ProtocolViolation


@frozen
class Event:
    type: str
    data: Mapping[str, Any]  # the whole frame, as received

    @property
    def request_id(self) -> str | None:
        value = self.data.get("requestId")
        return value if isinstance(value, str) else None

    def answers(self, request_id: str) -> bool:
        return self.request_id == request_id

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def to_json(self) -> str:
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))


def parse_frame(text: str) -> Event:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ProtocolViolation(f"the gateway sent a frame that is not JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolViolation("the gateway sent a frame that is not a message object")
    return Event(data["type"], data)


class ErrorReply(Exception):
    """The gateway answered a request with ``error``; the message is written for a person."""

    def __init__(self, event: Event) -> None:
        self.event = event
        self.code = str(event.get("code", "ERROR"))
        self.text = str(event.get("message", "the gateway reported an error"))
        super().__init__(f"{self.code}: {self.text}")

    @property
    def bad_request(self) -> bool:
        """The request itself was wrong (a bad --since, a malformed --model): a usage error."""
        return self.code == "INVALID_MESSAGE"
