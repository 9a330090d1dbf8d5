"""Following one chat.send from its first frame to its chat.stream.end or error."""

from collections.abc import Callable

from attrs import define, field

from agentspace_gateway.client.connection import GatewayConnection
from agentspace_gateway.client.events import ErrorReply, Event


@define
class Reply:
    request_id: str
    session_id: str | None = None
    model: str | None = None
    new_session: bool = False
    started: bool = False
    parts: list[str] = field(factory=list)
    end: Event | None = None
    error: ErrorReply | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def cancelled(self) -> bool:
        return self.end is not None and self.end.get("stopReason") == "cancelled"


async def follow_reply(
    connection: GatewayConnection, request_id: str, handle: Callable[[Event, Reply], None]
) -> Reply:
    """Read frames until the reply to ``request_id`` ends, handing each to ``handle`` after
    noting it; frames answering other requests are handed on too, for the caller to judge."""
    reply = Reply(request_id)
    while True:
        event = await connection.next_event()
        if event.type == "session.created":
            # A notification, without requestId: one chat.send runs per connection, so it is ours.
            reply.session_id, reply.new_session = event.get("sessionId"), True
        elif event.answers(request_id):
            _note(reply, event)
        handle(event, reply)
        if reply.end is not None or reply.error is not None:
            return reply


def _note(reply: Reply, event: Event) -> None:
    if event.type == "chat.stream.start":
        reply.started = True
        reply.session_id = event.get("sessionId", reply.session_id)
        reply.model = event.get("model")
    elif event.type == "chat.stream.delta":
        reply.parts.append(str(event.get("delta", "")))
    elif event.type == "chat.stream.end":
        reply.session_id = event.get("sessionId", reply.session_id)
        reply.end = event
    elif event.type == "error":
        reply.error = ErrorReply(event)
