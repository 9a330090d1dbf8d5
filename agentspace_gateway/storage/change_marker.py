"""Files beside the database that say a table changed, so every gateway process on that
database knows when to read it again (``storage/budget_list.py``, ``storage/client_keys.py``).

Whoever changes the table, in whichever process (most often the CLI), replaces the table's
marker file after the commit. A reader keeps what it read together with the marker's
identity as it was before the read, and reads again once that identity has changed: a
``stat``, no query.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

BUDGETS = "budgets"
CLIENT_KEYS = "client-keys"

# A marker's identity: a new file each time (os.replace), so its inode changes even when
# two changes land within one tick of the file system's clock.
Seen = tuple[int, int, int] | None


def marker_path(database: Path, table: str) -> Path:
    return database.with_name(f"{database.name}.{table}-changed")


def seen(marker: Path) -> Seen:
    try:
        found = os.stat(marker)
    except FileNotFoundError:
        return None
    return (found.st_ino, found.st_mtime_ns, found.st_ctime_ns)


def announce_change(database: Path, table: str) -> bool:
    """Tell every gateway on this database that ``table`` changed (after the commit).

    False, logged, if the marker could not be replaced. The change is committed all the
    same: a gateway sees it when the marker next moves or when it starts, and a client key
    it kept once the key's ``ClientKeyReader.KEPT_SECONDS`` are up."""
    marker = marker_path(database, table)
    fresh = marker.with_name(f"{marker.name}.{secrets.token_hex(4)}")
    try:
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(8).encode())
        finally:
            os.close(fd)
        os.replace(fresh, marker)
    except OSError:
        log.warning("%s: could not mark the change in %s", table, marker, exc_info=True)
        with contextlib.suppress(OSError):
            fresh.unlink()
        return False
    return True
