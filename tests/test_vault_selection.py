"""open_vault: which store each vault.backend setting gets, and what it says when none fits."""

from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from agentspace_gateway.vault import (
    PASSPHRASE_ENV,
    VAULT_FILE_NAME,
    EncryptedFileStore,
    KeyringStore,
    VaultError,
    VaultUnavailableError,
    open_vault,
)

from memory_keyring import MemoryKeyring, PlaintextKeyring

WITH_PASSPHRASE = {PASSPHRASE_ENV: "a long passphrase for selection tests"}


@pytest.fixture
def vault_home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_auto_prefers_a_secure_keychain_even_with_a_passphrase(vault_home: Path) -> None:
    keychain = MemoryKeyring()
    vault = open_vault("auto", vault_home, WITH_PASSPHRASE, keychain=keychain)
    assert vault.backend_name == "keyring"
    assert isinstance(vault.store, KeyringStore)
    assert vault.store.backend is keychain


def test_auto_does_not_move_to_an_existing_vault_file(vault_home: Path) -> None:
    open_vault("file", vault_home, WITH_PASSPHRASE).ensure_token()
    vault = open_vault("auto", vault_home, WITH_PASSPHRASE, keychain=MemoryKeyring())
    assert vault.backend_name == "keyring"
    assert vault.get_token() is None


@pytest.mark.parametrize("keychain", [fail.Keyring(), PlaintextKeyring()], ids=["none", "plain"])
def test_auto_falls_back_to_the_file_when_a_passphrase_is_set(
    vault_home: Path, keychain: KeyringBackend
) -> None:
    vault = open_vault("auto", vault_home, WITH_PASSPHRASE, keychain=keychain)
    assert vault.backend_name == "file"
    assert isinstance(vault.store, EncryptedFileStore)
    assert vault.store.path == vault_home / VAULT_FILE_NAME


@pytest.mark.parametrize("environ", [{}, {PASSPHRASE_ENV: ""}], ids=["unset", "empty"])
def test_auto_with_nothing_usable_says_how_to_set_one_up(
    vault_home: Path, environ: dict[str, str]
) -> None:
    with pytest.raises(VaultUnavailableError) as caught:
        open_vault("auto", vault_home, environ, keychain=fail.Keyring())
    message = str(caught.value)
    assert message.startswith("No secure credential store is available: ")
    assert "no OS keychain" in message
    assert f"Set {PASSPHRASE_ENV} to a long passphrase" in message
    assert str(vault_home / VAULT_FILE_NAME) in message
    assert 'vault.backend = "keyring"' in message
    assert "already exists" not in message


def test_auto_names_a_refused_plaintext_keyring(vault_home: Path) -> None:
    with pytest.raises(VaultUnavailableError, match="plain text"):
        open_vault("auto", vault_home, {}, keychain=PlaintextKeyring())


def test_a_missing_passphrase_for_an_existing_file_is_pointed_out(vault_home: Path) -> None:
    open_vault("file", vault_home, WITH_PASSPHRASE).ensure_token()
    for backend in ("auto", "file"):
        with pytest.raises(VaultUnavailableError, match="passphrase it was created with"):
            open_vault(backend, vault_home, {}, keychain=fail.Keyring())


def test_keyring_backend_uses_a_secure_keychain(vault_home: Path) -> None:
    vault = open_vault("keyring", vault_home, {}, keychain=MemoryKeyring())
    assert vault.backend_name == "keyring"


@pytest.mark.parametrize("environ", [{}, WITH_PASSPHRASE], ids=["no-passphrase", "passphrase"])
def test_keyring_backend_never_falls_back_to_the_file(
    vault_home: Path, environ: dict[str, str]
) -> None:
    with pytest.raises(VaultUnavailableError) as caught:
        open_vault("keyring", vault_home, environ, keychain=fail.Keyring())
    message = str(caught.value)
    assert 'vault.backend is "keyring"' in message
    assert "no OS keychain" in message
    assert 'vault.backend = "file"' in message
    assert PASSPHRASE_ENV in message


def test_file_backend_needs_a_passphrase(vault_home: Path) -> None:
    with pytest.raises(VaultUnavailableError) as caught:
        open_vault("file", vault_home, {}, keychain=MemoryKeyring())
    message = str(caught.value)
    assert f'vault.backend is "file", but {PASSPHRASE_ENV} is not set' in message
    assert str(vault_home / VAULT_FILE_NAME) in message


def test_file_backend_does_not_consult_the_keychain(
    vault_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_keychain_please() -> KeyringBackend:
        raise AssertionError("the keychain was consulted")

    monkeypatch.setattr(keyring, "get_keyring", no_keychain_please)
    vault = open_vault("file", vault_home, WITH_PASSPHRASE)
    assert vault.backend_name == "file"


def test_the_system_keychain_comes_from_keyring(
    vault_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = MemoryKeyring()
    monkeypatch.setattr(keyring, "get_keyring", lambda: system)
    vault = open_vault("auto", vault_home, {})
    assert isinstance(vault.store, KeyringStore)
    assert vault.store.backend is system


def test_a_misconfigured_keyring_is_explained(
    vault_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> KeyringBackend:
        raise ModuleNotFoundError("No module named 'keyrings.missing'")

    monkeypatch.setattr(keyring, "get_keyring", broken)
    with pytest.raises(VaultUnavailableError, match="PYTHON_KEYRING_BACKEND"):
        open_vault("auto", vault_home, WITH_PASSPHRASE)


def test_the_passphrase_is_read_from_the_process_environment_by_default(
    vault_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "from the real environment")
    assert open_vault("file", vault_home).backend_name == "file"


def test_an_unknown_backend_setting_lists_the_choices(vault_home: Path) -> None:
    with pytest.raises(VaultError) as caught:
        open_vault("vault", vault_home, WITH_PASSPHRASE)
    assert str(caught.value) == 'Unknown vault.backend "vault". Use one of: auto, keyring, file.'


def test_opening_is_cheap_and_creates_nothing(vault_home: Path) -> None:
    open_vault("file", vault_home, WITH_PASSPHRASE)
    assert not vault_home.exists()
