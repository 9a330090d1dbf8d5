"""The file beside the database that says the budgets changed (``storage/budget_list.py``)."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)


def marker_path(database: Path) -> Path:
    return database.with_name(database.name + ".budgets-changed")


def announce_change(database: Path) -> None:
    """Tell every gateway on this database that the budgets changed (after the commit)."""
    marker = marker_path(database)
    fresh = marker.with_name(f"{marker.name}.{secrets.token_hex(4)}")
    try:
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(8).encode())
        finally:
            os.close(fd)
        # A new file each time: its inode changes even when two changes land within one
        # tick of the file system's clock.
        os.replace(fresh, marker)
    except OSError:
        # The change is committed; a running gateway sees it at its next start.
        log.warning("budgets: could not mark the change in %s", marker, exc_info=True)
        with contextlib.suppress(OSError):
            fresh.unlink()
