"""Lines typed at the terminal, or piped in, read without stopping the event loop.

The loop has to keep running at the prompt, because it answers the gateway's heartbeat
pings: a person may think for minutes before typing. So stdin is watched with
``add_reader`` instead of being read by ``input()`` in a thread that could not be stopped.
The terminal's own line editing applies (backspace, Ctrl-U, Ctrl-W); Ctrl-D ends the input.
"""

import asyncio
import os


class LineInput:
    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._partial = b""
        self._ended = False
        self._watched = False

    def start(self) -> None:
        try:
            asyncio.get_running_loop().add_reader(self._fd, self._read)
        except (OSError, ValueError):
            # A regular file cannot be watched (epoll refuses it), and never blocks: it is
            # read on demand instead.
            return
        self._watched = True

    def stop(self) -> None:
        if self._watched:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._watched = False

    async def readline(self) -> str | None:
        """The next line without its line ending, or None once the input has ended."""
        while not self._watched and self._lines.empty() and not self._ended:
            self._read()
        if self._ended and self._lines.empty():
            return None
        return await self._lines.get()

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if self._partial:
                self._lines.put_nowait(_decode(self._partial))
                self._partial = b""
            self._ended = True
            self._lines.put_nowait(None)
            self.stop()
            return
        *complete, self._partial = (self._partial + data).split(b"\n")
        for line in complete:
            self._lines.put_nowait(_decode(line))


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r")
