"""Client keys on the Anthropic API: Anthropic's error envelope, the limit, the audit log."""

import asyncio
import json

import anthropic
import pytest

from agentspace_gateway import appkeys
from agentspace_gateway.config import AnthropicConfig, Config, KeyserverConfig
from agentspace_gateway.proxy.routes import PROXY
from agentspace_gateway.storage.client_keys import ClientKeyRepository

from fake_anthropic import Scenario
from proxy_helpers import MODEL, PROVIDER_KEY, Proxied, issue, proxy_config

BODY = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def proxied(make_client, fake_anthropic, home, monkeypatch) -> Proxied:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    fake, base_url = fake_anthropic
    config = Config(
        anthropic=AnthropicConfig(base_url=base_url, max_retries=0, timeout_seconds=5.0),
        keyserver=KeyserverConfig(failed_auth_limit=3, failed_auth_window_seconds=60.0),
    )
    client = await make_client(config)
    return Proxied(client, fake, await issue(client, "laptop"), home)


async def audit_events(proxied: Proxied) -> list[tuple[str, str | None]]:
    await proxied.client.app[PROXY].auth.flush()
    entries = await proxied.client.app[appkeys.AUDIT_LOG].recent()
    return [(entry.event, entry.detail) for entry in reversed(entries)]


async def post(proxied: Proxied, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    response = await proxied.client.post(
        "/v1/messages", json=BODY, headers={"anthropic-version": "2023-06-01", **headers}
    )
    return response.status, await response.json()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda key: {"x-api-key": key}, id="x-api-key"),
        pytest.param(lambda key: {"Authorization": f"Bearer {key}"}, id="bearer"),
        pytest.param(lambda key: {"x-api-key": key, "Authorization": f"Bearer {key}"}, id="both"),
        pytest.param(
            lambda key: {"x-api-key": "sk-ant-not-ours", "Authorization": f"Bearer {key}"},
            id="bearer-beside-another-credential",
        ),
    ],
)
async def test_the_key_is_read_from_either_header(proxied: Proxied, headers) -> None:  # type: ignore[no-untyped-def]
    status, _ = await post(proxied, headers(proxied.key.secret))
    assert status == 200
    assert proxied.fake.requests[0].headers["x-api-key"] == PROVIDER_KEY
    assert ("client.use", "client laptop; POST /v1/messages") in await audit_events(proxied)


async def test_the_sdk_sees_an_authentication_error(proxied: Proxied) -> None:
    async with anthropic.AsyncAnthropic(
        api_key="asg_wrong", base_url=proxied.base_url, max_retries=0
    ) as client:
        with pytest.raises(anthropic.AuthenticationError) as refused:
            await client.messages.create(**BODY)  # type: ignore[arg-type]
    assert refused.value.status_code == 401
    assert refused.value.body == {
        "type": "error",
        "error": {
            "type": "authentication_error",
            "message": "Invalid client key. Send a gateway client key in x-api-key or "
            "'Authorization: Bearer' (issue one with: agentspace-gateway clients add NAME).",
        },
    }
    assert proxied.fake.requests == []


async def test_a_missing_key_is_refused_and_audited_but_not_counted(proxied: Proxied) -> None:
    for _ in range(5):
        status, body = await post(proxied, {})
        assert status == 401
        assert body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert (await post(proxied, {"x-api-key": proxied.key.secret}))[0] == 200
    events = await audit_events(proxied)
    # One row of its own, the other four counted in one aggregated row (failed_auth.py).
    assert events.count(("client.refused", "no client key presented; POST /v1/messages")) == 1
    [(_, summary)] = [row for row in events if row[0] == "access.rate_limited"]
    assert "1 more wrong or missing credentials" in summary


