"""CredentialVault's rules, checked against both stores: add/update/remove semantics, key
validation, fingerprints, the key server token, and secrets kept out of errors and reprs."""

import hashlib
import re
from pathlib import Path

import pytest

from agentspace_gateway import redaction
from agentspace_gateway.vault import (
    MAX_KEY_LENGTH,
    PROVIDERS,
    SERVICE_NAME,
    VAULT_FILE_NAME,
    CredentialVault,
    EncryptedFileStore,
    InvalidKeyError,
    KeyExistsError,
    KeyMissingError,
    KeyringStore,
    UnknownProviderError,
    VaultError,
    check_provider,
)
from agentspace_gateway.vault.envelope import KdfParams, dump_envelope, seal

from memory_keyring import MemoryKeyring

ANTHROPIC_KEY = "sk-ant-api03-" + "Zx9" * 30 + "-test"
OPENAI_KEY = "sk-proj-" + "q7W" * 20


@pytest.fixture(params=["keyring", "file"])
def vault(request: pytest.FixtureRequest, tmp_path: Path) -> CredentialVault:
    if request.param == "keyring":
        return CredentialVault(KeyringStore(MemoryKeyring()))
    store = EncryptedFileStore(tmp_path / VAULT_FILE_NAME, "tests only passphrase", scrypt_n=2**4)
    return CredentialVault(store)


def test_backend_name_is_the_config_value(vault: CredentialVault) -> None:
    assert vault.backend_name in ("keyring", "file")
    assert vault.backend_name == vault.store.name


def test_add_update_remove(vault: CredentialVault) -> None:
    assert vault.get_key("anthropic") is None
    vault.add_key("anthropic", ANTHROPIC_KEY)
    assert vault.get_key("anthropic") == ANTHROPIC_KEY

    with pytest.raises(KeyExistsError, match="keys update anthropic"):
        vault.add_key("anthropic", OPENAI_KEY)
    assert vault.get_key("anthropic") == ANTHROPIC_KEY

    vault.update_key("anthropic", OPENAI_KEY)
    assert vault.get_key("anthropic") == OPENAI_KEY
    vault.remove_key("anthropic")
    assert vault.get_key("anthropic") is None

    with pytest.raises(KeyMissingError, match="keys add openai"):
        vault.update_key("openai", OPENAI_KEY)
    with pytest.raises(KeyMissingError, match="nothing to remove"):
        vault.remove_key("openai")
    assert vault.stored_providers() == []


def test_stored_providers_follow_the_provider_list(vault: CredentialVault) -> None:
    vault.add_key("ollama", "ollama-key-123456")
    vault.add_key("anthropic", ANTHROPIC_KEY)
    vault.ensure_token()
    assert vault.stored_providers() == ["anthropic", "ollama"]


def test_fingerprint_tells_keys_apart_without_showing_them(vault: CredentialVault) -> None:
    assert vault.key_fingerprint("openai") is None
    vault.add_key("openai", OPENAI_KEY)
    vault.add_key("anthropic", ANTHROPIC_KEY)
    fingerprint = vault.key_fingerprint("openai")

    assert fingerprint == "sha256:" + hashlib.sha256(OPENAI_KEY.encode()).hexdigest()[:12]
    assert re.fullmatch(r"sha256:[0-9a-f]{12}", fingerprint)
    assert fingerprint != vault.key_fingerprint("anthropic")


def test_surrounding_whitespace_is_trimmed(vault: CredentialVault) -> None:
    vault.add_key("openai", f"  {OPENAI_KEY}\r\n")
    assert vault.get_key("openai") == OPENAI_KEY


def test_longest_allowed_key_is_accepted(vault: CredentialVault) -> None:
    vault.add_key("openai", "k" * MAX_KEY_LENGTH)
    assert vault.get_key("openai") == "k" * MAX_KEY_LENGTH


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        pytest.param("", "is empty", id="empty"),
        pytest.param(" \t\n", "is empty", id="only-whitespace"),
        pytest.param("k" * (MAX_KEY_LENGTH + 1), "at most 4096", id="too-long"),
        pytest.param("sk-abc def-123456", "position 7", id="inner-space"),
        pytest.param("sk-abc\ndef-123456", "line break", id="newline"),
        pytest.param("sk-abc\tdef-123456", "control character", id="tab"),
        pytest.param("sk-abc\x00def-123456", "control character", id="nul"),
        pytest.param("sk-abc\x7fdef-123456", "control character", id="del"),
        pytest.param("sk-abc\u200bdef-123456", "control character", id="zero-width-space"),
        pytest.param("sk-abc\u00a0def-123456", "position 7", id="no-break-space"),
    ],
)
def test_implausible_keys_are_rejected_and_not_stored(
    vault: CredentialVault, key: str, problem: str
) -> None:
    with pytest.raises(InvalidKeyError, match=problem) as caught:
        vault.add_key("openai", key)
    assert vault.get_key("openai") is None
    vault.add_key("openai", OPENAI_KEY)
    with pytest.raises(InvalidKeyError):
        vault.update_key("openai", key)
    assert vault.get_key("openai") == OPENAI_KEY
    if key.strip():
        assert key.strip() not in str(caught.value)
        assert key.strip() not in repr(caught.value)


