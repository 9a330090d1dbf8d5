"""Helpers for tests that run the real gateway as a separate process on loopback."""

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from conftest import NO_KEYCHAIN

BIN = Path(sys.executable).parent
# The bound on every wait for a gateway process here: to come up, to answer, to meet a
# condition, to exit. Generous, since on a loaded 2-core machine its imports alone take
# seconds; a process that hangs still fails the wait, well inside pytest-timeout's bound.
WAIT_SECONDS = 60.0
# How often a condition is polled meanwhile.
POLL_SECONDS = 0.05


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def gateway_env(home: Path, passphrase: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a gateway process (or a client of one) in a test.

    Its doors are open to loopback (gateway.require_token = false) unless ``extra`` says
    otherwise: tests of a real process that are about something else connect with a plain
    ``ws_connect``. Tests about credentials pass AGENTSPACE_GATEWAY_REQUIRE_TOKEN="true".
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTSPACE_", "ANTHROPIC_"))}
    env.update(
        {
            "AGENTSPACE_HOME": str(home),
            "PYTHON_KEYRING_BACKEND": NO_KEYCHAIN,
            "AGENTSPACE_GATEWAY_REQUIRE_TOKEN": "false",
            **extra,
        }
    )
    if passphrase is not None:
        env["AGENTSPACE_VAULT_PASSPHRASE"] = passphrase
    return env


def get_json(
    url: str, timeout: float = WAIT_SECONDS, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(
    predicate: Any, *, timeout: float = WAIT_SECONDS, process: subprocess.Popen[str] | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"process exited {process.returncode}\n{out}\n{err}")
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"timed out waiting ({timeout} s)")


def health(port: int) -> Any:
    try:
        status, body = get_json(f"http://127.0.0.1:{port}/health")
    except OSError:
        return None
    return body if status == 200 else None


@contextlib.contextmanager
def running(argv: Sequence[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    # cwd is outside the checkout, so the installed package is imported, not the source tree.
    process = subprocess.Popen(
        list(argv), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=WAIT_SECONDS)
        # Also when the test stopped it itself without reading its output to the end.
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def read_link(process: subprocess.Popen[str]) -> str:
    """The console login link a ``serve`` process prints (read from its stdout)."""
    assert process.stdout is not None
    while line := process.stdout.readline():
        if "/login?code=" in line:
            return line.rsplit(" ", 1)[-1].strip()
    raise AssertionError("serve printed no login link")


async def wait_for_health_async(
    port: int, process: subprocess.Popen[str], timeout: float = WAIT_SECONDS
) -> None:
    """Poll /health without blocking the loop (an in-process fake upstream may run on it)."""
    import aiohttp  # only the async tests need it

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as http:
        while loop.time() < deadline:
            assert process.poll() is None, process.communicate()
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/health") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"the gateway did not come up within {timeout} s")
