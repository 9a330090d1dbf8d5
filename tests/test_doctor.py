"""``agentspace-gateway doctor``, run as a real process: one line per check, the next step for
each that is not ok, exit 1 when any failed, ``--json`` for scripts, and no secret shown."""

import asyncio
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from agentspace_gateway.storage import available_migrations

from fake_anthropic import FakeAnthropic
from processes import (
    WAIT_SECONDS,
    free_port,
    gateway_env,
    running,
    wait_for_health_async,
)
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

API_KEY = "sk-ant-api03-doctor-must-never-print-this"


async def doctor(
    home: Path, cwd: Path, *extra: str, **env: str
) -> subprocess.CompletedProcess[str]:
    # On a thread: the loop stays free for the fake upstream doctor connects to.
    environment = gateway_env(home, PASSPHRASE, **env)
    return await asyncio.to_thread(run_cli, ["doctor", *extra], environment, cwd)


def checks(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    body = json.loads(result.stdout)
    assert body["ok"] is (result.returncode == 0)
    return {check["name"]: check for check in body["checks"]}


async def seeded(tmp_path: Path, base_url: str = "http://127.0.0.1:9") -> tuple[Path, str, str]:
    home = tmp_path / "home"
    token, client_key = await seed_home(home)
    (home / "config.toml").write_text(f'[anthropic]\nbase_url = "{base_url}"\n')
    return home, token, client_key


async def test_a_healthy_home_passes_and_names_keys_without_showing_them(
    tmp_path: Path, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    _, base_url = fake_anthropic
    home, token, client_key = await seeded(tmp_path, base_url)
    result = await doctor(home, tmp_path, ANTHROPIC_API_KEY=API_KEY)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok    database")
    applied = len(available_migrations())
    assert f"quick_check ok, writable, {applied} migrations applied, none pending" in lines[0]
    assert any(line.startswith("ok    free space") for line in lines)
    assert any(line.startswith("ok    vault") and "backend file" in line for line in lines)
    assert any(
        line.startswith("ok    key anthropic") and "env:ANTHROPIC_API_KEY" in line for line in lines
    )
    assert any(
        line.startswith("ok    reach anthropic") and f"{base_url}: accepts" in line
        for line in lines
    )
    assert any(line.startswith("ok    gateway") and "not running" in line for line in lines)
    for secret in (API_KEY, token, client_key, PASSPHRASE):
        assert secret not in result.stdout + result.stderr


async def test_an_unreachable_provider_and_a_missing_key_are_warnings(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    home, _, _ = await seeded(tmp_path, f"http://127.0.0.1:{closed}")
    result = await doctor(home, tmp_path, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    found = checks(result)
    reach = found["reach anthropic"]
    assert reach["status"] == "warn"
    assert f"http://127.0.0.1:{closed}: not reachable" in reach["detail"]
    assert "base_url in config.toml" in reach["nextStep"]
    key = found["key anthropic"]
    assert key["status"] == "warn"
    assert key["nextStep"] == "Run: agentspace-gateway keys add anthropic"


async def test_a_damaged_database_fails_with_what_to_do(tmp_path: Path) -> None:
    home, _, _ = await seeded(tmp_path)
    database = home / "agentspace.db"
    zero_page(database, SESSIONS_ROOT_PAGE)
    result = await doctor(home, tmp_path, "--json")
    assert result.returncode == 1
    check = checks(result)["database"]
    assert check["status"] == "fail"
    assert f"The database {database} is damaged" in check["detail"]
    assert check["nextStep"].startswith("With the gateway stopped, move the file aside")
    assert "Traceback" not in result.stderr


async def test_a_database_another_program_locks_fails(tmp_path: Path) -> None:
    home, _, _ = await seeded(tmp_path)
    database = home / "agentspace.db"
    with locked_by_another_program(database):
        result = await doctor(home, tmp_path, "--json")
    assert result.returncode == 1
    check = checks(result)["database"]
    assert check["status"] == "fail"
    assert f"Another program holds {database} locked" in check["detail"]
    assert f"fuser -v {database}" in check["nextStep"]


async def test_a_database_from_a_newer_release_fails(tmp_path: Path) -> None:
    home, _, _ = await seeded(tmp_path)
    with sqlite3.connect(home / "agentspace.db") as connection:
        connection.execute("INSERT INTO schema_migrations VALUES ('9999_future', 'then')")
    result = await doctor(home, tmp_path, "--json")
    assert result.returncode == 1
    check = checks(result)["database"]
    assert (check["status"], "9999_future" in check["detail"]) == ("fail", True)
    assert check["nextStep"].startswith("Upgrade agentspace-gateway")


async def test_no_database_yet_is_a_warning_and_doctor_creates_none(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = await doctor(home, tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    check = checks(result)["database"]
    assert check["status"] == "warn"
    assert check["nextStep"].startswith("Run: agentspace-gateway migrate")
    assert not (home / "agentspace.db").exists()


async def test_little_free_space_is_a_warning_and_none_a_failure(tmp_path: Path) -> None:
    home, _, _ = await seeded(tmp_path)
    mount = tmp_path / "mnt"
    mount.mkdir()
    env = gateway_env(mount / "home", PASSPHRASE)
    for full, status in ((False, "warn"), (True, "fail")):
        argv = in_tiny_filesystem([GATEWAY, "doctor", "--json"], mount, "1m", home, full=full)
        result = await asyncio.to_thread(
            subprocess.run,
            argv,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS,
        )
        check = checks(result)["free space"]
        assert check["status"] == status, check
        assert f"on {mount} (holding {mount}/home)" in check["detail"]
        assert check["nextStep"].startswith(f"Free space on {mount}")


async def test_a_running_gateway_is_named(tmp_path: Path) -> None:
    home, _, _ = await seeded(tmp_path)
    port = free_port()
    argv = [GATEWAY, "serve", "--port", str(port)]
    with running(argv, gateway_env(home, PASSPHRASE), tmp_path) as process:
        await wait_for_health_async(port, process)
        result = await doctor(home, tmp_path, "--json")
    check = checks(result)["gateway"]
    assert check["detail"] == f"serving on http://127.0.0.1:{port} (pid {process.pid})"
