"""A real ``serve`` among hostile neighbours: the descriptor limit raised, connections capped
with a clean refusal, /health kept answerable, accept failures logged once per interval,
and request headers and idle connections bounded in time."""

import asyncio
import contextlib
import json
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from processes import BIN, free_port, gateway_env, get_json, health, wait_for

GATEWAY = str(BIN / "agentspace-gateway")
HEADER_TIMEOUT = 1.0
IDLE_TIMEOUT = 3.0
# Scheduling on a loaded 2-core machine: a deadline may fire this much late, never early.
SLACK = 5.0


class Served:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


@contextlib.contextmanager
def serve(
    directory: Path, descriptors: tuple[int, int] | None = None, **settings: str
) -> Iterator[Served]:
    """``serve`` with its stderr in a file (a pipe left unread would block a flood of log)
    and, if given, a (soft, hard) descriptor limit set before it starts."""
    port = free_port()
    env = gateway_env(directory / "home", **settings)
    log = directory / "serve.log"

    def limit_descriptors() -> None:
        if descriptors is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, descriptors)

    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [GATEWAY, "serve", "--port", str(port)],
            env=env,
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=limit_descriptors,
        )
    try:
        wait_for(lambda: health(port), process=process)  # type: ignore[arg-type]
        yield Served(process, port, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Short header and idle timeouts, started with a soft descriptor limit of 256."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with serve(
        tmp_path_factory.mktemp("timed"),
        descriptors=(256, hard),
        AGENTSPACE_SERVER_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        AGENTSPACE_SERVER_IDLE_TIMEOUT_SECONDS=str(IDLE_TIMEOUT),
        AGENTSPACE_GATEWAY_REQUIRE_TOKEN="false",
    ) as served:
        yield served


def soft_descriptor_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no 'Max open files' line")


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one(timed: Served) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert soft_descriptor_limit(timed.process.pid) == hard
    [line] = [line for line in timed.log_lines() if "descriptor limit" in line]
    assert f"descriptor limit {hard} (was 256)" in line


def seconds_until_closed(sock: socket.socket, trickle: bytes = b"") -> float:
    """Seconds until the server closes ``sock``; ``trickle`` is sent every 0.3 s meanwhile."""
    started = time.monotonic()
    sock.settimeout(0.3)
    while time.monotonic() - started < HEADER_TIMEOUT + IDLE_TIMEOUT + 2 * SLACK:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            if trickle:
                try:
                    sock.sendall(trickle)
                except (BrokenPipeError, ConnectionResetError):
                    return time.monotonic() - started
        except ConnectionResetError:
            return time.monotonic() - started
    raise AssertionError("the connection was never closed")


def test_partial_headers_are_closed_at_the_header_timeout(timed: Served) -> None:
    with socket.create_connection(("127.0.0.1", timed.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        # A header line every 0.3 s: a client that is always almost done.
        waited = seconds_until_closed(sock, trickle=b"X-Slow: 1\r\n")
    assert HEADER_TIMEOUT * 0.9 <= waited <= HEADER_TIMEOUT + SLACK


def test_a_silent_connection_is_closed_at_the_header_timeout(timed: Served) -> None:
    with socket.create_connection(("127.0.0.1", timed.port)) as sock:
        waited = seconds_until_closed(sock)
    assert HEADER_TIMEOUT * 0.9 <= waited <= HEADER_TIMEOUT + SLACK


def test_an_idle_keep_alive_connection_is_closed_at_the_idle_timeout(timed: Served) -> None:
    with socket.create_connection(("127.0.0.1", timed.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        # Idle now, between requests: the longer idle timeout applies, not the header one.
        waited = seconds_until_closed(sock)
    assert IDLE_TIMEOUT * 0.9 <= waited <= IDLE_TIMEOUT + SLACK


async def test_a_websocket_outlives_both_timeouts(timed: Served) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{timed.port}/gateway"
        async with http.ws_connect(url, heartbeat=None) as ws:
            await asyncio.sleep(HEADER_TIMEOUT + IDLE_TIMEOUT + 1)
            await ws.send_json({"type": "ping", "id": "p"})
            assert (await ws.receive_json(timeout=10))["type"] == "pong"


def refusal_of(sock: socket.socket) -> tuple[int, dict[str, object]] | None:
    """The 503 a refused connection gets without asking, or None if it is being served."""
    sock.settimeout(1.0)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    return int(head.split()[1]), json.loads(body)


def test_connections_past_the_cap_are_refused_and_health_still_answers(tmp_path: Path) -> None:
    with serve(
        tmp_path,
        AGENTSPACE_SERVER_MAX_CONNECTIONS="20",
        AGENTSPACE_SERVER_HEADER_TIMEOUT_SECONDS="120",
    ) as served:
        address = ("127.0.0.1", served.port)
        idle = [socket.create_connection(address) for _ in range(20)]
        try:
            time.sleep(0.5)
            # The cap is reached: /health still answers, on a slot kept for it...
            assert health(served.port) is not None
            # ... where nothing else does.
            status, body = get_json(f"http://127.0.0.1:{served.port}/", timeout=10)
            assert (status, body["error"]["code"]) == (503, "TOO_MANY_CONNECTIONS")

            more = [socket.create_connection(address) for _ in range(10)]
            idle += more
            refused = [answer for answer in (refusal_of(sock) for sock in more) if answer]
            # The newest 4 hold the slots kept for /health; each newcomer past those made
            # room by closing the one that had waited longest there, telling it why.
            assert len(refused) == 6
            for status, body in refused:
                error = body["error"]
                assert isinstance(error, dict)
                assert (status, error["code"]) == (503, "TOO_MANY_CONNECTIONS")
                assert "server.max_connections" in error["message"]
            # Idle sockets on every kept slot cannot keep a probe out.
            assert health(served.port) is not None
        finally:
            for sock in idle:
                sock.close()
        refusal_lines = [line for line in served.log_lines() if "refused a connection" in line]
        assert 1 <= len(refusal_lines) <= 2


def test_accept_failures_at_the_descriptor_limit_are_logged_once_per_interval(
    tmp_path: Path,
) -> None:
    # A cap far past what 64 descriptors hold, so the process really runs out.
    with serve(tmp_path, descriptors=(64, 64), AGENTSPACE_SERVER_MAX_CONNECTIONS="200") as served:
        opened: list[socket.socket] = []
        try:
            for _ in range(200):
                sock = socket.socket()
                sock.setblocking(False)  # past the backlog a connect would wait for nothing
                sock.connect_ex(("127.0.0.1", served.port))
                opened.append(sock)
            time.sleep(3)
        finally:
            for sock in opened:
                sock.close()
        # With the sockets gone, accepting resumes: the gateway answers again.
        assert wait_for(lambda: health(served.port), timeout=30)
        lines = served.log_lines()
    failures = [line for line in lines if "cannot accept connections" in line]
    assert 1 <= len(failures) <= 3
    assert "Too many open files" in failures[0]
    assert not [line for line in lines if "Traceback" in line]
    assert len(lines) < 40