async def test_wrong_keys_use_up_their_prefix_allowance_but_never_lock_out_a_valid_key(
    proxied: Proxied,
) -> None:
    for _ in range(3):
        assert (await post(proxied, {"x-api-key": "asg_guess"}))[0] == 401
    status, body = await post(proxied, {"x-api-key": "asg_guess"})
    assert status == 429
    assert body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert (await post(proxied, {"x-api-key": proxied.key.secret}))[0] == 200
    events = [event for event, _ in await audit_events(proxied)]
    assert events.count("client.refused") == 1
    assert "access.rate_limited" in events
    assert len(proxied.fake.requests) == 1  # the valid key's request, none of the guesses
    # Not a word of any key in the audit log.
    assert proxied.key.secret not in json.dumps(await audit_events(proxied))


async def test_a_revoked_key_is_refused_from_the_next_request(proxied: Proxied) -> None:
    assert (await post(proxied, {"x-api-key": proxied.key.secret}))[0] == 200
    await ClientKeyRepository(proxied.client.app[appkeys.DATABASE]).revoke("laptop")
    status, body = await post(proxied, {"x-api-key": proxied.key.secret})
    assert status == 401
    assert "client key of laptop was revoked at" in body["error"]["message"]  # type: ignore[index]


async def test_an_expired_key_is_refused(proxied: Proxied) -> None:
    repository = ClientKeyRepository(proxied.client.app[appkeys.DATABASE])
    old = await repository.issue("old", expires_at="2001-01-01T00:00:00.000Z")
    status, body = await post(proxied, {"Authorization": f"Bearer {old.secret}"})
    assert status == 401
    assert "expired at 2001-01-01T00:00:00.000Z" in body["error"]["message"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"{not json", 400, "The request body is not valid JSON"),
        (b"[1, 2]", 400, "The request body must be a JSON object."),
        (b'{"max_tokens": 1}', 400, "model: Field required"),
        (b'{"model": 5}', 400, "model: Field required"),
        (b'{"model": "m", "pad": "' + b"x" * 2000 + b'"}', 413, "proxy.max_body_bytes"),
    ],
)
async def test_a_body_the_gateway_cannot_forward_gets_anthropics_envelope(
    make_client, fake_anthropic, monkeypatch, data: bytes, status: int, message: str
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    fake, base_url = fake_anthropic
    client = await make_client(proxy_config(base_url, max_body_bytes=1024))
    key = await issue(client, "laptop")
    response = await client.post("/v1/messages", data=data, headers={"x-api-key": key.secret})
    assert response.status == status
    body = await response.json()
    assert body["type"] == "error"
    assert message in body["error"]["message"]
    assert fake.requests == []


@pytest.mark.parametrize("pad", [100, 2000])
async def test_a_body_sent_in_pieces_is_forwarded_whole_or_refused_past_the_limit(
    make_client, fake_anthropic, monkeypatch, pad: int
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    fake, base_url = fake_anthropic
    client = await make_client(proxy_config(base_url, max_body_bytes=1024))
    key = await issue(client, "laptop")
    messages = [{"role": "user", "content": "hi " + "x" * pad}]
    body = json.dumps({**BODY, "messages": messages}).encode()
    fake.enqueue(Scenario(input_tokens=10, output_tokens=2))

    async def pieces():  # type: ignore[no-untyped-def]
        # Chunked, no Content-Length: the gateway cannot know the size before reading.
        for start in range(0, len(body), 300):
            yield body[start : start + 300]
            await asyncio.sleep(0.01)

    headers = {"x-api-key": key.secret, "anthropic-version": "2023-06-01"}
    response = await client.post("/v1/messages", data=pieces(), headers=headers)
    if pad < 1024:
        assert response.status == 200
        assert [r.body for r in fake.message_requests] == [body]
    else:
        assert response.status == 413
        assert "proxy.max_body_bytes" in (await response.json())["error"]["message"]
        assert fake.requests == []


async def test_without_a_provider_key_the_client_is_told_what_to_run(
    make_client, fake_anthropic
) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = fake_anthropic
    client = await make_client(proxy_config(base_url))
    key = await issue(client, "laptop")
    response = await client.post("/v1/messages", json=BODY, headers={"x-api-key": key.secret})
    assert response.status == 500
    assert "agentspace-gateway keys add anthropic" in (await response.json())["error"]["message"]
    assert fake.requests == []
