"""The README's key-server API table says what GET /keys/{provider} really answers.

Each status is produced here against the real app, and its row in the README must name the
status and the error code (and Retry-After for 429), so the table cannot drift from the code.
"""

import asyncio
from pathlib import Path

from agentspace_gateway.config import Config, KeyserverConfig
from agentspace_gateway.vault import CredentialVault

README = Path(__file__).resolve().parent.parent / "README.md"
API_KEY = "sk-ant-api03-" + "R3adM3" * 12


def keyserver_table() -> dict[int, str]:
    """status -> its row, from the table under '## The key server API'."""
    section = README.read_text(encoding="utf-8").split("## The key server API", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows: dict[int, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows[int(cells[0])] = line
    return rows


async def raw_status(port: int, head: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode() + b"Connection: close\r\n\r\n")
        response = await asyncio.wait_for(reader.read(), 5)
        return int(response.split()[1]), response
    finally:
        writer.close()


async def test_every_answer_of_get_keys_has_its_row(make_client, vault: CredentialVault) -> None:
    vault.add_key("anthropic", API_KEY)
    limit = 2
    client = await make_client(Config(keyserver=KeyserverConfig(failed_auth_limit=limit)))
    good = {"Authorization": f"Bearer {vault.get_token()}"}
    wrong = {"Authorization": "Bearer " + "x" * 43}
    seen: dict[int, str] = {}

    for path, headers in [
        ("/keys/anthropic", good),
        ("/keys/anthropic", {}),
        ("/keys/nowhere", good),
        ("/keys/anthropic", {**good, "Host": "evil.example"}),
    ]:
        response = await client.get(path, headers=headers)
        body = await response.json()
        seen[response.status] = body.get("error", {}).get("code", "")

    port = client.server.port
    status, response = await raw_status(
        port, f"GET http://localhost:{port}/keys/anthropic HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    )
    seen[status] = "BAD_REQUEST" if b'"BAD_REQUEST"' in response else "?"

    for _ in range(limit):
        assert (await client.get("/keys/anthropic", headers=wrong)).status == 401
    limited = await client.get("/keys/anthropic", headers=wrong)
    assert "Retry-After" in limited.headers
    seen[limited.status] = (await limited.json())["error"]["code"]

    assert sorted(seen) == [200, 400, 401, 404, 421, 429]
    rows = keyserver_table()
    for status, code in seen.items():
        assert status in rows, f"README's key-server table has no {status} row"
        assert code in rows[status], (status, code, rows[status])
    assert "Retry-After" in rows[429]
