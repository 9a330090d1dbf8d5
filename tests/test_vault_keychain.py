"""Which keyring backends count as a secure keychain, and how keychain failures read."""

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.backends.chainer import ChainerBackend
from keyring.compat import properties
from keyring.errors import PasswordSetError

from agentspace_gateway.vault import (
    CredentialVault,
    KeyringStore,
    VaultLockedError,
    VaultUnavailableError,
    is_secure_keychain,
    refusal_reason,
    secure_keychain,
)

from memory_keyring import (
    LockedKeyring,
    LowPriorityKeyring,
    MemoryKeyring,
    PlaintextKeyring,
    RenamedPlaintext,
)


class UnusableKeyring(MemoryKeyring):
    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("no D-Bus session bus")


class EchoingKeyring(MemoryKeyring):
    """A backend careless enough to put the password in its error."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError(f"refused to store {password}")


def chainer_of(*backends: KeyringBackend) -> ChainerBackend:
    # keyring computes a chainer's backends from every installed backend; fix them instead.
    chain = type("FixedChainer", (ChainerBackend,), {"viable": False, "backends": backends})
    return chain()  # type: ignore[no-any-return]


def test_a_recommended_keychain_is_secure() -> None:
    backend = MemoryKeyring()
    assert refusal_reason(backend) is None
    assert is_secure_keychain(backend)
    assert secure_keychain(backend) is backend


@pytest.mark.parametrize(
    ("backend", "reason"),
    [
        pytest.param(fail.Keyring(), "found no OS keychain", id="fail"),
        pytest.param(null.Keyring(), "null backend", id="null"),
        pytest.param(
            PlaintextKeyring(), "PlaintextKeyring keeps secrets in plain text", id="plain"
        ),
        pytest.param(RenamedPlaintext(), "RenamedPlaintext keeps secrets in plain", id="subclass"),
        pytest.param(LowPriorityKeyring(), "not a keychain keyring recommends", id="low-priority"),
        pytest.param(UnusableKeyring(), "no D-Bus session bus", id="not-viable"),
        pytest.param(ChainerBackend(), "found no OS keychain", id="empty-chainer"),
        pytest.param(chainer_of(), "found no OS keychain", id="chainer-of-nothing"),
        pytest.param(
            chainer_of(PlaintextKeyring(), LowPriorityKeyring()),
            "only keychains that are not secure",
            id="chainer-of-insecure",
        ),
    ],
)
def test_insecure_keyrings_are_refused_with_a_reason(backend: KeyringBackend, reason: str) -> None:
    assert reason in (refusal_reason(backend) or "")
    assert not is_secure_keychain(backend)
    assert secure_keychain(backend) is None


def test_a_chainer_is_resolved_to_its_best_secure_backend() -> None:
    # keyring would read through the plain-text one too; the vault talks to the secure one only.
    plaintext, secure = PlaintextKeyring(), MemoryKeyring()
    chain = chainer_of(plaintext, secure)
    assert refusal_reason(chain) is None
    assert secure_keychain(chain) is secure


def test_keyring_store_round_trip() -> None:
    backend = MemoryKeyring()
    store = KeyringStore(backend)
    assert store.name == "keyring"
    assert store.get("provider:openai") is None
    store.set("provider:openai", "sk-round-trip-1234")
    assert store.get("provider:openai") == "sk-round-trip-1234"
    assert store.delete("provider:openai") is True
    assert store.delete("provider:openai") is False
    assert store.get("provider:openai") is None


def test_a_locked_keychain_says_to_unlock_it() -> None:
    vault = CredentialVault(KeyringStore(LockedKeyring()))
    with pytest.raises(VaultLockedError, match="Unlock the keychain"):
        vault.get_key("anthropic")


def test_a_keychain_error_never_echoes_the_secret() -> None:
    secret = "sk-echo-me-not-0123456789"
    vault = CredentialVault(KeyringStore(EchoingKeyring()))
    with pytest.raises(VaultUnavailableError) as caught:
        vault.add_key("openai", secret)
    assert "refused to store" in str(caught.value)
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