def test_unknown_provider_names_the_valid_ones(vault: CredentialVault) -> None:
    with pytest.raises(UnknownProviderError) as caught:
        vault.add_key("gemini", OPENAI_KEY)
    message = str(caught.value)
    assert '"gemini"' in message
    assert all(provider in message for provider in PROVIDERS)
    for call in (vault.get_key, vault.remove_key, vault.key_fingerprint):
        with pytest.raises(UnknownProviderError):
            call("gemini")


def test_a_key_given_as_the_provider_name_is_not_echoed() -> None:
    with pytest.raises(UnknownProviderError) as caught:
        check_provider(OPENAI_KEY)
    assert OPENAI_KEY.lower() not in str(caught.value).lower()
    assert "anthropic, openai, ollama" in str(caught.value)


def test_provider_names_are_normalised(vault: CredentialVault) -> None:
    vault.add_key(" Anthropic ", ANTHROPIC_KEY)
    assert vault.get_key("anthropic") == ANTHROPIC_KEY
    assert check_provider("OPENAI") == "openai"


def test_token_is_created_once_then_rotated(vault: CredentialVault) -> None:
    assert vault.get_token() is None
    token, created = vault.ensure_token()
    assert created
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 random bytes, URL-safe base64
    assert vault.ensure_token() == (token, False)
    assert vault.get_token() == token

    rotated = vault.rotate_token()
    assert rotated != token
    assert len(rotated) == 43
    assert vault.get_token() == rotated
    assert vault.ensure_token() == (rotated, False)


def test_keyring_items_use_the_service_name_and_item_names() -> None:
    backend = MemoryKeyring()
    vault = CredentialVault(KeyringStore(backend))
    vault.add_key("anthropic", ANTHROPIC_KEY)
    token, _ = vault.ensure_token()
    assert backend.passwords == {
        (SERVICE_NAME, "provider:anthropic"): ANTHROPIC_KEY,
        (SERVICE_NAME, "keyserver-token"): token,
    }
    assert SERVICE_NAME == "agentspace-gateway"


def test_every_secret_the_vault_handles_is_registered_for_redaction(
    vault: CredentialVault, tmp_path: Path
) -> None:
    key = "sk-redact-" + tmp_path.name + "-openai"  # unique to this test run
    vault.add_key("openai", key)
    token, _ = vault.ensure_token()
    assert redaction.redact(f"key={key} token={token}") == "key=[REDACTED] token=[REDACTED]"


def test_secrets_read_from_another_process_are_registered_too(tmp_path: Path) -> None:
    path = tmp_path / VAULT_FILE_NAME
    key = "sk-other-process-" + tmp_path.name
    # Sealed directly, as another process would have written it: nothing registered here yet.
    kdf = KdfParams.fresh(n=2**4)
    sealed = seal(kdf.derive_key(b"a passphrase for tests"), kdf, {"provider:openai": key})
    path.write_bytes(dump_envelope(sealed))
    assert redaction.redact(key) == key

    reader = CredentialVault(EncryptedFileStore(path, "a passphrase for tests"))
    assert reader.stored_providers() == ["openai"]
    assert redaction.redact(key) == redaction.REDACTED


def test_no_error_or_repr_contains_a_secret(vault: CredentialVault) -> None:
    vault.add_key("openai", OPENAI_KEY)
    token, _ = vault.ensure_token()
    raised: list[VaultError] = []
    for attempt in (
        lambda: vault.add_key("openai", OPENAI_KEY),
        lambda: vault.add_key("anthropic", OPENAI_KEY + " trailing-part"),
        lambda: vault.add_key(OPENAI_KEY, OPENAI_KEY),
        lambda: vault.update_key("anthropic", OPENAI_KEY),
        lambda: vault.remove_key("anthropic"),
    ):
        with pytest.raises(VaultError) as caught:
            attempt()
        raised.append(caught.value)

    texts = [str(error) for error in raised] + [repr(error) for error in raised]
    texts += [repr(vault), repr(vault.store), str(vault)]
    for text in texts:
        assert OPENAI_KEY not in text
        assert token not in text
