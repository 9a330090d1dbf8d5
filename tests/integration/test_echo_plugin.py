"""The example echo plugin, installed beside the gateway, driven over a real WebSocket.

``tox -e plugins`` installs examples/echo_plugin next to the gateway wheel and runs this
module; the default test environment leaves tests/integration out, as the plugin is absent.
"""

import importlib.metadata
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agentspace_gateway import appkeys
from agentspace_gateway.app import create_app
from agentspace_gateway.config import Config
from agentspace_gateway.handler_registry import PluginConflictError
from agentspace_gateway.home import Home
from agentspace_gateway.plugin_api import ENTRY_POINT_GROUP
from agentspace_gateway.storage.client_keys import ClientKeyRepository

from conftest import PASSPHRASE
from processes import BIN, free_port, gateway_env, health, running, wait_for

GATEWAY = str(BIN / "agentspace-gateway")
REPLY_TIMEOUT_SECONDS = 10.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One real ``agentspace-gateway serve`` for the module; yields its port."""
    tmp_path = tmp_path_factory.mktemp("gateway")
    home, port = tmp_path / "home", free_port()
    argv = [GATEWAY, "serve", "--port", str(port)]
    with running(argv, gateway_env(home, PASSPHRASE), tmp_path) as process:
        wait_for(lambda: health(port), process=process)
        yield port
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err, err


async def exchange(port: int, *frames: dict[str, Any]) -> list[dict[str, Any]]:
    """Send each frame in turn on one connection and collect the reply to each."""
    replies = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"ws://127.0.0.1:{port}/gateway") as socket,
    ):
        for frame in frames:
            await socket.send_json(frame)
            replies.append(await socket.receive_json(timeout=REPLY_TIMEOUT_SECONDS))
    return replies


def strings_in(value: Any) -> set[str]:
    """Every key and string value anywhere in a JSON document."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        found = set(value)
        for item in value.values():
            found |= strings_in(item)
        return found
    if isinstance(value, list):
        return set().union(*(strings_in(item) for item in value))
    return set()


def test_the_plugin_entry_point_is_installed() -> None:
    entry_points = importlib.metadata.entry_points(group="agentspace_gateway.handlers")
    by_name = {entry_point.name: entry_point for entry_point in entry_points}
    assert "echo" in by_name, "run through tox -e plugins, which installs examples/echo_plugin"
    assert by_name["echo"].value == "agentspace_echo_plugin:echo"
    assert by_name["echo"].dist is not None
    assert by_name["echo"].dist.name == "agentspace-echo-plugin"


def test_health_lists_the_plugin_handler(gateway: int) -> None:
    body = health(gateway)
    assert body["status"] == "ok"
    if "handlers" in body:
        assert "echo" in body["handlers"]
        assert "ping" in body["handlers"]
        assert body["handlers"] == sorted(body["handlers"])


async def test_echo_and_the_built_in_ping_share_a_connection(gateway: int) -> None:
    replies = await exchange(
        gateway,
        {"type": "echo", "id": "e1", "text": "hi", "times": 2},
        {"type": "echo", "id": "e2", "text": "hi", "upper": True},
        {"type": "echo", "id": "e3", "text": "hi", "times": 99},
        {"type": "ping", "id": "p1"},
    )

    assert replies[0] == {"type": "echo.reply", "requestId": "e1", "text": "hi hi", "times": 2}
    assert replies[1] == {"type": "echo.reply", "requestId": "e2", "text": "HI", "times": 1}
    # A refused message leaves the connection open for the next one.
    assert replies[2]["type"] == "error"
    assert replies[2]["requestId"] == "e3"
    assert replies[3] == {"type": "pong", "requestId": "p1"}


@pytest.mark.parametrize(
    ("bad", "field", "problem"),
    [
        ({"times": "2"}, "times", "expected an integer, got a string"),
        ({"times": 99}, "times", "must be from 1 to 10"),
        ({"times": 0}, "times", "must be from 1 to 10"),
        ({"times": True}, "times", "expected an integer, got a boolean"),
        ({"upper": "yes"}, "upper", "expected true or false, got a string"),
        ({"text": ""}, "text", "must not be empty"),
        ({"loud": True}, "loud", "unknown field"),
    ],
)
async def test_a_bad_field_is_refused_and_named(
    gateway: int, bad: dict[str, Any], field: str, problem: str
) -> None:
    [reply] = await exchange(gateway, {"type": "echo", "id": "e1", "text": "hi", **bad})

    assert reply["type"] == "error"
    assert reply["code"] == "INVALID_MESSAGE"
    assert reply["requestId"] == "e1"
    assert {"field": field, "message": problem} in reply["details"]
    assert field in reply["message"]


async def test_a_missing_field_is_refused_and_named(gateway: int) -> None:
    [reply] = await exchange(gateway, {"type": "echo", "id": "e1"})

    assert (reply["type"], reply["code"], reply["requestId"]) == ("error", "INVALID_MESSAGE", "e1")
    assert {"field": "text", "message": "required"} in reply["details"]


async def test_an_error_raised_by_the_handler_answers_the_request(gateway: int) -> None:
    replies = await exchange(
        gateway,
        {"type": "echo", "id": "e1", "text": "x" * 3000, "times": 3},
        {"type": "ping", "id": "p1"},
    )

    assert replies[0]["type"] == "error"
    assert replies[0]["code"] == "INVALID_MESSAGE"
    assert replies[0]["requestId"] == "e1"
    assert "over the limit of 8192" in replies[0]["message"]
    assert replies[0]["details"] == [{"field": "times", "message": "too many for 3000 characters"}]
    assert replies[1] == {"type": "pong", "requestId": "p1"}


def test_the_published_schema_includes_the_plugin_messages(tmp_path: Path) -> None:
    result = subprocess.run(
        [GATEWAY, "protocol", "--json-schema"],
        env=gateway_env(tmp_path / "home"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    names = strings_in(json.loads(result.stdout))
    assert {"echo", "echo.reply", "times", "upper", "requestId"} <= names


async def test_echo_in_process_through_aiohttp_client(aiohttp_client: Any, home: Home) -> None:
    # No handler_entry_points: the app loads every installed plugin, as serve does.
    client = await aiohttp_client(create_app(home=home, config=Config()))
    # Every door asks who you are: here a client key, as a third-party tool would present.
    issued = await ClientKeyRepository(client.app[appkeys.DATABASE]).issue("echo-test")

    async with client.ws_connect("/gateway", headers={"x-api-key": issued.secret}) as socket:
        await socket.send_json({"type": "echo", "id": "e1", "text": "hi", "times": 3})
        reply = await socket.receive_json(timeout=REPLY_TIMEOUT_SECONDS)

    assert reply == {"type": "echo.reply", "requestId": "e1", "text": "hi hi hi", "times": 3}


def test_a_second_claim_on_echo_stops_startup_naming_both_owners(home: Home) -> None:
    installed = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    again = importlib.metadata.EntryPoint(
        name="echo-again", value="agentspace_echo_plugin:echo", group=ENTRY_POINT_GROUP
    )

    with pytest.raises(PluginConflictError) as raised:
        create_app(home=home, handler_entry_points=[*installed, again])

    assert "'echo' is claimed twice" in str(raised.value)
    assert "agentspace-echo-plugin 0.1.0 (echo = agentspace_echo_plugin:echo)" in str(raised.value)
    assert "(echo-again = agentspace_echo_plugin:echo)" in str(raised.value)
