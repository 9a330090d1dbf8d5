"""The client-key look-up keeps what it found until the table's change marker moves."""

from __future__ import annotations

import asyncio
import time

from agentspace_gateway.storage import Database
from agentspace_gateway.storage.change_marker import CLIENT_KEYS, announce_change
from agentspace_gateway.storage.client_keys import (
    ClientKeyReader,
    ClientKeyRepository,
    key_sha256,
)


async def _revoke_without_telling(db: Database, name: str) -> None:
    # As a hand-written UPDATE would: the row changes, the marker does not.
    await db.write(
        lambda c: c.execute(
            "UPDATE client_keys SET revoked_at = '2026-12-07T00:00:00.000Z' WHERE name = ?", (name,)
        )
    )


async def test_a_revocation_applies_from_the_next_look_up(db: Database) -> None:
    keys = ClientKeyRepository(db)
    issued = await keys.issue("laptop")
    reader = await ClientKeyReader.open(db.path)
    try:
        for _ in range(3):
            found = await reader.find_by_secret(issued.secret)
            assert found is not None
            assert found.revoked_at is None
        await keys.revoke("laptop")
        revoked = await reader.find_by_secret(issued.secret)
    finally:
        await reader.close()
    assert revoked is not None
    assert revoked.revoked_at is not None


async def test_a_found_key_is_kept_until_the_marker_moves(db: Database) -> None:
    issued = await ClientKeyRepository(db).issue("laptop")
    reader = await ClientKeyReader.open(db.path)
    try:
        assert (await reader.find_by_secret(issued.secret)) is not None
        await _revoke_without_telling(db, "laptop")
        kept = await reader.find_by_secret(issued.secret)
        assert announce_change(db.path, CLIENT_KEYS)
        read_again = await reader.find_by_secret(issued.secret)
    finally:
        await reader.close()
    assert kept is not None
    assert kept.revoked_at is None
    assert read_again is not None
    assert read_again.revoked_at == "2026-12-07T00:00:00.000Z"


async def test_a_change_the_marker_missed_applies_within_the_kept_time(db: Database) -> None:
    issued = await ClientKeyRepository(db).issue("laptop")
    reader = await ClientKeyReader.open(db.path)
    reader.KEPT_SECONDS = 0.2
    try:
        assert (await reader.find_by_secret(issued.secret)) is not None
        await _revoke_without_telling(db, "laptop")
        began = time.monotonic()
        while True:
            found = await reader.find_by_secret(issued.secret)
            assert found is not None
            if found.revoked_at is not None:
                break
            assert time.monotonic() - began < 2.0, "the kept row outlived KEPT_SECONDS"
            await asyncio.sleep(0.02)
    finally:
        await reader.close()
    assert time.monotonic() - began >= 0.1


async def test_a_key_not_found_is_not_kept(db: Database) -> None:
    secret = "asg_" + "n" * 43
    reader = await ClientKeyReader.open(db.path)
    try:
        assert (await reader.find_by_secret(secret)) is None
        # Added without the marker moving: only a miss that was not kept can find it.
        await db.write(
            lambda c: c.execute(
                "INSERT INTO client_keys (name, key_sha256, key_prefix, created_at)"
                " VALUES ('late', ?, 'asg_nnnnnn', '2026-12-07T00:00:00.000Z')",
                (key_sha256(secret),),
            )
        )
        found = await reader.find_by_secret(secret)
    finally:
        await reader.close()
    assert found is not None
    assert found.name == "late"
