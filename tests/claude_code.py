"""The real Claude Code CLI for the tests, at a pinned version, installed once into a cache.

The npm package `@anthropic-ai/claude-code` carries its native binary in an optional
platform package (`-linux-x64` here); `npm install` puts it under the prefix. Set
CLAUDE_CODE_BIN to use a `claude` installed elsewhere (tox installs it in its env).
"""

import os
import shutil
import subprocess
from pathlib import Path

CLAUDE_CODE_VERSION = "2.1.332"
PACKAGE = "@anthropic-ai/claude-code"
INSTALL_SECONDS = 600


def cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "agentspace-gateway-tests" / f"claude-code-{CLAUDE_CODE_VERSION}"


def claude_code_bin() -> Path:
    """The `claude` executable at the pinned version, installed first if need be."""
    given = os.environ.get("CLAUDE_CODE_BIN")
    if given:
        return Path(given)
    prefix = cache_dir()
    binary = prefix / "node_modules" / ".bin" / "claude"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "npm is needed to install Claude Code for this test (apt-get install npm), or set "
            "CLAUDE_CODE_BIN to a claude executable of version " + CLAUDE_CODE_VERSION
        )
    prefix.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(prefix),
            f"{PACKAGE}@{CLAUDE_CODE_VERSION}",
        ],
        check=True,
        timeout=INSTALL_SECONDS,
        capture_output=True,
    )
    return binary
