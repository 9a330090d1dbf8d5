"""The real ``agentspace-gateway serve`` process: start, announce, runtime.json, signals."""

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PASSPHRASE
from processes import BIN, free_port, gateway_env, get_json, health, running, wait_for

GATEWAY = str(BIN / "agentspace-gateway")


def read_runtime(home: Path) -> dict[str, object] | None:
    try:
        data: dict[str, object] = json.loads((home / "runtime.json").read_text())
    except (OSError, ValueError):
        return None
    return data


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_writes_runtime_json_and_removes_it_on_signal(
    tmp_path: Path, stop_signal: int
) -> None:
    home, port = tmp_path / "home", free_port()
    env = gateway_env(home, PASSPHRASE)
    with running([GATEWAY, "serve", "--port", str(port)], env, tmp_path) as process:
        body = wait_for(lambda: health(port), process=process)
        runtime = wait_for(lambda: read_runtime(home))

        assert body["pid"] == process.pid
        assert body["vault"] == "available"
        assert runtime["pid"] == process.pid
        assert (runtime["host"], runtime["port"]) == ("127.0.0.1", port)
        assert str(runtime["startedAt"]).endswith("Z")
        assert (home / "runtime.json").stat().st_mode & 0o777 == 0o600

        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=20)

    assert process.returncode == 0, err
    assert f"serving on http://127.0.0.1:{port}" in out
    assert not (home / "runtime.json").exists()


def test_readme_run_command_works_without_any_vault(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    with running([GATEWAY, "serve", "--port", str(port)], gateway_env(home), tmp_path) as process:
        body = wait_for(lambda: health(port), process=process)
        assert body["status"] == "ok"
        assert body["vault"] == "unavailable"
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "AGENTSPACE_VAULT_PASSPHRASE" in err  # the warning says how to set a vault up


def busy_port_with_a_free_next_one() -> tuple[socket.socket, int]:
    """A listening socket on a port whose next port was free when probed."""
    for _ in range(50):
        port = free_port()
        occupier = socket.socket()
        try:
            occupier.bind(("127.0.0.1", port))
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
        except OSError:
            # A fresh socket each try: a bound one cannot be bound again.
            occupier.close()
            continue
        occupier.listen()
        return occupier, port
    raise AssertionError("found no busy port with a free one after it in 50 tries")


def test_busy_port_falls_back_to_the_next_free_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    occupier, port = busy_port_with_a_free_next_one()
    with occupier:
        argv = [GATEWAY, "serve", "--port", str(port)]
        with running(argv, gateway_env(home, PASSPHRASE), tmp_path) as process:
            runtime = wait_for(lambda: read_runtime(home), process=process)
            # port + 1 was free when probed; on a shared machine another process may take it
            # before serve does, and then the next free one after it is right too.
            taken = runtime["port"]
            assert port < taken <= port + 10
            assert wait_for(lambda: health(taken), process=process)
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=20)
    assert f"port {port} is busy; took port {taken} instead" in out


def test_a_second_gateway_on_the_same_home_is_refused(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    env = gateway_env(home, PASSPHRASE)
    with running([GATEWAY, "serve", "--port", str(port)], env, tmp_path) as first:
        wait_for(lambda: health(port), process=first)
        second = subprocess.run(
            [GATEWAY, "serve", "--port", str(free_port())],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        assert f"already running for {home}" in second.stderr
        assert read_runtime(home)["pid"] == first.pid  # type: ignore[index]
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=20)


def test_a_stale_runtime_json_is_replaced(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    home.mkdir(mode=0o700)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (home / "runtime.json").write_text(
        json.dumps({"pid": int(dead.stdout), "host": "127.0.0.1", "port": 1, "startedAt": "x"})
    )
    with running(
        [GATEWAY, "serve", "--port", str(port)], gateway_env(home, PASSPHRASE), tmp_path
    ) as process:
        wait_for(lambda: health(port), process=process)
        assert wait_for(lambda: (read_runtime(home) or {}).get("pid") == process.pid)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "gateway.example"])
def test_non_loopback_host_needs_allow_remote(tmp_path: Path, host: str) -> None:
    result = subprocess.run(
        [GATEWAY, "serve", "--host", host, "--port", str(free_port())],
        env=gateway_env(tmp_path / "home"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--allow-remote" in result.stderr
    assert not (tmp_path / "home" / "runtime.json").exists()


def test_python_dash_m_runs_the_same_cli(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agentspace_gateway", "migrate", "--status"],
        env=gateway_env(tmp_path / "home"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "pending  0001_initial" in result.stdout


def test_aiohttp_web_runs_the_app_factory(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    argv = [
        sys.executable,
        "-m",
        "aiohttp.web",
        "-H",
        "127.0.0.1",
        "-P",
        str(port),
        "agentspace_gateway.app:create_app",
    ]
    with running(argv, gateway_env(home, PASSPHRASE), tmp_path) as process:
        body = wait_for(lambda: health(port), process=process)
        assert body["pid"] == process.pid
        assert (home / "agentspace.db").exists()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)


def test_no_secret_reaches_logs_or_files_end_to_end(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    env = gateway_env(home, PASSPHRASE)
    api_key = "sk-ant-api03-" + "Endt0End" * 10
    subprocess.run(
        [GATEWAY, "keys", "add", "anthropic"],
        input=api_key + "\n",
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = subprocess.run(
        [GATEWAY, "token", "show"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    env_debug = {**env, "AGENTSPACE_LOGGING_LEVEL": "DEBUG"}
    with running([GATEWAY, "serve", "--port", str(port)], env_debug, tmp_path) as process:
        wait_for(lambda: health(port), process=process)
        status, body = get_json(
            f"http://127.0.0.1:{port}/keys/anthropic?token={token}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert (status, body["key"]) == (200, api_key)
        assert (
            get_json(
                f"http://127.0.0.1:{port}/keys/anthropic", headers={"Authorization": "Bearer nope"}
            )[0]
            == 401
        )
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)

    assert "GET /keys/anthropic?token=[REDACTED]" in err
    on_disk = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    for secret in (api_key, token, PASSPHRASE):
        assert secret not in out
        assert secret not in err
        assert secret.encode() not in on_disk
