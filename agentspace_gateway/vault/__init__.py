"""Where provider API keys and the key server's token live: never in plain text.

`open_vault` picks the OS keychain or an encrypted file; `CredentialVault` is what the rest
of the gateway talks to.
"""

from agentspace_gateway.vault.credentials import TOKEN_ITEM, CredentialVault, provider_item
from agentspace_gateway.vault.envelope import DEFAULT_SCRYPT_N
from agentspace_gateway.vault.errors import (
    InvalidKeyError,
    KeyExistsError,
    KeyMissingError,
    UnknownProviderError,
    VaultError,
    VaultLockedError,
    VaultUnavailableError,
)
from agentspace_gateway.vault.file_store import (
    PASSPHRASE_ENV,
    VAULT_FILE_NAME,
    EncryptedFileStore,
)
from agentspace_gateway.vault.keychain import (
    SERVICE_NAME,
    KeyringStore,
    is_secure_keychain,
    refusal_reason,
    secure_keychain,
)
from agentspace_gateway.vault.keys import MAX_KEY_LENGTH, clean_key, key_fingerprint
from agentspace_gateway.vault.providers import PROVIDERS, check_provider
from agentspace_gateway.vault.selection import VAULT_BACKENDS, open_vault
from agentspace_gateway.vault.stores import SecretStore

__all__ = [
    "DEFAULT_SCRYPT_N",
    "MAX_KEY_LENGTH",
    "PASSPHRASE_ENV",
    "PROVIDERS",
    "SERVICE_NAME",
    "TOKEN_ITEM",
    "VAULT_BACKENDS",
    "VAULT_FILE_NAME",
    "CredentialVault",
    "EncryptedFileStore",
    "InvalidKeyError",
    "KeyExistsError",
    "KeyMissingError",
    "KeyringStore",
    "SecretStore",
    "UnknownProviderError",
    "VaultError",
    "VaultLockedError",
    "VaultUnavailableError",
    "check_provider",
    "clean_key",
    "is_secure_keychain",
    "key_fingerprint",
    "open_vault",
    "provider_item",
    "refusal_reason",
    "secure_keychain",
]
