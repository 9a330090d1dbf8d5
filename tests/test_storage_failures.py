"""``serve`` and ``migrate`` on a damaged, locked or full database: one line naming the cause,
the file and the next step, a non-zero exit, and no traceback unless ``--debug``."""

import subprocess
from pathlib import Path

import pytest

from processes import WAIT_SECONDS, free_port, gateway_env, health, running
from storage_failure_helpers import (
    GATEWAY,
    PASSPHRASE,
    SESSIONS_ROOT_PAGE,
    in_tiny_filesystem,
    locked_by_another_program,
    run_cli,
    seed_home,
    zero_page,
)

LOCK_WAIT = "[database]\nbusy_timeout_ms = 200\n"


async def migrated_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    await seed_home(home)
    return home


def serve_until_exit(home: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run serve; it must exit by itself (a gateway that came up is a failure here)."""
    port = free_port()
    argv = [GATEWAY, *extra, "serve", "--port", str(port)]
    with running(argv, gateway_env(home, PASSPHRASE), tmp_path) as process:
        try:
            out, err = process.communicate(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"serve kept running; /health says {health(port)}") from None
        return subprocess.CompletedProcess(argv, process.returncode, out, err)


def one_message(result: subprocess.CompletedProcess[str]) -> str:
    """The failure's message: exit 1, the only line on stderr, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("agentspace-gateway: ")
    return lines[0]


async def damaged(tmp_path: Path) -> Path:
    home = await migrated_home(tmp_path)
    zero_page(home / "agentspace.db", SESSIONS_ROOT_PAGE)
    return home


async def not_a_database(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "agentspace.db").write_bytes(b"these are notes, not a database\n" * 200)
    return home


@pytest.mark.parametrize("make_home", [damaged, not_a_database])
async def test_serve_refuses_a_damaged_database_with_the_next_step(
    tmp_path: Path, make_home: object
) -> None:
    home = await make_home(tmp_path)  # type: ignore[operator]
    message = one_message(serve_until_exit(home, tmp_path))
    database = home / "agentspace.db"
    assert f"The database {database} is damaged" in message
    assert "agentspace-gateway doctor" in message
    assert f"mv {database} {database}.damaged" in message


@pytest.mark.parametrize("make_home", [damaged, not_a_database])
async def test_migrate_refuses_a_damaged_database(tmp_path: Path, make_home: object) -> None:
    home = await make_home(tmp_path)  # type: ignore[operator]
    message = one_message(run_cli(["migrate"], gateway_env(home), tmp_path))
    assert f"The database {home / 'agentspace.db'} is damaged" in message
    assert "agentspace-gateway doctor" in message


async def test_debug_adds_the_traceback(tmp_path: Path) -> None:
    home = await not_a_database(tmp_path)
    result = run_cli(["--debug", "migrate"], gateway_env(home), tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "sqlite3.DatabaseError: file is not a database" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("agentspace-gateway: ")


async def test_serve_on_a_database_another_program_locks(tmp_path: Path) -> None:
    home = await migrated_home(tmp_path)
    (home / "config.toml").write_text(LOCK_WAIT)
    database = home / "agentspace.db"
    with locked_by_another_program(database):
        message = one_message(serve_until_exit(home, tmp_path))
    assert f"Another program holds {database} locked" in message
    assert f"fuser -v {database} {database}-wal {database}-shm" in message
    assert "move the file aside" not in message


def test_migrate_on_a_new_database_another_program_locks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text(LOCK_WAIT)
    database = home / "agentspace.db"
    with locked_by_another_program(database):
        message = one_message(run_cli(["migrate"], gateway_env(home), tmp_path))
    assert f"Another program holds {database} locked" in message
    # Nothing was applied meanwhile: the migration runs once the lock is gone.
    result = run_cli(["migrate"], gateway_env(home), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("applied: 0001_initial")


def full_disk_message(message: str, mount: Path) -> None:
    assert f"The disk holding {mount}/home/agentspace.db is full" in message
    assert f"Free space on {mount} (" in message
    assert "bytes free" in message
    assert "move" not in message.replace("Do not move the database aside", "")


@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_serve_and_migrate_on_a_full_disk(tmp_path: Path, command: str) -> None:
    # 96 KiB holds the empty database and its WAL, not the migrations' tables.
    mount = tmp_path / "mnt"
    mount.mkdir()
    argv = in_tiny_filesystem([GATEWAY, command, "--port", str(free_port())], mount, "96k")
    if command == "migrate":
        argv.remove("--port")
        argv.pop()
    env = gateway_env(mount / "home", PASSPHRASE)
    result = subprocess.run(
        argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=WAIT_SECONDS
    )
    message = one_message(result)
    full_disk_message(message, mount)
    assert "Migration 0001_initial.sql was not applied" in message
