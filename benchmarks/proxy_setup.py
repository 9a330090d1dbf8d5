"""What the proxy scenario needs before ``serve`` starts: a fake OpenAI upstream, the
``bench`` OpenAI-kind provider in config.toml pointing at it, and a client key."""

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from benchmarks.processes import _announced, gateway_environment, start_module

PROVIDER = "bench"
OPENAI_MODEL = "gpt-4.1"


@contextlib.contextmanager
def fake_openai(workdir: Path) -> Iterator[str]:
    """The fake OpenAI upstream as a process; yields its base URL (ending in /v1)."""
    process = start_module("fake_openai_server", workdir, "fake-openai")
    try:
        yield _announced(process, r"listening on (http://\S+)").group(1)
    finally:
        process.stop()


def prepare_proxy(home: Path, upstream_url: str, openai_url: str, workdir: Path) -> str:
    """Add the provider to the home's config.toml and issue a client key; return the key."""
    config = home / "config.toml"
    existing = config.read_text() if config.exists() else ""
    config.write_text(
        existing
        + f'\n[providers.{PROVIDER}]\nkind = "openai"\nbase_url = "{openai_url}"\nkey = "none"\n'
    )
    completed = subprocess.run(
        [sys.executable, "-m", "agentspace_gateway", "clients", "add", "bench"],
        env=gateway_environment(home, upstream_url),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    key = next((w for w in completed.stdout.split() if w.startswith("asg_")), None)
    if completed.returncode != 0 or key is None:
        raise RuntimeError(f"clients add bench failed:\n{completed.stderr}")
    return key
