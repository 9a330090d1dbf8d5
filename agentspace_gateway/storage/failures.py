"""Storage failures in words a person can act on: which cause, which file, what to do next.

One classifier for every path (``serve``, ``migrate``, the WebSocket handlers, ``/keys``,
the HTTP APIs, ``doctor``): each turns an exception into a ``StorageProblem`` here and says
it its own way, so a full disk reads the same everywhere and is never taken for a damaged
file (moving a database aside on a full disk frees nothing and loses the ledger's history).
An exception that is not a storage failure (a constraint, a bug) is not classified: it is
``None`` here and stays the caller's ordinary error.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import attrs

Kind = Literal["disk_full", "locked", "damaged", "permission", "unknown"]

# The primary result codes (sqlite3.h); an extended code keeps the primary in its low byte.
SQLITE_PERM = 3
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_NOMEM = 7
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26

_KIND_BY_CODE: dict[int, Kind] = {
    SQLITE_FULL: "disk_full",
    SQLITE_BUSY: "locked",
    SQLITE_LOCKED: "locked",
    SQLITE_CORRUPT: "damaged",
    SQLITE_NOTADB: "damaged",
    SQLITE_PERM: "permission",
    SQLITE_READONLY: "permission",
    SQLITE_CANTOPEN: "permission",
    SQLITE_IOERR: "unknown",
    SQLITE_NOMEM: "unknown",
}
# For an error raised without a result code (an older Python, a wrapped message).
_KIND_BY_TEXT: tuple[tuple[str, Kind], ...] = (
    ("database or disk is full", "disk_full"),
    ("database is locked", "locked"),
    ("database table is locked", "locked"),
    ("database disk image is malformed", "damaged"),
    ("file is not a database", "damaged"),
    ("attempt to write a readonly database", "permission"),
    ("unable to open database file", "permission"),
    ("disk i/o error", "unknown"),
)
_KIND_BY_ERRNO: dict[int, Kind] = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EFBIG: "disk_full",
    errno.EROFS: "permission",
    errno.EACCES: "permission",
    errno.EPERM: "permission",
    errno.EIO: "unknown",
}
# Under this much free space an I/O error is most likely the disk filling up.
NEARLY_FULL_BYTES = 1024 * 1024
# Prefix of the note the database adds to its failures: which file they are about.
PATH_NOTE = "database: "


@attrs.frozen
class StorageProblem:
    """What went wrong with the storage, on which file, and the next step for a person."""

    kind: Kind
    message: str
    next_step: str
    path: Path | None = None

    def __str__(self) -> str:
        return f"{self.message} {self.next_step}"

    def details(self) -> dict[str, str]:
        """For a structured error reply: the kind, and the file when it is known."""
        found: dict[str, str] = {"kind": self.kind}
        if self.path is not None:
            found["path"] = str(self.path)
        return found


def storage_problem(error: BaseException, path: Path | None = None) -> StorageProblem | None:
    """The storage failure ``error`` is, or stands for (its causes are followed); else None.

    ``path`` is the database the caller was using; an error that names its own file (an
    ``OSError``, or one the database noted) names that one instead.
    """
    for candidate in _chain(error):
        kind = _kind(candidate)
        if kind is not None:
            return describe(kind, _path_of(candidate) or path, _detail(candidate))
    return None


def describe(kind: Kind, path: Path | None, detail: str) -> StorageProblem:
    """The message and next step for a failure of ``kind`` on ``path``."""
    where = str(path) if path is not None else "the gateway's database"
    if kind == "unknown" and path is not None and free_bytes(path) < NEARLY_FULL_BYTES:
        kind = "disk_full"  # an I/O error on a full filesystem is the full filesystem
    if kind == "disk_full":
        message = f"The disk holding {where} is full ({detail})."
        return StorageProblem(kind, message, _free_space_step(path), path)
    if kind == "locked":
        files = f"{where} {where}-wal {where}-shm" if path is not None else "the database file"
        return StorageProblem(
            kind,
            f"Another program holds {where} locked ({detail}).",
            f"Find it with: fuser -v {files} (or lsof), then stop it or let it finish its "
            "write, and try again. The lock lives in the -wal and -shm files: do not "
            "delete them while it runs.",
            path,
        )
    if kind == "damaged":
        return StorageProblem(
            kind,
            f"The database {where} is damaged ({detail}).",
            "Run: agentspace-gateway doctor. Then, with the gateway stopped, move the file "
            f"aside (with its -wal and -shm files: mv {where} {where}.damaged) and restore "
            "a backup, or start with a new, empty database.",
            path,
        )
    if kind == "permission":
        return StorageProblem(
            kind,
            f"The gateway may not write {where} ({detail}).",
            f"Check the owner and mode of {where} and its directory (ls -l), and that the "
            "filesystem is not mounted read-only (mount); the gateway must run as the "
            "file's owner.",
            path,
        )
    return StorageProblem(
        kind,
        f"The storage failed on {where} ({detail}).",
        "Check the disk (dmesg, df -h), then run: agentspace-gateway doctor.",
        path,
    )


def free_bytes(path: Path) -> int:
    """Free space, for this user, on the filesystem holding ``path`` (0 if unknown)."""
    try:
        return shutil.disk_usage(_existing(path)).free
    except OSError:
        return 0


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem holding ``path``."""
    current = _existing(path).resolve()
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def _free_space_step(path: Path | None) -> str:
    if path is None:
        return "Free space on the disk holding the gateway's home, then try again."
    return (
        f"Free space on {mount_point(path)} ({free_bytes(path):,} bytes free), then try "
        "again; nothing acknowledged was lost. Do not move the database aside: it is not "
        "damaged."
    )


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _kind(error: BaseException) -> Kind | None:
    if isinstance(error, sqlite3.Error):
        if isinstance(error, sqlite3.IntegrityError | sqlite3.ProgrammingError):
            return None  # the caller's mistake, not the storage's
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int) and (code & 0xFF) in _KIND_BY_CODE:
            return _KIND_BY_CODE[code & 0xFF]
        text = str(error).lower()
        return next((kind for needle, kind in _KIND_BY_TEXT if needle in text), None)
    if isinstance(error, OSError) and error.errno is not None:
        return _KIND_BY_ERRNO.get(error.errno)
    return None


def _detail(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    name = getattr(error, "sqlite_errorname", None)
    text = str(error) or type(error).__name__
    return f"{text}, {name}" if isinstance(name, str) and name not in text else text


def _path_of(error: BaseException) -> Path | None:
    if isinstance(error, OSError) and error.filename:
        return Path(os.fsdecode(error.filename))
    for note in getattr(error, "__notes__", ()):
        if isinstance(note, str) and note.startswith(PATH_NOTE):
            return Path(note.removeprefix(PATH_NOTE))
    return None


def _existing(path: Path) -> Path:
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current
