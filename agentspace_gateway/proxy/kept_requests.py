"""The last ``proxy.kept_requests`` request bodies of each proxied session, gzip-compressed in
the data home, so ``context.inspect`` can show what a request carried.

A Claude Code request repeats the whole conversation, so its bodies compress well (JSON,
mostly repeated) and only the last few are worth keeping; the ledger keeps every request's
figures whatever is pruned here. Files are private to the user (0600 in a 0700 directory),
written and pruned in a worker thread, and never on the request's path to upstream.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gzip
import logging
import os
import re
import time
from pathlib import Path

log = logging.getLogger(__name__)

# Session ids are nanoids; anything else is refused as a path component.
_SAFE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# gzip's fastest level: a body is written on every request, where level 6 cost about three
# times the CPU for files about a tenth smaller (repeated JSON compresses well at any level).
_COMPRESS_LEVEL = 1


class KeptRequests:
    def __init__(self, root: Path, keep: int) -> None:
        self._root = root
        self._keep = keep
        # Bodies waiting for the writer: (session id, file name, body), in arrival order.
        self._waiting: collections.deque[tuple[str, str, bytes]] = collections.deque()
        self._writer: asyncio.Future[None] | None = None
        self._sequence = 0
        # Per session, its kept files' names oldest first, as the worker thread wrote or
        # found them (the directory is listed once per session, not once per body); touched
        # only by the one writer job at a time.
        self._names: collections.OrderedDict[str, collections.deque[str]] = (
            collections.OrderedDict()
        )

    @property
    def enabled(self) -> bool:
        return self._keep > 0

    def keep(self, session_id: str, request_id: str, body: bytes) -> None:
        """Store the body in the background (dropped with a log line if that fails).

        One worker-thread job at a time writes every body waiting, not one job each: waking
        a thread costs the event loop more than writing a small body, and on two busy cores
        the loop can lose its core, holding the GIL, to the thread it woke (50 streams
        starting together handed off 50 times)."""
        if not self.enabled or not (_SAFE.fullmatch(session_id) and _SAFE.fullmatch(request_id)):
            return
        # A name that sorts in arrival order, even for two requests in one nanosecond.
        self._sequence += 1
        name = f"{time.time_ns():020d}-{self._sequence:06d}-{request_id}.json.gz"
        self._waiting.append((session_id, name, body))
        if self._writer is None:
            self._start_writer()

    def _start_writer(self) -> None:
        self._writer = asyncio.ensure_future(asyncio.to_thread(self._write_waiting))
        self._writer.add_done_callback(self._written)

    def _written(self, writer: asyncio.Future[None]) -> None:
        # On the loop, as keep() is: a body queued after the thread's last look is seen here.
        self._writer = None
        if not writer.cancelled() and writer.exception() is not None:
            log.warning("proxied request bodies could not be kept: %s", writer.exception())
        if self._waiting:
            self._start_writer()

    async def flush(self) -> None:
        while self._writer is not None:
            await asyncio.wait({self._writer})

    # Sessions whose kept names are remembered; one evicted is listed again when next written.
    MAX_KNOWN_SESSIONS = 1024

    def _write_waiting(self) -> None:
        """On a worker thread: write what is waiting, then prune each session written to."""
        written: set[str] = set()
        while self._waiting:
            session_id, name, body = self._waiting.popleft()
            try:
                names = self._known_names(session_id)
                self._write(session_id, name, body)
                names.append(name)
                written.add(session_id)
            except OSError as error:
                log.warning("a proxied request body could not be kept: %s", error)
        for session_id in written:
            try:
                self._prune(session_id)
            except OSError as error:
                log.warning("kept request bodies could not be pruned: %s", error)

    def _known_names(self, session_id: str) -> collections.deque[str]:
        names = self._names.get(session_id)
        if names is None:
            try:
                listed = os.listdir(os.path.join(self._root, session_id))
            except FileNotFoundError:
                listed = []
            names = collections.deque(sorted(n for n in listed if n.endswith(".json.gz")))
            self._names[session_id] = names
            if len(self._names) > self.MAX_KNOWN_SESSIONS:
                self._names.popitem(last=False)
        else:
            self._names.move_to_end(session_id)
        return names

    # Plain os calls on str paths: pathlib's objects cost this thread, holding the GIL, more
    # than the writing (50 bodies at once took the loop's GIL from 50 first bytes).
    def _write(self, session_id: str, name: str, body: bytes) -> None:
        directory = os.path.join(self._root, session_id)
        temporary = os.path.join(directory, f".{name}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            descriptor = os.open(temporary, flags, 0o600)
        except FileNotFoundError:  # the session's first body: its directory, then the file
            os.makedirs(directory, mode=0o700, exist_ok=True)
            descriptor = os.open(temporary, flags, 0o600)
        # os.write, not a file object: opening one costs three more system calls per body.
        try:
            view = memoryview(gzip.compress(body, compresslevel=_COMPRESS_LEVEL))
            while view:
                view = view[os.write(descriptor, view) :]
        finally:
            os.close(descriptor)
        os.replace(temporary, os.path.join(directory, name))

    def _prune(self, session_id: str) -> None:
        directory = os.path.join(self._root, session_id)
        names = self._names.get(session_id)
        while names and len(names) > self._keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, names[0]))
            names.popleft()

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
