"""The README's development servers, run as real processes: ``python -m aiohttp.web`` and
``adev runserver``. Each writes runtime.json with the address it really serves on (so
``agentspace-gateway chat`` finds it with no --url), removes it on stop, and logs the
gateway's way: INFO, and no user content at any level (``logging.level = "DEBUG"`` included).
"""

import asyncio
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_first_run import run_command

from conftest import PASSPHRASE, TEST_API_KEY
from fake_anthropic import FakeAnthropic
from processes import BIN, WAIT_SECONDS, free_port, gateway_env, running

CHECKOUT = Path(__file__).resolve().parent.parent
PROMPT = "the-user-wrote-this-4f1c9e and nobody else may read it"


def read_runtime(home: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((home / "runtime.json").read_text())
    except (OSError, ValueError):
        return None
    return data


def two_free_ports() -> int:
    """A port whose next one is free too: adev serves its live-reload app on port + 1."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two adjacent free ports")


async def wait_for_runtime(home: Path, process: subprocess.Popen[str]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while loop.time() < deadline:
        assert process.poll() is None, process.communicate()
        runtime = read_runtime(home)
        if runtime is not None:
            return runtime
        await asyncio.sleep(0.1)
    raise AssertionError("runtime.json was not written")


async def chat_through_runtime_json(
    argv: list[str], env: dict[str, str], cwd: Path, fake: FakeAnthropic
) -> tuple[dict[str, Any], str, str]:
    """Serve, chat once by runtime.json, stop with Ctrl-C; the runtime seen and the logs."""
    home = Path(env["AGENTSPACE_HOME"])
    with running(argv, env, cwd) as process:
        runtime = await wait_for_runtime(home, process)
        client_env = gateway_env(home)  # the client's own shell: no key, no base URL
        answered = await run_command(
            [str(BIN / "agentspace-gateway"), "chat", "--message", PROMPT], client_env, cwd
        )
        assert (answered.returncode, answered.stdout) == (0, "Hello, world!\n"), answered.stderr
        process.send_signal(signal.SIGINT)
        try:
            out, err = await asyncio.to_thread(process.communicate, timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = await asyncio.to_thread(process.communicate, timeout=10)
    # The prompt did go through the app: a log line without it is not for lack of traffic.
    assert PROMPT in json.dumps(fake.message_requests[-1].json)
    assert read_runtime(home) is None
    return runtime, out, err


def assert_no_content_logged(out: str, err: str, *, level: str) -> None:
    for text in (out, err):
        assert PROMPT not in text
        assert "Hello, world" not in text  # the reply neither
        assert TEST_API_KEY not in text
        assert PASSPHRASE not in text
    assert "aiosqlite" not in err
    assert "INFO    agentspace_gateway" in err  # the gateway's format, at INFO
    if level == "INFO":
        assert " DEBUG " not in err
    else:
        assert "DEBUG   agentspace_gateway.gateway.view: connection" in err


def server_env(home: Path, base_url: str, level: str) -> dict[str, str]:
    return gateway_env(
        home,
        PASSPHRASE,
        ANTHROPIC_API_KEY=TEST_API_KEY,
        ANTHROPIC_BASE_URL=base_url,
        AGENTSPACE_ANTHROPIC_MAX_RETRIES="0",
        AGENTSPACE_LOGGING_LEVEL=level,
    )


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_python_m_aiohttp_web_writes_runtime_json_and_logs_no_content(
    tmp_path: Path, fake_anthropic: tuple[FakeAnthropic, str], level: str
) -> None:
    fake, base_url = fake_anthropic
    port = free_port()
    argv = [sys.executable, "-m", "aiohttp.web", "-H", "127.0.0.1", "-P", str(port)]
    argv.append("agentspace_gateway.app:create_app")
    env = server_env(tmp_path / "home", base_url, level)

    runtime, out, err = await chat_through_runtime_json(argv, env, tmp_path, fake)

    assert (runtime["host"], runtime["port"]) == ("127.0.0.1", port)
    assert f"Running on http://127.0.0.1:{port}" in out
    assert_no_content_logged(out, err, level=level)


async def test_adev_runserver_writes_runtime_json_and_logs_no_content(
    tmp_path: Path, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    fake, base_url = fake_anthropic
    port = two_free_ports()
    argv = [str(BIN / "adev"), "runserver", "agentspace_gateway/app.py"]
    argv += ["--app-factory", "create_app", "--port", str(port), "--no-livereload"]
    env = server_env(tmp_path / "home", base_url, "INFO")

    # From the checkout, as the README says: adev takes the app by its file path.
    runtime, out, err = await chat_through_runtime_json(argv, env, CHECKOUT, fake)

    # adev listens on every interface; runtime.json names the loopback address reaching it.
    assert (runtime["host"], runtime["port"]) == ("127.0.0.1", port)
    assert runtime["pid"] != 0
    assert_no_content_logged(out, err, level="INFO")
