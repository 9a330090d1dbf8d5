"""The OS keychain as a SecretStore, through the `keyring` library, and which keychains count.

`keyring` falls back quietly to backends that keep nothing (fail, null) or keep secrets in
plain text (keyrings.alt); a gateway that promises keys are never in plain text must refuse
those rather than use them. `refusal_reason` is the one rule for that, used both to choose
the store and to explain a refusal.
"""

from typing import ClassVar

import attrs
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.backends.chainer import ChainerBackend
from keyring.errors import KeyringError, KeyringLocked, PasswordDeleteError

from agentspace_gateway.redaction import redact, register_secret
from agentspace_gateway.vault.errors import VaultError, VaultLockedError, VaultUnavailableError

SERVICE_NAME = "agentspace-gateway"

# keyring's own threshold for a "recommended" backend (keyring.core.recommended). Everything
# below it is a fallback keyring ships or keyrings.alt adds: plain files, prompts on stdin.
_RECOMMENDED_PRIORITY = 1


def refusal_reason(candidate: KeyringBackend) -> str | None:
    """Why `candidate` is no secure place for credentials, or None when it is one."""
    if isinstance(candidate, ChainerBackend):
        chained = list(type(candidate).backends)
        if any(_single_refusal_reason(backend) is None for backend in chained):
            return None
        if not chained:
            return "keyring found no OS keychain"
        names = ", ".join(_qualified_name(backend) for backend in chained)
        return f"keyring found only keychains that are not secure ({names})"
    return _single_refusal_reason(candidate)


def is_secure_keychain(candidate: KeyringBackend) -> bool:
    return refusal_reason(candidate) is None


def secure_keychain(candidate: KeyringBackend) -> KeyringBackend | None:
    """The backend to keep credentials in when `candidate` is what keyring chose, if any."""
    if isinstance(candidate, ChainerBackend):
        # The chainer writes to its first backend but reads from all of them, plain-text ones
        # included; talking to the best secure backend directly keeps those out of the loop.
        return next(
            (b for b in type(candidate).backends if _single_refusal_reason(b) is None), None
        )
    return candidate if _single_refusal_reason(candidate) is None else None


def _single_refusal_reason(backend: KeyringBackend) -> str | None:
    if isinstance(backend, fail.Keyring):
        return "keyring found no OS keychain"
    if isinstance(backend, null.Keyring):
        return "keyring is set to its null backend, which stores nothing"
    if isinstance(backend, ChainerBackend):
        return "a keyring chainer inside another chainer is not supported"
    if _is_plaintext(backend):
        return f"{_qualified_name(backend)} keeps secrets in plain text"
    try:
        priority = float(type(backend).priority)
    except Exception as exc:  # keyring signals "not usable here" by raising from priority
        return f"{_qualified_name(backend)} is not usable here ({exc})"
    if priority < _RECOMMENDED_PRIORITY:
        return (
            f"{_qualified_name(backend)} is not a keychain keyring recommends "
            f"(priority {priority:g})"
        )
    return None


def _is_plaintext(backend: KeyringBackend) -> bool:
    # A subclass of a plain-text backend is still plain text, whatever it is called.
    return any(
        "plaintext" in f"{cls.__module__}.{cls.__qualname__}".lower()
        for cls in type(backend).__mro__
    )


def _qualified_name(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


@attrs.frozen
class KeyringStore:
    """Items live in the OS keychain under service "agentspace-gateway", item as username."""

    backend: KeyringBackend
    name: ClassVar[str] = "keyring"

    def get(self, item: str) -> str | None:
        try:
            value = self.backend.get_password(SERVICE_NAME, item)
        except KeyringError as exc:
            raise self._failure("read", item, exc) from None
        if value is not None:
            register_secret(value)
        return value

    def set(self, item: str, value: str) -> None:
        register_secret(value)
        try:
            self.backend.set_password(SERVICE_NAME, item, value)
        except KeyringError as exc:
            raise self._failure("store", item, exc) from None

    def delete(self, item: str) -> bool:
        if self.get(item) is None:
            return False
        try:
            self.backend.delete_password(SERVICE_NAME, item)
        except PasswordDeleteError as exc:
            # Gone between the read and the delete: someone else removed it first.
            if self.get(item) is None:
                return False
            raise self._failure("remove", item, exc) from None
        except KeyringError as exc:
            raise self._failure("remove", item, exc) from None
        return True

    def _failure(self, action: str, item: str, exc: KeyringError) -> VaultError:
        # The backend's own words help most, redacted in case a backend echoed the value; the
        # original exception is not chained, since its message may carry that value verbatim.
        detail = redact(str(exc)) or type(exc).__name__
        where = f"the OS keychain ({_qualified_name(self.backend)})"
        if isinstance(exc, KeyringLocked):
            return VaultLockedError(
                f"Could not {action} {item!r} in {where}: it is locked ({detail}). "
                "Unlock the keychain and try again."
            )
        return VaultUnavailableError(
            f"Could not {action} {item!r} in {where}: {detail}. Check that the keychain is "
            'running and unlocked, or set vault.backend = "file" with '
            "AGENTSPACE_VAULT_PASSPHRASE to use an encrypted file instead."
        )
