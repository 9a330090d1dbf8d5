"""Everything the vault raises. Each message says what went wrong and what to do next.

No message ever contains a key, a token or the passphrase: callers print these to terminals
and logs as they are.
"""


class VaultError(Exception):
    """Base class: catch this to handle any vault failure."""


class VaultUnavailableError(VaultError):
    """No secure place to keep credentials could be used."""


class VaultLockedError(VaultError):
    """The store exists but cannot be opened (wrong passphrase, damaged file, locked keychain)."""


class UnknownProviderError(VaultError):
    """A provider name that is not in PROVIDERS."""


class InvalidKeyError(VaultError):
    """An API key that cannot be right (empty, too long, or containing spaces or controls)."""


class KeyExistsError(VaultError):
    """`keys add` for a provider that already has a key."""


class KeyMissingError(VaultError):
    """`keys update` or `keys remove` for a provider that has no key."""
