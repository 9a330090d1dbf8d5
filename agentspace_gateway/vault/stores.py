"""What CredentialVault needs from a place that keeps secrets, whichever place that is."""

from typing import Protocol


class SecretStore(Protocol):
    """Named secret strings. Implementations register every value they handle for log redaction.

    Methods are synchronous and may block (a keychain prompt, scrypt); async callers run them
    in a thread.
    """

    @property
    def name(self) -> str:
        """ "keyring" or "file": what `vault.backend` would be set to for this store."""
        ...

    def get(self, item: str) -> str | None: ...

    def set(self, item: str, value: str) -> None: ...

    def delete(self, item: str) -> bool:
        """Remove the item; False when there was nothing to remove."""
        ...
