"""The processes a run drives: the fake Anthropic upstream and real ``serve`` gateways.

Both are separate processes on loopback, started from the installed package (their working
directory is outside the checkout), with their logs in files so a full pipe never blocks
them. Memory and CPU are read from /proc, which is what the operating system charges them.
"""

import contextlib
import os
import re
import resource
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import aiohttp
import attrs

from agentspace_gateway.config import GatewayConfig

REPOSITORY = Path(__file__).resolve().parent.parent
FAKE_UPSTREAM = REPOSITORY / "tests" / "fake_anthropic.py"
PASSPHRASE = "benchmark passphrase, not a secret"
API_KEY = "sk-ant-api03-benchmark-key-for-the-fake-upstream"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Per-connection flood limits (when this version has them) would throttle the ping and
# connection scenarios, which measure the gateway's capacity, not its flood protection.
_UNTHROTTLED = {
    "messages_per_second": "1000000",
    "message_burst": "1000000",
    "max_inflight_messages": "1024",
}


def raise_open_files_limit() -> int:
    """Soft limit up to the hard one: 1,000 WebSockets need 1,000 descriptors on each side.

    Child processes inherit the raised limit, so the gateway and the fake get it too.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


def clean_environment(**extra: str) -> dict[str, str]:
    """This environment without any AGENTSPACE_/ANTHROPIC_ setting of the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTSPACE_", "ANTHROPIC_"))}
    env.update(extra)
    return env


@attrs.define
class ServerProcess:
    popen: subprocess.Popen[str]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_kb(self) -> int:
        """Resident set size now, from /proc/PID/status (VmRSS, in kB)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"no VmRSS in /proc/{self.pid}/status: has the process exited?")
        return int(match.group(1))

    def cpu_seconds(self) -> float:
        """User + system CPU time so far, from /proc/PID/stat."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def switches_forced(self) -> int:
        """Times the main thread was taken off the CPU while it still wanted it."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(
                f"process {self.pid} exited with {self.popen.returncode}; "
                f"its log is {self.log_path}:\n{_tail(self.log_path)}"
            )

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _start(argv: list[str], env: Mapping[str, str], workdir: Path, name: str) -> ServerProcess:
    log_path = workdir / f"{name}.log"
    with log_path.open("w") as log:
        popen = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    return ServerProcess(popen, log_path)


def start_module(module: str, workdir: Path, name: str, *arguments: str) -> ServerProcess:
    """Start one of the bench's own servers, ``python -m benchmarks.MODULE --port 0 ...``.

    Its working directory is outside the checkout, so the checkout goes on PYTHONPATH for
    ``benchmarks`` to import; these servers are the fakes, never the gateway measured.
    """
    return _start(
        [sys.executable, "-m", f"benchmarks.{module}", "--port", "0", *arguments],
        clean_environment(PYTHONPATH=str(REPOSITORY)),
        workdir,
        name,
    )


def _announced(process: ServerProcess, pattern: str) -> re.Match[str]:
    """Wait for the line the process prints once it is listening."""
    stdout: IO[str] | None = process.popen.stdout
    assert stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        process.check_alive()
        ready, _, _ = select.select([stdout], [], [], 0.1)
        if ready:
            line = stdout.readline()
            match = re.search(pattern, line)
            if match is not None:
                return match
    process.stop()
    raise RuntimeError(f"no {pattern!r} within {START_TIMEOUT_SECONDS} s; see {process.log_path}")


def run_cli(args: list[str], env: Mapping[str, str], workdir: Path, stdin: str = "") -> str:
    """The command's standard output; its standard error in the exception if it fails."""
    completed = subprocess.run(
        [sys.executable, "-m", "agentspace_gateway", *args],
        env=dict(env),
        cwd=workdir,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"agentspace-gateway {' '.join(args)} failed:\n{completed.stderr}")
    return completed.stdout


@attrs.define
class FakeUpstream:
    process: ServerProcess
    base_url: str

    async def enqueue(self, http: aiohttp.ClientSession, scenarios: list[dict[str, Any]]) -> None:
        """Queue what the next /v1/messages requests do, in order (fields of its Scenario)."""
        async with http.post(f"{self.base_url}/_fake/scenarios", json=scenarios) as response:
            if response.status != 200:
                raise RuntimeError(f"the fake refused the scenarios: {await response.text()}")


