"""LiteLLM's proxy, the peer the gateway is measured beside, in a venv of its own.

python -m benchmarks.litellm_proxy      # create the venv (tox -e bench does it first)

`litellm[proxy]` brings about a hundred packages; they go into their own venv
(.tox/litellm-proxy-VERSION in the checkout), never into the gateway's environment. The
proxy runs as it would for a user with one model and nothing else: no database (no
DATABASE_URL), no master key, telemetry off, the cost map bundled with the package
(LITELLM_LOCAL_MODEL_COST_MAP, so it fetches nothing at start), one uvicorn worker (the
gateway is one process too), its default logging, on 127.0.0.1. Its one model,
`claude-sonnet-4-5`, is `anthropic/claude-sonnet-4-5` at the fake upstream's address.
"""

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import attrs

from benchmarks.processes import API_KEY, REPOSITORY, ServerProcess, clean_environment
from benchmarks.streams import MODEL

# Pinned: what is measured must not move under the figures. 1.81.13 predates the releases
# of March 2026 that were pulled from PyPI as compromised.
LITELLM_VERSION = "1.81.13"
VENV = REPOSITORY / ".tox" / f"litellm-proxy-{LITELLM_VERSION}"
INSTALL_TIMEOUT_SECONDS = 900
# Its start imports much of the package: 20-30 s on this machine.
START_TIMEOUT_SECONDS = 180.0
_COMPLETE = ".installed"


def install(venv: Path = VENV) -> Path:
    """The venv's `litellm` command, creating the venv first unless a complete one is there."""
    command = venv / "bin" / "litellm"
    marker = venv / _COMPLETE
    if marker.exists() and marker.read_text().strip() == LITELLM_VERSION:
        return command
    shutil.rmtree(venv, ignore_errors=True)  # a half-made one from an interrupted run
    print(f"installing litellm[proxy]=={LITELLM_VERSION} into {venv}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # tox sets PIP_CONSTRAINT to the gateway's lock; LiteLLM resolves its own dependencies.
    env = {key: value for key, value in os.environ.items() if key != "PIP_CONSTRAINT"}
    subprocess.run(
        [
            *(str(venv / "bin" / "python"), "-m", "pip", "install"),
            *("--disable-pip-version-check", "--quiet", f"litellm[proxy]=={LITELLM_VERSION}"),
        ],
        check=True,
        env=env,
        timeout=INSTALL_TIMEOUT_SECONDS,
    )
    marker.write_text(LITELLM_VERSION + "\n")
    return command


@attrs.define
class Proxy:
    process: ServerProcess
    port: int
    started_in_seconds: float

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def litellm_proxy(
    workdir: Path, upstream_url: str, http: aiohttp.ClientSession
) -> AsyncIterator[Proxy]:
    """The proxy, started once and waited for (its health endpoint), then stopped."""
    began = time.monotonic()
    process, port = await asyncio.to_thread(_launch, workdir, upstream_url)
    try:
        await _healthy(process, f"http://127.0.0.1:{port}/health/liveliness", http)
        yield Proxy(process, port, time.monotonic() - began)
    finally:
        await asyncio.to_thread(process.stop)


def _launch(workdir: Path, upstream_url: str) -> tuple[ServerProcess, int]:
    command = install()
    config = workdir / "litellm.yaml"
    # YAML is a superset of JSON, and the benchmark needs no YAML writer.
    model = {"model": f"anthropic/{MODEL}", "api_base": upstream_url, "api_key": API_KEY}
    settings = {"telemetry": False}
    document = {"model_list": [{"model_name": MODEL, "litellm_params": model}]}
    config.write_text(json.dumps({**document, "litellm_settings": settings}, indent=2))
    port = _free_port()
    env = clean_environment(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False")
    env.pop("DATABASE_URL", None)
    log_path = workdir / "litellm.log"
    with log_path.open("w") as log:
        popen = subprocess.Popen(
            [
                *(str(command), "--config", str(config), "--host", "127.0.0.1"),
                *("--port", str(port), "--num_workers", "1", "--telemetry", "False"),
            ],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return ServerProcess(popen, log_path), port


async def _healthy(process: ServerProcess, url: str, http: aiohttp.ClientSession) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        process.check_alive()
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.5)
    raise RuntimeError(
        f"LiteLLM not healthy within {START_TIMEOUT_SECONDS} s; see {process.log_path}"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


if __name__ == "__main__":
    print(install())
