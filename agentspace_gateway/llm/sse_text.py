"""What every provider's stream reader does with the text it reads from Server-Sent Events:
mend it (``SurrogateMender``) and read it in slices that give the loop a turn now and then
(``ReadSlices``). Both run once per text delta, on the chat's hot path, so each costs a
method call per delta and allocates nothing unless it has something to do.
"""

import asyncio
import re

# UTF-16 halves, which JSON can carry ("\ud800") but Unicode text cannot hold alone.
_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd"
# The longest the stream is read without giving the loop a turn (and the writer a chance to
# send what was read so far).
READ_SLICE_SECONDS = 0.0005


class SurrogateMender:
    """Upstream text made well-formed before anyone sees it.

    The API sends JSON, in which "\\ud83d\\ude00" is one emoji and a lone "\\ud800" is
    valid but is no character. Python keeps the lone half in the str; the UTF-8 encoders
    downstream then refuse it (SQLite failed the whole exchange on it). So, as JavaScript's
    ``toWellFormed()`` does, each lone half becomes U+FFFD; a pair split over two deltas is
    joined again, the first half held until the next delta says which it was. The client
    and the database therefore get the same text.
    """

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        if not self._held and not _SURROGATE.search(text):
            return text  # nearly always: one regex scan, no copy
        text, self._held = self._held + text, ""
        if text and "\ud800" <= text[-1] <= "\udbff":
            text, self._held = text[:-1], text[-1]
        # The UTF-16 round trip joins the pairs and turns each lone half into U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")

    def flush(self) -> str:
        """At the end of the reply, a first half no second followed."""
        held, self._held = self._held, ""
        return _REPLACEMENT if held else ""


class ReadSlices:
    """A stream read in slices of at most ``READ_SLICE_SECONDS``, the loop given a turn
    between them. After each delta is yielded: ``if slices.spent(): await slices.give_turn()``.

    aiohttp hands over a burst it has buffered without ever suspending: without a turn of
    the loop now and then, the burst would be read through and relayed as one frame at its
    end. Every delta would cost a frame (a system call) if the turn came each time instead.
    Made in the task that reads the stream (it reads the running loop's clock).
    """

    __slots__ = ("_due", "_time")

    def __init__(self) -> None:
        self._time = asyncio.get_running_loop().time
        self._due = self._time() + READ_SLICE_SECONDS

    def spent(self) -> bool:
        """Whether this slice's time is up (checked per delta, so no coroutine is made)."""
        return self._time() >= self._due

    async def give_turn(self) -> None:
        """Give the loop its turn, then start the next slice."""
        await asyncio.sleep(0)
        self._due = self._time() + READ_SLICE_SECONDS
