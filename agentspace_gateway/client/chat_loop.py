"""The interactive chat: a prompt, replies streamed as they arrive, and slash commands.

Ctrl-C is caught by the event loop, not raised: while a reply streams it sends
``chat.cancel`` (after ``chat.stream.start``, as the protocol asks) and the prompt comes
back when the stream ends, "cancelled"; at the prompt it leaves, as Ctrl-D does.
"""

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable
from typing import Any, TextIO, TypeVar

from agentspace_gateway.client.command import error_line
from agentspace_gateway.client.connection import GatewayConnection
from agentspace_gateway.client.errors import ClientError, ReplyTimeout
from agentspace_gateway.client.events import ErrorReply, Event
from agentspace_gateway.client.line_input import LineInput
from agentspace_gateway.client.replies import Reply, follow_reply
from agentspace_gateway.client.reports import (
    budgets_report,
    inspection_report,
    reply_summary,
    resume_hint,
    sessions_report,
    usage_report,
)
from agentspace_gateway.protocol.errors import ErrorCode
from agentspace_gateway.protocol.session_messages import SESSION_PAGE_MAX

T = TypeVar("T")

# /sessions shows the most recently active few: the whole list can be thousands of rows.
SESSIONS_SHOWN = 20

HELP = f"""\
Type a message and press Enter: the reply streams in, then its tokens and cost.
  /inspect [exact]  what the next request carries, section by section; "exact" also asks
                    Anthropic for its own count
  /usage [session]  tokens and cost per model, of every session or only this one
  /budgets          every budget: limit, spent, reserved, remaining, when it resets
  /sessions [all]   the {SESSIONS_SHOWN} most recently active sessions, or every one; * marks
                    this one
  /session ID       continue another session
  /new              the next message starts a new session
  /help             this help
  /quit             leave (Ctrl-D does too)
Ctrl-C stops a streaming reply; at the prompt it leaves. Start a line with // to send it
with a single leading slash."""


class _Leave(Exception):
    """Ctrl-C at the prompt or while waiting for a command's answer."""


