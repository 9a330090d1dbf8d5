"""Which store holds the credentials: `vault.backend = auto | keyring | file`."""

import os
from collections.abc import Mapping
from pathlib import Path

import keyring
from keyring.backend import KeyringBackend

from agentspace_gateway.vault.credentials import CredentialVault
from agentspace_gateway.vault.errors import VaultError, VaultUnavailableError
from agentspace_gateway.vault.file_store import (
    PASSPHRASE_ENV,
    VAULT_FILE_NAME,
    EncryptedFileStore,
)
from agentspace_gateway.vault.keychain import KeyringStore, refusal_reason, secure_keychain

VAULT_BACKENDS: tuple[str, ...] = ("auto", "keyring", "file")


def open_vault(
    backend: str,
    home: Path,
    environ: Mapping[str, str] = os.environ,
    *,
    keychain: KeyringBackend | None = None,
) -> CredentialVault:
    """Open the configured store. Cheap: nothing is decrypted until the first read.

    `auto` prefers a secure OS keychain, then the encrypted file when a passphrase is set. An
    existing vault.enc does not pull `auto` to the file: keys are never moved between stores
    behind the user's back. `keychain` replaces `keyring.get_keyring()`, for tests.
    """
    if backend not in VAULT_BACKENDS:
        raise VaultError(
            f'Unknown vault.backend "{backend}". Use one of: {", ".join(VAULT_BACKENDS)}.'
        )
    vault_path = home / VAULT_FILE_NAME
    passphrase = environ.get(PASSPHRASE_ENV, "")
    if backend != "file":
        candidate = keychain if keychain is not None else _system_keychain()
        chosen = secure_keychain(candidate)
        if chosen is not None:
            return CredentialVault(KeyringStore(chosen))
        reason = refusal_reason(candidate) or "no secure OS keychain was found"
        if backend == "keyring":
            raise VaultUnavailableError(
                f'vault.backend is "keyring", but no secure OS keychain is available: '
                f"{reason}. Unlock or install one (macOS Keychain, Windows Credential "
                "Manager, Secret Service or KWallet on Linux), or keep keys in an encrypted "
                f'file instead: set vault.backend = "file" and {PASSPHRASE_ENV} to a long '
                "passphrase."
            )
        if not passphrase:
            raise VaultUnavailableError(
                f"No secure credential store is available: {reason} and {PASSPHRASE_ENV} "
                f"is not set. Set {PASSPHRASE_ENV} to a long passphrase to keep keys in an "
                f'encrypted file ({vault_path}), or set vault.backend = "keyring" on a '
                "machine with a keychain." + _existing_file_hint(vault_path)
            )
    elif not passphrase:
        raise VaultUnavailableError(
            f'vault.backend is "file", but {PASSPHRASE_ENV} is not set. Set it to a long '
            f"passphrase to keep keys encrypted in {vault_path}, or set "
            'vault.backend = "auto" to use the OS keychain when there is one.'
            + _existing_file_hint(vault_path)
        )
    return CredentialVault(EncryptedFileStore(vault_path, passphrase))


def _system_keychain() -> KeyringBackend:
    try:
        return keyring.get_keyring()
    except Exception as exc:  # keyring raises whatever importing a misnamed backend raises
        raise VaultUnavailableError(
            f"keyring could not load the backend it was configured with ({exc}). Check "
            "PYTHON_KEYRING_BACKEND and keyring's keyringrc.cfg, or set "
            f'vault.backend = "file" and {PASSPHRASE_ENV}.'
        ) from exc


def _existing_file_hint(vault_path: Path) -> str:
    if not vault_path.exists():
        return ""
    return (
        f" A vault already exists at {vault_path}: set {PASSPHRASE_ENV} to the passphrase "
        "it was created with."
    )
