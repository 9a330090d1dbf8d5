"""proxy.passthrough_credentials: a caller's own Anthropic credential goes upstream unchanged,
and the request is metered all the same."""

import pytest

from agentspace_gateway import appkeys
from agentspace_gateway.storage.client_keys import ClientKeyRepository

from fake_anthropic import Scenario
from proxy_helpers import (
    INPUT_NANOS,
    MODEL,
    OUTPUT_NANOS,
    PROVIDER_KEY,
    Proxied,
    issue,
    proxy_config,
)

BODY = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
OWN_KEY = "sk-ant-api03-the-callers-own-key"
OAUTH = "sk-ant-oat01-a-subscription-token"


async def proxied_with(make_client, fake_anthropic, home, monkeypatch, on: bool) -> Proxied:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    fake, base_url = fake_anthropic
    client = await make_client(proxy_config(base_url, passthrough_credentials=on))
    return Proxied(client, fake, await issue(client, "laptop"), home)


@pytest.mark.parametrize(
    ("credential", "received"),
    [
        ({"x-api-key": OWN_KEY}, {"x-api-key": OWN_KEY}),
        ({"Authorization": f"Bearer {OAUTH}"}, {"authorization": f"Bearer {OAUTH}"}),
    ],
)
async def test_the_callers_credential_goes_upstream_unchanged_and_is_metered(
    make_client, fake_anthropic, home, monkeypatch, credential, received
) -> None:  # type: ignore[no-untyped-def]
    proxied = await proxied_with(make_client, fake_anthropic, home, monkeypatch, True)
    proxied.fake.enqueue(Scenario(input_tokens=100, output_tokens=10))
    response = await proxied.client.post(
        "/v1/messages", json=BODY, headers={"anthropic-version": "2023-06-01", **credential}
    )
    assert response.status == 200
    (sent,) = proxied.fake.requests
    assert {name: sent.headers.get(name) for name in received} == received
    assert PROVIDER_KEY not in sent.headers.values()
    assert response.headers["x-agentspace-cost-nanos"] == str(100 * INPUT_NANOS + 10 * OUTPUT_NANOS)
    row = proxied.usage_row(response.headers["x-agentspace-request-id"])
    clients = await ClientKeyRepository(proxied.client.app[appkeys.DATABASE]).list_all()
    assert [c.name for c in clients if c.id == row["client_key_id"]] == ["passthrough"]


async def test_a_gateway_key_still_uses_the_provider_key(
    make_client, fake_anthropic, home, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    proxied = await proxied_with(make_client, fake_anthropic, home, monkeypatch, True)
    response = await proxied.client.post(
        "/v1/messages",
        json=BODY,
        headers={"anthropic-version": "2023-06-01", "x-api-key": proxied.key.secret},
    )
    assert response.status == 200
    assert proxied.fake.requests[0].headers["x-api-key"] == PROVIDER_KEY
    # A wrong gateway key is refused, not passed through as if it were Anthropic's.
    response = await proxied.client.post(
        "/v1/messages", json=BODY, headers={"x-api-key": "asg_not-a-real-key"}
    )
    assert response.status == 401


async def test_off_by_default(make_client, fake_anthropic, home, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    proxied = await proxied_with(make_client, fake_anthropic, home, monkeypatch, False)
    response = await proxied.client.post("/v1/messages", json=BODY, headers={"x-api-key": OWN_KEY})
    assert response.status == 401
    assert proxied.fake.requests == []