class ChatLoop:
    def __init__(
        self,
        connection: GatewayConnection,
        *,
        session_id: str | None = None,
        model: str | None = None,
        prompt: bool = True,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
    ) -> None:
        self.connection = connection
        self.session_id = session_id
        self.model = model
        self.prompt = prompt
        self.out, self.err = out, err
        self._streaming: Reply | None = None
        self._cancel_wanted = False
        self._leave = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, self._interrupted)
        except NotImplementedError:  # Windows' event loop watches neither signals nor stdin
            raise ClientError(
                "the interactive chat needs a POSIX terminal; here, use --message", status=2
            ) from None
        lines = LineInput()
        lines.start()
        try:
            if self.session_id is not None and not await self._choose_session(self.session_id):
                return 1
            self._say(self._banner())
            while True:
                if self.prompt:
                    self.out.write("> ")
                    self.out.flush()
                line = await self._unless_left(lines.readline())
                if line is None or not await self._handle(line):
                    break
        except _Leave:
            pass
        except ClientError as error:
            self._say("")
            self._complain(f"agentspace-gateway: {error}")
            return 1
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            lines.stop()
        if self.prompt:
            self._say("")
        if self.session_id is not None:
            self._say(resume_hint(self.session_id))
        return 0

    def _banner(self) -> str:
        where = f"session {self.session_id}" if self.session_id else "a new session"
        return (
            f"Connected to {self.connection.url}: {where}. /help lists the commands; Ctrl-D leaves."
        )

    async def _handle(self, line: str) -> bool:
        text = line.strip()
        if not text:
            return True
        if text.startswith("//"):
            await self._chat(text[1:])
            return True
        if not text.startswith("/"):
            await self._chat(text)
            return True
        command, _, argument = text[1:].partition(" ")
        argument = argument.strip()
        if command in ("quit", "exit"):
            return False
        try:
            await self._command(command, argument)
        except ErrorReply as error:
            self._complain(f"error: {error_line(error)}")
        except ReplyTimeout as error:
            self._complain(f"error: {error}")
        return True

    async def _command(self, command: str, argument: str) -> None:
        if command == "help":
            self._say(HELP)
        elif command == "new":
            self.session_id = None
            self._say("The next message starts a new session.")
        elif command == "sessions":
            await self._sessions(argument)
        elif command == "session" and argument:
            if await self._choose_session(argument):
                self._say(f"Continuing session {self.session_id}.")
        elif command == "usage":
            await self._usage(argument)
        elif command == "inspect":
            await self._inspect(argument)
        elif command == "budgets":
            self._say(*budgets_report((await self._ask("budget.status")).data))
        else:
            self._complain(f"Unknown command /{command}: /help lists the commands.")

    async def _usage(self, argument: str) -> None:
        only_this = argument == "session"
        if only_this and self.session_id is None:
            self._complain("No session yet: send a message first.")
            return
        report = await self._ask("usage.query", sessionId=self.session_id if only_this else None)
        self._say(
            f"usage of session {self.session_id}:" if only_this else "usage of every session:"
        )
        self._say(*usage_report(report.data))

    async def _inspect(self, argument: str) -> None:
        if self.session_id is None:
            self._complain("No session yet: send a message first, or pick one with /session ID.")
            return
        exact = True if argument == "exact" else None
        inspection = await self._ask("context.inspect", sessionId=self.session_id, exact=exact)
        self._say(*inspection_report(inspection.data))

    async def _sessions(self, argument: str) -> None:
        if argument == "all":
            self._say(*sessions_report({"sessions": await self._every_session()}, self.session_id))
            return
        if argument:
            self._complain("/sessions lists the latest sessions, /sessions all every one.")
            return
        listing = await self._ask("session.list", limit=SESSIONS_SHOWN)
        self._say(*sessions_report(listing.data, self.session_id))
        if listing.get("nextAfter") is not None:
            self._say(
                f"(the {SESSIONS_SHOWN} most recently active sessions; there are more: "
                "/sessions all lists every one)"
            )

    async def _every_session(self) -> list[Any]:
        """Every session, a page at a time: each reply stays small and the gateway answers
        others in between. A session that becomes active meanwhile can come twice (the pages
        are not a snapshot); it is listed once."""
        sessions: dict[Any, Any] = {}
        after = None
        while True:
            page = await self._ask("session.list", limit=SESSION_PAGE_MAX, after=after)
            for session in page.get("sessions") or []:
                sessions.setdefault(session.get("sessionId"), session)
            after = page.get("nextAfter")
            if after is None:
                return list(sessions.values())

    async def _choose_session(self, wanted: str) -> bool:
        """Find the session by id or key. session.history answers for exactly the one named,
        with its id, however many sessions there are; the list would have to be walked."""
        try:
            found = await self._ask("session.history", sessionId=wanted, limit=1)
        except ErrorReply as error:
            if error.code not in (ErrorCode.SESSION_NOT_FOUND, ErrorCode.INVALID_MESSAGE):
                self._complain(f"error: {error_line(error)}")
                return False
        else:
            self.session_id = found.get("sessionId")
            return True
        self._complain(
            f"No session {wanted!r}: /sessions (or agentspace-gateway sessions) lists them."
        )
        return False

    async def _chat(self, content: str) -> None:
        request_id = await self.connection.send(
            "chat.send", content=content, sessionId=self.session_id, model=self.model
        )
        self._streaming, self._cancel_wanted = Reply(request_id), False
        try:
            reply = await follow_reply(self.connection, request_id, self._on_event)
        finally:
            self._streaming = None
        if reply.parts and not reply.text.endswith("\n"):
            self.out.write("\n")
        self.session_id = reply.session_id or self.session_id
        if reply.end is not None:
            self._say(reply_summary(reply.end.data, reply.model))
        if reply.error is not None:
            self._complain(f"error: {error_line(reply.error)}")
            if "usage" in reply.error.event.data:
                # The failed request was billed: its tokens and cost still count.
                self._say(reply_summary(reply.error.event.data, reply.model))

    def _on_event(self, event: Event, reply: Reply) -> None:
        self._streaming = reply
        if event.type == "session.created":
            self._say(f"(new session {event.get('sessionId')})")
        elif not event.answers(reply.request_id):
            # A cancel that crossed the end of its stream is answered NO_ACTIVE_STREAM:
            # harmless, and nothing the person needs to see.
            if event.type == "error" and event.get("code") != ErrorCode.NO_ACTIVE_STREAM:
                self._complain(f"error: {error_line(ErrorReply(event))}")
        elif event.type == "chat.stream.start" and self._cancel_wanted:
            self._cancel(reply.request_id)
        elif event.type == "chat.stream.delta":
            self.out.write(str(event.get("delta", "")))
            self.out.flush()

    def _interrupted(self) -> None:
        reply = self._streaming
        if reply is None:
            self._leave.set()
        elif reply.started:
            self._cancel(reply.request_id)
        else:
            # Before chat.stream.start there is nothing to stop yet: cancel once it arrives.
            self._cancel_wanted = True

    def _cancel(self, request_id: str) -> None:
        self._cancel_wanted = False
        task = asyncio.create_task(self._send_cancel(request_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_cancel(self, request_id: str) -> None:
        # A lost connection shows in the stream being followed; nothing to add here.
        with contextlib.suppress(ClientError):
            await self.connection.send("chat.cancel", requestId=request_id)

    async def _ask(self, message_type: str, **fields: Any) -> Event:
        return await self._unless_left(self.connection.request(message_type, **fields))

    async def _unless_left(self, awaitable: Awaitable[T]) -> T:
        """Await, unless Ctrl-C comes first, or the gateway goes away (it may shut down
        while the person sits at the prompt: say so at once, not at the next message)."""
        work = asyncio.ensure_future(awaitable)
        left = asyncio.ensure_future(self._leave.wait())
        closed = asyncio.ensure_future(self.connection.wait_closed())
        try:
            await asyncio.wait({work, left, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, left, closed):
                task.cancel()
        if work.done() and not work.cancelled():
            return work.result()
        if left.done():
            raise _Leave
        while True:  # the frames still queued, then the reason the connection ended
            await self.connection.next_event()

    def _say(self, *lines: str) -> None:
        for line in lines:
            print(line, file=self.out, flush=True)

    def _complain(self, line: str) -> None:
        print(line, file=self.err, flush=True)
