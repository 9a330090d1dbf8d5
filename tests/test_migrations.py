"""Migrating a blank database, refusing a newer one, and rolling back a broken file."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agentspace_gateway.storage import (
    Database,
    Migration,
    MigrationError,
    apply_migrations,
    available_migrations,
    migration_status,
    migrator,
)

ISO_UTC_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

# (name, type, notnull, default, pk position) as PRAGMA table_info reports them.
EXPECTED_COLUMNS: dict[str, list[tuple[str, str, int, str | None, int]]] = {
    "schema_migrations": [
        ("name", "TEXT", 1, None, 1),
        ("applied_at", "TEXT", 1, None, 0),
    ],
    "audit_log": [
        ("id", "INTEGER", 0, None, 1),
        ("event", "TEXT", 1, None, 0),
        ("provider", "TEXT", 0, None, 0),
        ("remote_addr", "TEXT", 0, None, 0),
        ("user_agent", "TEXT", 0, None, 0),
        ("detail", "TEXT", 0, None, 0),
        ("created_at", "TEXT", 1, None, 0),
    ],
    "sessions": [
        ("id", "TEXT", 1, None, 1),
        ("session_key", "TEXT", 1, None, 0),
        ("agent_id", "TEXT", 1, None, 0),
        ("model", "TEXT", 1, None, 0),
        ("created_at", "TEXT", 1, None, 0),
        ("last_active_at", "TEXT", 1, None, 0),
        ("origin_client", "INTEGER", 0, None, 0),
        ("origin_agent", "TEXT", 0, None, 0),
        ("external_id", "TEXT", 0, None, 0),
    ],
    "client_keys": [
        ("id", "INTEGER", 0, None, 1),
        ("name", "TEXT", 1, None, 0),
        ("key_sha256", "TEXT", 1, None, 0),
        ("key_prefix", "TEXT", 1, None, 0),
        ("created_at", "TEXT", 1, None, 0),
        ("expires_at", "TEXT", 0, None, 0),
        ("revoked_at", "TEXT", 0, None, 0),
        ("default_session_id", "TEXT", 0, None, 0),
    ],
    "messages": [
        ("id", "INTEGER", 0, None, 1),
        ("session_id", "TEXT", 1, None, 0),
        ("role", "TEXT", 1, None, 0),
        ("content", "TEXT", 1, None, 0),
        ("created_at", "TEXT", 1, None, 0),
        ("token_count", "INTEGER", 0, None, 0),
        ("complete", "INTEGER", 1, "1", 0),
        ("token_estimate", "INTEGER", 0, None, 0),
        ("request_id", "TEXT", 0, None, 0),
    ],
    "usage_records": [
        ("id", "INTEGER", 0, None, 1),
        ("session_id", "TEXT", 1, None, 0),
        ("model", "TEXT", 1, None, 0),
        ("input_tokens", "INTEGER", 1, "0", 0),
        ("output_tokens", "INTEGER", 1, "0", 0),
        ("cache_creation_input_tokens", "INTEGER", 1, "0", 0),
        ("cache_read_input_tokens", "INTEGER", 1, "0", 0),
        ("cost_nanousd", "INTEGER", 1, None, 0),
        ("created_at", "TEXT", 1, None, 0),
        ("request_id", "TEXT", 0, None, 0),
        ("input_cost_nanousd", "INTEGER", 1, "0", 0),
        ("output_cost_nanousd", "INTEGER", 1, "0", 0),
        ("cache_write_cost_nanousd", "INTEGER", 1, "0", 0),
        ("cache_read_cost_nanousd", "INTEGER", 1, "0", 0),
        ("priced", "INTEGER", 1, "1", 0),
        ("prices", "TEXT", 0, None, 0),
        ("estimated_input_tokens", "INTEGER", 0, None, 0),
        ("stop_reason", "TEXT", 0, None, 0),
        ("cache_creation_1h_input_tokens", "INTEGER", 1, "0", 0),
        ("cache_write_1h_cost_nanousd", "INTEGER", 1, "0", 0),
        ("output_estimated", "INTEGER", 1, "0", 0),
        ("client_key_id", "INTEGER", 0, None, 0),
        ("agent_id", "TEXT", 0, None, 0),
        ("parent_agent_id", "TEXT", 0, None, 0),
    ],
    "budgets": [
        ("id", "INTEGER", 0, None, 1),
        ("scope_kind", "TEXT", 1, None, 0),
        ("scope_id", "TEXT", 1, None, 0),
        ("period", "TEXT", 1, None, 0),
        ("limit_nanousd", "INTEGER", 1, None, 0),
        ("clip_max_tokens", "INTEGER", 1, "0", 0),
        ("created_at", "TEXT", 1, None, 0),
    ],
    "budget_reservations": [
        ("id", "INTEGER", 0, None, 1),
        ("request_id", "TEXT", 1, None, 0),
        ("session_id", "TEXT", 0, None, 0),
        ("client_key_id", "INTEGER", 0, None, 0),
        ("agent_id", "TEXT", 0, None, 0),
        ("model", "TEXT", 1, None, 0),
        ("amount_nanousd", "INTEGER", 1, None, 0),
        ("state", "TEXT", 1, None, 0),
        ("created_at", "TEXT", 1, None, 0),
        ("settled_at", "TEXT", 0, None, 0),
    ],
    "budget_alerts_fired": [
        ("id", "INTEGER", 0, None, 1),
        ("budget_id", "INTEGER", 1, None, 0),
        ("period_start", "TEXT", 1, None, 0),
        ("threshold_percent", "INTEGER", 1, None, 0),
        ("fired_at", "TEXT", 1, None, 0),
    ],
    "usage_hourly": [
        ("hour", "TEXT", 1, None, 1),
        ("model", "TEXT", 1, None, 2),
        ("input_tokens", "INTEGER", 1, None, 0),
        ("output_tokens", "INTEGER", 1, None, 0),
        ("cache_creation_input_tokens", "INTEGER", 1, None, 0),
        ("cache_read_input_tokens", "INTEGER", 1, None, 0),
        ("cost_nanousd", "INTEGER", 1, None, 0),
        ("request_count", "INTEGER", 1, None, 0),
        ("unpriced_count", "INTEGER", 1, None, 0),
        ("cache_creation_1h_input_tokens", "INTEGER", 1, "0", 0),
        ("estimated_count", "INTEGER", 1, "0", 0),
    ],
}

SHIPPED = [
    "0001_initial",
    "0002_stream_outcomes",
    "0003_usage_hourly",
    "0004_one_hour_cache_writes",
    "0005_client_keys",
    "0006_budgets",
    "0007_budget_alerts",
    "0008_measured_ratio_index",
]

# (referenced table, from column, to column, on update, on delete)
EXPECTED_FOREIGN_KEYS: dict[str, list[tuple[str, str, str, str, str]]] = {
    "schema_migrations": [],
    "audit_log": [],
    "sessions": [("client_keys", "origin_client", "id", "NO ACTION", "NO ACTION")],
    "client_keys": [("sessions", "default_session_id", "id", "NO ACTION", "NO ACTION")],
    "messages": [("sessions", "session_id", "id", "NO ACTION", "NO ACTION")],
    "usage_records": [
        ("client_keys", "client_key_id", "id", "NO ACTION", "NO ACTION"),
        ("sessions", "session_id", "id", "NO ACTION", "NO ACTION"),
    ],
    "usage_hourly": [],
    "budgets": [],
    "budget_reservations": [],
    "budget_alerts_fired": [("budgets", "budget_id", "id", "NO ACTION", "CASCADE")],
}

# index name -> (unique, origin: c = CREATE INDEX, u = UNIQUE, pk = PRIMARY KEY, columns)
EXPECTED_INDEXES: dict[str, dict[str, tuple[int, str, list[str]]]] = {
    "schema_migrations": {"sqlite_autoindex_schema_migrations_1": (1, "pk", ["name"])},
    "audit_log": {
        "audit_log_created_at": (0, "c", ["created_at"]),
        "audit_log_provider_created_at": (0, "c", ["provider", "created_at"]),
    },
    "sessions": {
        "sqlite_autoindex_sessions_1": (1, "pk", ["id"]),
        "sqlite_autoindex_sessions_2": (1, "u", ["session_key"]),
        "sessions_last_active_at": (0, "c", ["last_active_at", "id"]),
        "sessions_origin_external_id": (1, "c", ["origin_client", "external_id"]),
    },
    "client_keys": {
        "sqlite_autoindex_client_keys_1": (1, "u", ["key_sha256"]),
        "client_keys_live_name": (1, "c", ["name"]),
    },
    "messages": {"messages_session_id": (0, "c", ["session_id", "id"])},
    "usage_records": {
        "usage_records_session_id_model": (0, "c", ["session_id", "model"]),
        "usage_records_model_created_at": (0, "c", ["model", "created_at"]),
        "usage_records_created_at": (0, "c", ["created_at"]),
        "usage_records_request_id": (1, "c", ["request_id"]),
        "usage_records_session_id_created_at": (0, "c", ["session_id", "created_at"]),
        "usage_records_client_key_id_created_at": (0, "c", ["client_key_id", "created_at"]),
        "usage_records_agent_id_created_at": (0, "c", ["agent_id", "created_at"]),
        "usage_records_model_measured": (
            0,
            "c",
            [
                "model",
                "created_at",
                "id",
                "estimated_input_tokens",
                "input_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
            ],
        ),
    },
    "budgets": {
        "sqlite_autoindex_budgets_1": (1, "u", ["scope_kind", "scope_id", "period"]),
    },
    "budget_reservations": {
        "sqlite_autoindex_budget_reservations_1": (1, "u", ["request_id"]),
        "budget_reservations_open": (0, "c", ["state"]),
    },
    "budget_alerts_fired": {
        "sqlite_autoindex_budget_alerts_fired_1": (
            1,
            "u",
            ["budget_id", "period_start", "threshold_percent"],
        ),
    },
    "usage_hourly": {"sqlite_autoindex_usage_hourly_1": (1, "pk", ["hour", "model"])},
}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "agentspace.db")
    try:
        yield database
    finally:
        await database.close()


async def table_names(db: Database) -> list[str]:
    rows = await db.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " ORDER BY name"
    )
    return [row["name"] for row in rows]


async def applied_names(db: Database) -> list[str]:
    rows = await db.fetchall("SELECT name FROM schema_migrations ORDER BY name")
    return [row["name"] for row in rows]


async def file_digests(db: Database) -> tuple[str, int]:
    """The main file's sha256 once the WAL is folded in and emptied, and the WAL's size."""
    busy, _, _ = tuple(await checkpoint(db))
    assert busy == 0
    wal = db.path.with_name(db.path.name + "-wal")
    return hashlib.sha256(db.path.read_bytes()).hexdigest(), wal.stat().st_size


async def checkpoint(db: Database) -> sqlite3.Row:
    row = await db.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")
    assert row is not None
    return row


def wal_size(db: Database) -> int:
    return db.path.with_name(db.path.name + "-wal").stat().st_size


def with_extra(*extra: Migration) -> list[Migration]:
    return [*available_migrations(), *extra]


async def test_blank_database_migrates_to_the_whole_schema(db: Database) -> None:
    assert await apply_migrations(db) == SHIPPED

    assert await table_names(db) == sorted(EXPECTED_COLUMNS)
    for table in EXPECTED_COLUMNS:
        info = await db.fetchall(f"PRAGMA table_info({table})")
        columns = [(r["name"], r["type"], r["notnull"], r["dflt_value"], r["pk"]) for r in info]
        assert columns == EXPECTED_COLUMNS[table], table

        keys = await db.fetchall(f"PRAGMA foreign_key_list({table})")
        foreign = [(r["table"], r["from"], r["to"], r["on_update"], r["on_delete"]) for r in keys]
        assert foreign == EXPECTED_FOREIGN_KEYS[table], table

        indexes: dict[str, tuple[int, str, list[str]]] = {}
        for index in await db.fetchall(f"PRAGMA index_list({table})"):
            info = await db.fetchall(f"PRAGMA index_info({index['name']})")
            indexes[index["name"]] = (index["unique"], index["origin"], [r["name"] for r in info])
        assert indexes == EXPECTED_INDEXES[table], table

    table_list = await db.fetchall("PRAGMA table_list")
    strict = {r["name"]: r["strict"] for r in table_list if r["name"] in EXPECTED_COLUMNS}
    assert strict == dict.fromkeys(EXPECTED_COLUMNS, 1)
    extras = await db.fetchall(
        "SELECT type, name, tbl_name FROM sqlite_master WHERE type IN ('view', 'trigger')"
        " ORDER BY name"
    )
    assert [tuple(row) for row in extras] == [
        ("trigger", "usage_records_hourly_delete", "usage_records"),
        ("trigger", "usage_records_hourly_insert", "usage_records"),
        ("trigger", "usage_records_hourly_update", "usage_records"),
    ]


async def test_the_applied_migration_is_recorded_with_its_time(db: Database) -> None:
    await apply_migrations(db)
    status = await migration_status(db)
    assert [name for name, _ in status.applied] == SHIPPED
    assert ISO_UTC_MS.match(status.applied[0].applied_at)
    assert status.pending == []
    assert status.unknown == []


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        pytest.param(
            "INSERT INTO messages (session_id, role, content, created_at) VALUES (?, ?, ?, ?)",
            ("s1", "robot", "hi", "2026-11-28T09:00:00.000Z"),
            id="unknown-role",
        ),
        pytest.param(
            "INSERT INTO messages (session_id, role, content, created_at, token_count)"
            " VALUES (?, ?, ?, ?, ?)",
            ("s1", "user", "hi", "2026-11-28T09:00:00.000Z", -1),
            id="negative-token-count",
        ),
        pytest.param(
            "INSERT INTO usage_records (session_id, model, output_tokens, cost_nanousd,"
            " created_at) VALUES (?, ?, ?, ?, ?)",
            ("s1", "m", -5, 0, "2026-11-28T09:00:00.000Z"),
            id="negative-output-tokens",
        ),
        pytest.param(
            "INSERT INTO usage_records (session_id, model, cost_nanousd, created_at)"
            " VALUES (?, ?, ?, ?)",
            ("s1", "m", -1, "2026-11-28T09:00:00.000Z"),
            id="negative-cost",
        ),
        pytest.param(
            "INSERT INTO usage_records (session_id, model, cost_nanousd, created_at)"
            " VALUES (?, ?, ?, ?)",
            ("s1", "m", 0.5, "2026-11-28T09:00:00.000Z"),
            id="fractional-cost",
        ),
        pytest.param(
            "INSERT INTO usage_records (session_id, model, cache_creation_input_tokens,"
            " cache_creation_1h_input_tokens, cost_nanousd, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            ("s1", "m", 10, 11, 0, "2026-11-28T09:00:00.000Z"),
            id="one-hour-writes-beyond-all-writes",
        ),
        pytest.param(
            "INSERT INTO usage_records (session_id, model, cache_write_cost_nanousd,"
            " cache_write_1h_cost_nanousd, cost_nanousd, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            ("s1", "m", 10, 11, 21, "2026-11-28T09:00:00.000Z"),
            id="one-hour-write-cost-beyond-all-writes",
        ),
        pytest.param(
            "INSERT INTO usage_records (session_id, model, output_estimated, cost_nanousd,"
            " created_at) VALUES (?, ?, ?, ?, ?)",
            ("s1", "m", 2, 0, "2026-11-28T09:00:00.000Z"),
            id="output-estimated-not-a-flag",
        ),
        pytest.param(
            "INSERT INTO audit_log (event, created_at) VALUES (?, ?)",
            ("key.used", "2026-11-28 09:00:00"),
            id="timestamp-not-iso-utc-ms",
        ),
        pytest.param(
            "INSERT INTO audit_log (event, created_at) VALUES (?, ?)",
            ("", "2026-11-28T09:00:00.000Z"),
            id="empty-event",
        ),
        pytest.param(
            "INSERT INTO sessions (id, session_key, agent_id, model, created_at,"
            " last_active_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                "s2",
                "agent:main:s1",
                "main",
                "m",
                "2026-11-28T09:00:00.000Z",
                "2026-11-28T09:00:00.000Z",
            ),
            id="duplicate-session-key",
        ),
    ],
)
async def test_constraints_reject_bad_rows(db: Database, sql: str, params: tuple[Any, ...]) -> None:
    await apply_migrations(db)
    await db.write(
        lambda connection: connection.execute(
            "INSERT INTO sessions (id, session_key, agent_id, model, created_at, last_active_at)"
            " VALUES ('s1', 'agent:main:s1', 'main', 'm',"
            " '2026-11-28T09:00:00.000Z', '2026-11-28T09:00:00.000Z')"
        )
    )
    with pytest.raises(sqlite3.IntegrityError):
        await db.write(lambda connection: connection.execute(sql, params))


async def test_applying_twice_is_a_no_op(db: Database) -> None:
    await apply_migrations(db)
    recorded = await db.fetchall("SELECT name, applied_at FROM schema_migrations")
    schema = await db.fetchall("SELECT type, name, sql FROM sqlite_master ORDER BY name")

    assert await apply_migrations(db) == []

    assert await db.fetchall("SELECT name, applied_at FROM schema_migrations") == recorded
    assert await db.fetchall("SELECT type, name, sql FROM sqlite_master ORDER BY name") == schema


async def test_a_database_from_a_newer_release_is_refused_untouched(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await apply_migrations(db)
    await db.write(
        lambda connection: connection.execute(
            "INSERT INTO schema_migrations VALUES ('9999_future', '2027-01-01T00:00:00.000Z')"
        )
    )
    # Something is pending too, so a migrator that checked too late would write it.
    monkeypatch.setattr(
        migrator,
        "available_migrations",
        lambda: with_extra(Migration("0002_more", "CREATE TABLE more (x INTEGER);")),
    )
    digest_before, wal_before = await file_digests(db)
    assert wal_before == 0

    with pytest.raises(MigrationError) as refused:
        await apply_migrations(db)

    message = str(refused.value)
    assert "newer agentspace-gateway" in message
    assert "unknown migrations: 9999_future" in message
    assert str(db.path) in message
    assert "AGENTSPACE_HOME" in message
    assert wal_size(db) == 0
    assert await file_digests(db) == (digest_before, 0)
    assert "more" not in await table_names(db)


async def test_a_failing_migration_rolls_back_completely(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Migration(
        "0099_broken",
        "CREATE TABLE half_done (x INTEGER);\n"
        "INSERT INTO half_done VALUES (1);\n"
        "CREATE TABLE audit_log (x INTEGER);\n",
    )
    monkeypatch.setattr(migrator, "available_migrations", lambda: with_extra(broken))

    with pytest.raises(MigrationError) as failed:
        await apply_migrations(db)

    assert "0099_broken.sql" in str(failed.value)
    assert "table audit_log already exists" in str(failed.value)
    assert await applied_names(db) == SHIPPED
    assert await table_names(db) == sorted(EXPECTED_COLUMNS)
    status = await migration_status(db)
    assert status.pending == ["0099_broken"]
    # The connection is left outside any transaction and fully usable.
    await db.write(
        lambda connection: connection.execute(
            "INSERT INTO audit_log (event, created_at) VALUES ('x', ?)",
            ("2026-11-28T09:00:00.000Z",),
        )
    )
    assert len(await db.fetchall("SELECT id FROM audit_log")) == 1


async def test_a_migration_that_swallows_its_commit_is_rolled_back(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    unterminated = Migration("0099_unterminated", "CREATE TABLE half_done (x INTEGER);\n/* oops")
    monkeypatch.setattr(migrator, "available_migrations", lambda: with_extra(unterminated))

    with pytest.raises(MigrationError, match=r"0099_unterminated\.sql did not run to its end"):
        await apply_migrations(db)

    assert await applied_names(db) == SHIPPED
    assert "half_done" not in await table_names(db)


async def test_status_of_a_blank_database_writes_nothing(db: Database) -> None:
    before = await file_digests(db)

    status = await migration_status(db)

    assert status.applied == []
    assert status.pending == SHIPPED
    assert status.unknown == []
    assert wal_size(db) == 0
    assert await file_digests(db) == before
    assert await table_names(db) == []


async def test_status_of_partial_and_full_databases(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = Migration("0099_extra", "CREATE TABLE extra (x INTEGER);")
    await apply_migrations(db)
    monkeypatch.setattr(migrator, "available_migrations", lambda: with_extra(extra))
    before = await file_digests(db)

    partial = await migration_status(db)

    assert [m.name for m in partial.applied] == SHIPPED
    assert partial.pending == ["0099_extra"]
    assert partial.unknown == []
    assert wal_size(db) == 0
    assert await file_digests(db) == before

    assert await apply_migrations(db) == ["0099_extra"]
    full = await migration_status(db)
    assert [m.name for m in full.applied] == [*SHIPPED, "0099_extra"]
    assert full.pending == []


async def test_status_reports_unknown_migrations_without_refusing(db: Database) -> None:
    await apply_migrations(db)
    await db.write(
        lambda connection: connection.execute(
            "INSERT INTO schema_migrations VALUES ('9999_future', '2027-01-01T00:00:00.000Z')"
        )
    )

    status = await migration_status(db)

    assert status.unknown == ["9999_future"]
    assert status.pending == []


def test_shipped_migrations_are_read_from_the_package() -> None:
    migrations = available_migrations()
    assert [m.name for m in migrations] == SHIPPED
    assert "CREATE TABLE usage_records" in migrations[0].sql


def test_only_numbered_sql_files_are_migrations_in_order(tmp_path: Path) -> None:
    for name in ["0002_b.sql", "0001_a.sql", "0010_later_one.sql"]:
        (tmp_path / name).write_text(f"-- {name}\n", encoding="utf-8")
    for ignored in [
        "README.md",
        "__init__.py",
        "1_short.sql",
        "0003_Upper.sql",
        "0004_x.sql.bak",
        "0005-dash.sql",
    ]:
        (tmp_path / ignored).write_text("not a migration", encoding="utf-8")

    migrations = available_migrations(tmp_path)

    assert [m.name for m in migrations] == ["0001_a", "0002_b", "0010_later_one"]
    assert migrations[1].sql == "-- 0002_b.sql\n"


def test_two_migrations_with_one_number_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("", encoding="utf-8")
    (tmp_path / "0001_b.sql").write_text("", encoding="utf-8")

    with pytest.raises(MigrationError, match=r"0001_a\.sql and 0001_b\.sql share the number 0001"):
        available_migrations(tmp_path)


@pytest.mark.parametrize("name", ["1_short", "0001_Upper", "0001_x'); DROP TABLE t; --", ""])
def test_a_migration_name_must_be_numbered_lowercase(name: str) -> None:
    with pytest.raises(ValueError, match="must match regex"):
        Migration(name, "")


async def test_rows_from_before_0004_keep_every_figure(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = available_migrations()
    monkeypatch.setattr(
        migrator, "available_migrations", lambda: [m for m in shipped if m.name < "0004"]
    )
    await apply_migrations(db)
    prices = '{"inputPerMTok": "3", "cacheWritePerMTok": "3.75", "source": "genai-prices"}'

    async def old_row(connection: Any) -> None:
        await connection.execute(
            "INSERT INTO sessions VALUES ('s1', 'agent:main:s1', 'main', 'm',"
            " '2026-11-28T09:00:00.000Z', '2026-11-28T09:00:00.000Z')"
        )
        # 10,000 one-hour writes billed at the five-minute rate, as 0003's gateway did.
        await connection.execute(
            "INSERT INTO usage_records (session_id, model, input_tokens, output_tokens,"
            " cache_creation_input_tokens, cache_read_input_tokens, cost_nanousd,"
            " input_cost_nanousd, output_cost_nanousd, cache_write_cost_nanousd,"
            " cache_read_cost_nanousd, prices, created_at)"
            " VALUES ('s1', 'm', 100, 200, 10000, 20000, 46800000, 300000, 3000000, 37500000,"
            " 6000000, ?, '2026-11-28T09:30:00.000Z')",
            (prices,),
        )

    await db.write(old_row)
    before = dict(await db.fetchone("SELECT * FROM usage_records"))  # type: ignore[arg-type]
    monkeypatch.setattr(migrator, "available_migrations", lambda: shipped)

    await apply_migrations(db)

    after = dict(await db.fetchone("SELECT * FROM usage_records"))  # type: ignore[arg-type]
    assert {name: after[name] for name in before} == before
    assert (
        after["cache_creation_1h_input_tokens"],
        after["cache_write_1h_cost_nanousd"],
        after["output_estimated"],
    ) == (0, 0, 0)
    hourly = await db.fetchone(
        "SELECT cost_nanousd, cache_creation_input_tokens, cache_creation_1h_input_tokens,"
        " estimated_count FROM usage_hourly"
    )
    assert hourly is not None
    assert tuple(hourly) == (46_800_000, 10_000, 0, 0)
