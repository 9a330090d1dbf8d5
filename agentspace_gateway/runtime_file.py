"""runtime.json: how clients find the running gateway (pid, host, port, startedAt).

Written atomically when serving starts, removed on shutdown. A file left by a process that
no longer exists (a crash, SIGKILL) is stale and simply replaced.
"""

import json
import os
from pathlib import Path
from typing import Any

from attrs import asdict, frozen

from agentspace_gateway.clock import utc_now_iso


@frozen
class RuntimeInfo:
    pid: int
    host: str
    port: int
    startedAt: str

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def read_runtime(path: Path) -> RuntimeInfo | None:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return RuntimeInfo(
            int(data["pid"]), str(data["host"]), int(data["port"]), str(data["startedAt"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_gateway(path: Path) -> RuntimeInfo | None:
    """The gateway that runtime.json names, if that process still exists and is not us."""
    info = read_runtime(path)
    if info is None or info.pid == os.getpid() or not process_alive(info.pid):
        return None
    return info


def write_runtime(path: Path, host: str, port: int) -> RuntimeInfo:
    info = RuntimeInfo(os.getpid(), host, port, utc_now_iso())
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(asdict(info), handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return info


def remove_runtime(path: Path) -> None:
    """Remove runtime.json if it is still ours: a newer gateway may have replaced it."""
    info = read_runtime(path)
    if info is not None and info.pid != os.getpid():
        return
    path.unlink(missing_ok=True)