@contextlib.contextmanager
def fake_upstream(workdir: Path) -> Iterator[FakeUpstream]:
    process = _start(
        [sys.executable, str(FAKE_UPSTREAM), "--port", "0"], clean_environment(), workdir, "fake"
    )
    try:
        match = _announced(process, r"listening on (http://\S+)")
        yield FakeUpstream(process, match.group(1))
    finally:
        process.stop()


@attrs.define
class Gateway:
    process: ServerProcess
    port: int
    home: Path
    # The gateway token: the WebSocket asks for a credential even on loopback (issue 19).
    token: str

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def ws_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def reset_loop_monitor(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        """The loop figures since the last reset; counting starts again from now."""
        async with http.post(f"{self.http_url}/debug/loop/reset") as response:
            report: dict[str, Any] = await response.json()
            return report


def gateway_environment(home: Path, upstream_url: str) -> dict[str, str]:
    env = clean_environment(
        AGENTSPACE_HOME=str(home),
        AGENTSPACE_VAULT_PASSPHRASE=PASSPHRASE,
        AGENTSPACE_VAULT_BACKEND="file",
        AGENTSPACE_ANTHROPIC_BASE_URL=upstream_url,
        AGENTSPACE_SERVER_LOOP_MONITOR="true",
        # So that a 200-message session is inspected and sent whole, not its last 50.
        AGENTSPACE_CONTEXT_HISTORY_MESSAGES="200",
    )
    known = attrs.fields_dict(GatewayConfig)
    for key, value in _UNTHROTTLED.items():
        if key in known:
            env[f"AGENTSPACE_GATEWAY_{key.upper()}"] = value
    return env


def prepare_home(home: Path, upstream_url: str, workdir: Path) -> None:
    """A migrated database and the fake's API key in the encrypted vault, as a user has."""
    home.mkdir(parents=True, exist_ok=True)
    env = gateway_environment(home, upstream_url)
    run_cli(["migrate"], env, workdir)
    run_cli(["keys", "add", "anthropic"], env, workdir, stdin=API_KEY + "\n")


@contextlib.contextmanager
def gateway(home: Path, upstream_url: str, workdir: Path, name: str) -> Iterator[Gateway]:
    env = gateway_environment(home, upstream_url)
    process = _start(
        [sys.executable, "-m", "agentspace_gateway", "serve", "--port", "0"], env, workdir, name
    )
    try:
        match = _announced(process, r"serving on http://127\.0\.0\.1:(\d+)")
        token = run_cli(["token", "show"], env, workdir).strip()
        yield Gateway(process, int(match.group(1)), home, token)
    finally:
        process.stop()


@contextlib.contextmanager
def bare_server(workdir: Path) -> Iterator[str]:
    """The ceiling's bare aiohttp WebSocket server; yields its ws:// URL."""
    process = start_module("bare_server", workdir, "bare")
    try:
        yield _announced(process, r"listening on (ws://\S+)").group(1)
    finally:
        process.stop()


@attrs.frozen
class BareServer:
    """One of the bare relays: its URL and its process."""

    url: str
    process: ServerProcess


@contextlib.contextmanager
def bare_relay(workdir: Path, upstream_url: str) -> Iterator[BareServer]:
    """The bare aiohttp relay of ``/v1/messages`` to ``upstream_url``; its base URL is the
    server's URL."""
    process = start_module("bare_relay", workdir, "bare-relay", "--upstream", upstream_url)
    try:
        yield BareServer(_announced(process, r"listening on (http://\S+)").group(1), process)
    finally:
        process.stop()


@contextlib.contextmanager
def bare_chat(workdir: Path, upstream_url: str) -> Iterator[BareServer]:
    """The bare WebSocket chat relay to ``upstream_url``; yields its URL and process."""
    process = start_module("bare_chat", workdir, "bare-chat", "--upstream", upstream_url)
    try:
        url = _announced(process, r"listening on (ws://\S+)").group(1)
        yield BareServer(url, process)
    finally:
        process.stop()
