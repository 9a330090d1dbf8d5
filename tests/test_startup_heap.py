"""What startup built is frozen out of the garbage collector's way; its garbage is not."""

import gc
import re
import signal
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentspace_gateway.serving import freeze_startup_heap

from conftest import PASSPHRASE
from processes import BIN, free_port, gateway_env, health, running, wait_for


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test process's heap is back in the collector's hands afterwards."""
    assert gc.get_freeze_count() == 0
    try:
        yield
    finally:
        gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_garbage_is_collected_first_and_what_lives_is_frozen(unfrozen: None) -> None:
    kept = Node()
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage

    frozen = freeze_startup_heap()

    assert frozen == gc.get_freeze_count() > 0
    assert gone() is None  # collected, not frozen for ever
    # Frozen: no longer among the objects any collection walks.
    assert not any(obj is kept for obj in gc.get_objects())


def test_serve_freezes_its_startup_heap(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    env = gateway_env(home, PASSPHRASE)
    with running(
        [str(BIN / "agentspace-gateway"), "serve", "--port", str(port)], env, tmp_path
    ) as (process):
        wait_for(lambda: health(port), process=process)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)

    assert process.returncode == 0, err
    match = re.search(r"startup done: (\d+) long-lived objects moved out of the collector", err)
    assert match is not None, err
    # The SDK's and pydantic's types alone are tens of thousands of objects.
    assert int(match.group(1)) > 10_000
