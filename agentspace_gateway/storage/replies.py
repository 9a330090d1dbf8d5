"""The end of a chat exchange, written at once: the assistant's reply and the usage row.

One transaction, so a crash leaves both or neither: never a reply without its cost, or a
billed request without the text it paid for. A request whose usage row was opened when its
stream started (``UsageLedger.open``) has that row brought up to date instead of a second.
"""

from __future__ import annotations

import sqlite3

import attrs

from agentspace_gateway.storage.database import Database
from agentspace_gateway.storage.messages import MessageRow, NewMessage, insert_message
from agentspace_gateway.storage.usage import NewUsage, UsageRecord, insert_usage, update_usage


@attrs.frozen
class RecordedReply:
    message: MessageRow | None
    usage: UsageRecord | None


class ReplyRecorder:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        message: NewMessage | None,
        usage: NewUsage | None,
        *,
        open_usage_id: int | None = None,
    ) -> RecordedReply:
        def insert(raw: sqlite3.Connection) -> RecordedReply:
            stored_message = None if message is None else insert_message(raw, message)
            stored_usage = None
            if usage is not None:
                if open_usage_id is not None:
                    stored_usage = update_usage(raw, open_usage_id, usage)
                if stored_usage is None:
                    stored_usage = insert_usage(raw, usage)
            return RecordedReply(stored_message, stored_usage)

        return await self._db.write_in_one_trip(insert)
