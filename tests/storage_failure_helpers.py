"""Real storage failures for tests: a full filesystem, a lock held by another program, a
damaged file. Nothing is mocked: SQLite meets each one as it would on a user's machine."""

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from agentspace_gateway.home import Home
from agentspace_gateway.storage import Database, apply_migrations
from agentspace_gateway.storage.client_keys import ClientKeyRepository
from agentspace_gateway.vault import PASSPHRASE_ENV, open_vault

from processes import BIN, WAIT_SECONDS

GATEWAY = str(BIN / "agentspace-gateway")
PASSPHRASE = "a long passphrase for the storage failure tests"
# The page of the sessions table's b-tree root in a freshly migrated database (0001's
# third CREATE TABLE): zeroed, quick_check reports it; open and most reads still work.
SESSIONS_ROOT_PAGE = 7


def run_cli(
    argv: Sequence[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GATEWAY, *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=False,
    )


def zero_page(database: Path, page: int) -> None:
    """Write zeros over one page, after folding the WAL into the file (so it is that page)."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = connection.execute("PRAGMA page_size").fetchone()[0]
    with database.open("r+b") as file:
        file.seek((page - 1) * size)
        file.write(bytes(size))


_HOLD_LOCK = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
connection.execute("CREATE TABLE IF NOT EXISTS held (x)")
print("locked", flush=True)
sys.stdin.read()
connection.execute("ROLLBACK")
"""


@contextlib.contextmanager
def locked_by_another_program(database: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the database's write lock (``BEGIN EXCLUSIVE``) until the end.

    On a database in WAL mode readers still read; every writer waits for its busy_timeout
    and fails. On a new file (not yet WAL) nobody can even switch it to WAL.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "locked"
        yield process
    finally:
        process.communicate(timeout=WAIT_SECONDS)


def in_tiny_filesystem(
    argv: Sequence[str], mount: Path, size: str, seed: Path | None = None, *, full: bool = False
) -> list[str]:
    """``argv`` run with a tmpfs of ``size`` mounted on ``mount`` (in a mount namespace of
    its own, so nothing else sees it), ``seed``'s files copied to ``mount/home`` first;
    ``full``: then the rest of the tmpfs filled, so not a byte is free.

    The test reaches the files through ``/proc/PID/root`` (``seen_from_outside``).
    """
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && mkdir -p "$2/home" && chmod 700 "$2/home"'
    if seed is not None:
        script += ' && cp -a "$3/." "$2/home/"'
    if full:
        script += ' && { cat /dev/zero > "$2/filler" 2>/dev/null; true; }'
    script += ' && shift 3 && exec "$@"'
    return ["unshare", "-rm", "sh", "-c", script, "sh", size, str(mount), str(seed), *argv]


def seen_from_outside(pid: int, path: Path) -> Path:
    return Path(f"/proc/{pid}/root{path}")


def fill(directory: Path) -> int:
    """Write a file in ``directory`` until its filesystem is full; the bytes written."""
    written = 0
    chunk = bytes(64 * 1024)
    with (directory / "filler").open("wb", buffering=0) as file:
        while True:
            try:
                written += file.write(chunk)
            except OSError:
                # A partial page may still be free; smaller writes take the last of it.
                if len(chunk) == 512:
                    return written
                chunk = chunk[: len(chunk) // 2]


def copy_home(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    os.chmod(target, 0o700)
    return target


async def seed_home(home: Path) -> tuple[str, str]:
    """A migrated home with a file vault; its gateway token and a client key named laptop.

    Made here rather than by the CLI: each CLI process spends seconds importing.
    """
    Home(home).ensure()
    database = await Database.open(Home(home).database)
    try:
        await apply_migrations(database)
        issued = await ClientKeyRepository(database).issue("laptop")
    finally:
        await database.close()
    token, _ = open_vault("file", home, environ={PASSPHRASE_ENV: PASSPHRASE}).ensure_token()
    return token, issued.secret
