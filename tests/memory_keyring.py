"""Keyring backends for tests: an in-memory keychain, and stand-ins for insecure ones.

Every class here sets `viable = False`. keyring registers each KeyringBackend subclass the
moment it is defined and would otherwise offer it to any later `keyring.get_keyring()` in the
same test session; the vault does not look at `viable`, so the classes still work when a test
hands them over explicitly.
"""

from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    priority: float = 1  # keyring's threshold for a recommended backend
    viable = False

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.passwords[(service, username)]
        except KeyError:
            raise PasswordDeleteError("not found") from None


class LockedKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("the login keychain is locked")


class PlaintextKeyring(MemoryKeyring):
    """Named like keyrings.alt.file.PlaintextKeyring, which is not installed here."""


class RenamedPlaintext(PlaintextKeyring):
    """A subclass of a plain-text backend is no safer for its name."""


class LowPriorityKeyring(MemoryKeyring):
    priority = 0.5  # keyrings.alt territory: usable, not recommended
