"""The command line in process: keys, token, audit and migrate against a real home."""

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import keyring
import pytest

from agentspace_gateway.cli import main
from agentspace_gateway.home import Home
from agentspace_gateway.storage import available_migrations

from memory_keyring import MemoryKeyring

ANTHROPIC_KEY = "sk-ant-api03-" + "Zq9" * 30
OPENAI_KEY = "sk-proj-" + "Lm4" * 30


def run(
    argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str = ""
) -> tuple[int, str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def every_byte_under(root: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file())


def test_key_lifecycle_on_the_file_vault(home: Home, passphrase: str, capsys) -> None:
    assert run(["keys", "add", "anthropic"], capsys, ANTHROPIC_KEY + "\n")[:2] == (
        0,
        "anthropic key stored\n",
    )

    status, out, _ = run(["keys", "list"], capsys)
    assert status == 0
    assert "vault backend: file" in out
    assert "anthropic  stored  sha256:" in out
    assert "openai     not set" in out
    assert ANTHROPIC_KEY not in out

    assert run(["keys", "update", "anthropic"], capsys, OPENAI_KEY)[0] == 0
    assert run(["keys", "remove", "anthropic"], capsys)[:2] == (0, "anthropic key removed\n")
    assert "anthropic  not set" in run(["keys", "list"], capsys)[1]

    events = [
        json.loads(line)["event"] for line in run(["audit", "--json"], capsys)[1].splitlines()
    ]
    assert events == ["key.remove", "key.update", "key.add"]


@pytest.mark.parametrize(
    ("argv", "stdin", "status", "message"),
    [
        (["keys", "add", "mistral"], "k" * 40, 2, "anthropic, openai, ollama"),
        (["keys", "add", "anthropic"], "", 2, "no key given"),
        (["keys", "add", "anthropic"], "two words here", 1, ""),
        (["keys", "update", "openai"], "k" * 40, 1, "keys add"),
        (["keys", "remove", "openai"], "", 1, "keys add"),
    ],
)
def test_key_commands_refuse_clearly(
    home: Home, passphrase: str, capsys, argv: list[str], stdin: str, status: int, message: str
) -> None:
    got, _, err = run(argv, capsys, stdin)
    assert got == status
    assert message in err
    assert err.startswith("agentspace-gateway:")


def test_adding_twice_says_to_update(home: Home, passphrase: str, capsys) -> None:
    run(["keys", "add", "openai"], capsys, OPENAI_KEY)
    status, _, err = run(["keys", "add", "openai"], capsys, OPENAI_KEY)
    assert status == 1
    assert "keys update" in err


def test_without_any_vault_the_error_says_how_to_set_one_up(home: Home, capsys) -> None:
    status, _, err = run(["keys", "add", "anthropic"], capsys, ANTHROPIC_KEY)
    assert status == 1
    assert "AGENTSPACE_VAULT_PASSPHRASE" in err


def test_wrong_passphrase_is_refused_and_the_vault_untouched(
    home: Home, passphrase: str, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(["keys", "add", "anthropic"], capsys, ANTHROPIC_KEY)
    vault_files = [p for p in home.root.iterdir() if p.name.startswith("vault")]
    before = {p: p.read_bytes() for p in vault_files}
    monkeypatch.setenv("AGENTSPACE_VAULT_PASSPHRASE", "not the passphrase at all")

    status, _, err = run(["keys", "add", "openai"], capsys, OPENAI_KEY)

    assert status == 1
    assert "passphrase" in err.lower()
    assert {p: p.read_bytes() for p in vault_files} == before


def test_token_show_and_rotate(home: Home, passphrase: str, capsys) -> None:
    status, first, _ = run(["token", "show"], capsys)
    assert status == 0
    token = first.strip()
    assert len(token) >= 43
    assert run(["token", "show"], capsys)[1].strip() == token
    rotated = run(["token", "rotate"], capsys)[1].strip()
    assert rotated != token
    assert run(["token", "show"], capsys)[1].strip() == rotated
    events = [
        json.loads(line)["event"] for line in run(["audit", "--json"], capsys)[1].splitlines()
    ]
    assert events == ["token.show", "token.rotate", "token.show", "token.show", "token.create"]


def test_no_secret_lies_in_plain_text_under_the_home(home: Home, passphrase: str, capsys) -> None:
    run(["keys", "add", "anthropic"], capsys, ANTHROPIC_KEY)
    run(["keys", "add", "openai"], capsys, OPENAI_KEY)
    token = run(["token", "show"], capsys)[1].strip()
    rotated = run(["token", "rotate"], capsys)[1].strip()
    run(["audit"], capsys)

    stored = every_byte_under(home.root)
    assert len(stored) > 0
    for secret in (ANTHROPIC_KEY, OPENAI_KEY, token, rotated, passphrase):
        assert secret.encode() not in stored
    vault_file = next(p for p in home.root.iterdir() if p.name.startswith("vault"))
    assert vault_file.stat().st_mode & 0o777 == 0o600
    assert home.root.stat().st_mode & 0o777 == 0o700


def test_keys_on_a_keychain_backend(home: Home, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    keychain = MemoryKeyring()
    keyring.set_keyring(keychain)
    monkeypatch.setenv("AGENTSPACE_VAULT_BACKEND", "keyring")

    assert run(["keys", "add", "ollama"], capsys, "ollama-local-key-123456")[0] == 0
    assert "vault backend: keyring" in run(["keys", "list"], capsys)[1]
    assert "ollama-local-key-123456" in keychain.passwords.values()
    assert not any(p.name.startswith("vault") for p in home.root.iterdir())


def test_audit_filters_and_prints_a_table(home: Home, passphrase: str, capsys) -> None:
    run(["keys", "add", "anthropic"], capsys, ANTHROPIC_KEY)
    run(["keys", "add", "openai"], capsys, OPENAI_KEY)

    status, out, _ = run(["audit", "--provider", "openai", "--limit", "5"], capsys)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("time")
    assert len(lines) == 2
    assert "key.add" in lines[1]
    assert "openai" in lines[1]
    assert "local user" in lines[1]
    with pytest.raises(SystemExit) as usage_error:
        run(["audit", "--limit", "0"], capsys)
    assert usage_error.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_migrate_status_then_migrate(home: Home, capsys) -> None:
    status, out, _ = run(["migrate", "--status"], capsys)
    assert status == 0
    assert "pending  0001_initial" in out

    shipped = ", ".join(migration.name for migration in available_migrations())
    assert shipped.startswith("0001_initial, 0002_stream_outcomes")
    assert run(["migrate"], capsys)[:2] == (0, f"applied: {shipped}\n")
    assert run(["migrate"], capsys)[1] == "database is up to date\n"
    status, out, _ = run(["migrate", "--status"], capsys)
    assert "applied  0001_initial" in out
    assert "pending" not in out


def test_migrate_refuses_a_database_from_a_newer_version(home: Home, capsys) -> None:
    run(["migrate"], capsys)
    with sqlite3.connect(home.database) as connection:
        connection.execute(
            "INSERT INTO schema_migrations (name, applied_at) VALUES ('0999_future', 'x')"
        )
    status, out, _ = run(["migrate", "--status"], capsys)
    assert status == 1
    assert "unknown  0999_future" in out
    status, _, err = run(["migrate"], capsys)
    assert status == 1
    assert "0999_future" in err


def test_the_cli_starts_without_importing_the_provider_sdks() -> None:
    # Each command is a process of its own: the SDKs' seconds of import are paid only by the
    # commands that talk to a provider (serve, chat), not by keys, clients or budgets.
    probe = (
        "import sys, agentspace_gateway.cli; "
        "print(sorted({'anthropic', 'openai'} & set(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]"
