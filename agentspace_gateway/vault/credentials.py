"""CredentialVault: provider API keys and the key server's bearer token, in a SecretStore.

Synchronous on purpose: keychains may block on a prompt and the file store runs scrypt, so
async callers hand these calls to a thread (`asyncio.to_thread`).
"""

import secrets

import attrs

from agentspace_gateway.vault import keys
from agentspace_gateway.vault.errors import KeyExistsError, KeyMissingError
from agentspace_gateway.vault.providers import PROVIDERS, check_provider
from agentspace_gateway.vault.stores import SecretStore

TOKEN_ITEM = "keyserver-token"  # noqa: S105 (the item's name, not a token)
# 32 random bytes: a 256-bit token, 43 URL-safe characters.
_TOKEN_BYTES = 32


def provider_item(provider: str) -> str:
    return f"provider:{provider}"


@attrs.frozen
class CredentialVault:
    store: SecretStore

    @property
    def backend_name(self) -> str:
        return self.store.name

    def get_key(self, provider: str) -> str | None:
        return self.store.get(provider_item(check_provider(provider)))

    def add_key(self, provider: str, key: str) -> None:
        name = check_provider(provider)
        clean = keys.clean_key(name, key)
        if self.store.get(provider_item(name)) is not None:
            raise KeyExistsError(
                f"A key for {name} is already stored. To replace it, run: "
                f"agentspace-gateway keys update {name}"
            )
        self.store.set(provider_item(name), clean)

    def update_key(self, provider: str, key: str) -> None:
        name = check_provider(provider)
        clean = keys.clean_key(name, key)
        if self.store.get(provider_item(name)) is None:
            raise KeyMissingError(
                f"No key for {name} is stored, so there is nothing to update. To store one, run: "
                f"agentspace-gateway keys add {name}"
            )
        self.store.set(provider_item(name), clean)

    def remove_key(self, provider: str) -> None:
        name = check_provider(provider)
        if not self.store.delete(provider_item(name)):
            raise KeyMissingError(
                f"No key for {name} is stored, so there is nothing to remove. To store one, "
                f"run: agentspace-gateway keys add {name}"
            )

    def stored_providers(self) -> list[str]:
        return [name for name in PROVIDERS if self.store.get(provider_item(name)) is not None]

    def key_fingerprint(self, provider: str) -> str | None:
        key = self.get_key(provider)
        return None if key is None else keys.key_fingerprint(key)

    def get_token(self) -> str | None:
        return self.store.get(TOKEN_ITEM)

    def ensure_token(self) -> tuple[str, bool]:
        """The key server's bearer token, created on first use; True when just created."""
        token = self.store.get(TOKEN_ITEM)
        if token is not None:
            return token, False
        return self.rotate_token(), True

    def rotate_token(self) -> str:
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        self.store.set(TOKEN_ITEM, token)
        return token
