"""The last ``proxy.kept_requests`` request bodies of each proxied session, gzip-compressed in
the data home, so ``context.inspect`` can show what a request carried.

A Claude Code request repeats the whole conversation, so its bodies compress well (JSON,
mostly repeated) and only the last few are worth keeping; the ledger keeps every request's
figures whatever is pruned here. Files are private to the user (0600 in a 0700 directory),
written and pruned in a worker thread, and never on the request's path to upstream.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import re
import time
from pathlib import Path

log = logging.getLogger(__name__)

# Session ids are nanoids; anything else is refused as a path component.
_SAFE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class KeptRequests:
    def __init__(self, root: Path, keep: int) -> None:
        self._root = root
        self._keep = keep
        self._tasks: set[asyncio.Task[None]] = set()
        self._sequence = 0

    @property
    def enabled(self) -> bool:
        return self._keep > 0

    def keep(self, session_id: str, request_id: str, body: bytes) -> None:
        """Store the body in the background (dropped with a log line if that fails)."""
        if not self.enabled or not (_SAFE.fullmatch(session_id) and _SAFE.fullmatch(request_id)):
            return
        # A name that sorts in arrival order, even for two requests in one nanosecond.
        self._sequence += 1
        name = f"{time.time_ns():020d}-{self._sequence:06d}-{request_id}.json.gz"
        task = asyncio.ensure_future(asyncio.to_thread(self._write, session_id, name, body))
        self._tasks.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a proxied request body could not be kept: %s", task.exception())

    async def flush(self) -> None:
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def _write(self, session_id: str, name: str, body: bytes) -> None:
        directory = self._root / session_id
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = directory / f".{name}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(gzip.compress(body, compresslevel=6))
        temporary.replace(directory / name)
        kept = sorted(directory.glob("*.json.gz"))
        for old in kept[: max(0, len(kept) - self._keep)]:
            old.unlink(missing_ok=True)

    async def latest(self, session_id: str, count: int = 1) -> list[tuple[str, bytes]]:
        """The newest ``count`` kept bodies of a session, oldest first, with their request ids."""
        if not _SAFE.fullmatch(session_id):
            return []
        return await asyncio.to_thread(self._read, session_id, count)

    def _read(self, session_id: str, count: int) -> list[tuple[str, bytes]]:
        directory = self._root / session_id
        if not directory.is_dir():
            return []
        found = []
        for path in sorted(directory.glob("*.json.gz"))[-count:]:
            request_id = path.name.removesuffix(".json.gz").split("-", 2)[2]
            try:
                found.append((request_id, gzip.decompress(path.read_bytes())))
            except (OSError, EOFError) as error:
                log.warning("kept request %s is unreadable: %s", path.name, error)
        return found
