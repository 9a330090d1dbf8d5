"""The encrypted-file vault as two processes see it: round trips, atomic 0600 writes, no
plain text on disk, refusal to touch a file it cannot open, and a cache that notices change."""

import base64
import hashlib
import itertools
import json
import os
import secrets
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agentspace_gateway.vault import (
    PROVIDERS,
    VAULT_FILE_NAME,
    CredentialVault,
    EncryptedFileStore,
    KeyMissingError,
    VaultError,
    VaultLockedError,
    open_vault,
)
from agentspace_gateway.vault import envelope as envelope_module
from agentspace_gateway.vault import file_store as file_store_module

PASSPHRASE = "a long passphrase used only by these tests"
# The real default costs ~0.1 s a derivation; the format and the code path are the same.
FAST_N = 2**4


@pytest.fixture
def vault_dir(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def open_file_vault(vault_dir: Path) -> Callable[..., CredentialVault]:
    """Each call is a fresh store on the same file: what another process would open."""

    def make(passphrase: str = PASSPHRASE) -> CredentialVault:
        store = EncryptedFileStore(vault_dir / VAULT_FILE_NAME, passphrase, scrypt_n=FAST_N)
        return CredentialVault(store)

    return make


def new_key(prefix: str = "sk-test-") -> str:
    return prefix + secrets.token_urlsafe(30)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_round_trip_between_two_processes(open_file_vault: Callable[..., CredentialVault]) -> None:
    first, second = open_file_vault(), open_file_vault()
    anthropic, openai, replacement = new_key(), new_key(), new_key()

    first.add_key("anthropic", anthropic)
    first.add_key("openai", openai)
    token, created = first.ensure_token()

    assert created
    assert second.get_key("anthropic") == anthropic
    assert second.get_key("openai") == openai
    assert second.get_key("ollama") is None
    assert second.stored_providers() == ["anthropic", "openai"]
    assert second.key_fingerprint("anthropic") == first.key_fingerprint("anthropic")
    assert second.key_fingerprint("anthropic") != second.key_fingerprint("openai")
    assert second.ensure_token() == (token, False)

    second.update_key("anthropic", replacement)
    second.remove_key("openai")
    assert first.get_key("anthropic") == replacement
    assert first.stored_providers() == ["anthropic"]

    rotated = first.rotate_token()
    assert rotated != token
    assert second.get_token() == rotated
    assert open_file_vault().get_token() == rotated


def test_open_vault_file_uses_scrypt_2_15_with_fresh_nonce_per_write(vault_dir: Path) -> None:
    vault = open_vault("file", vault_dir, {"AGENTSPACE_VAULT_PASSPHRASE": PASSPHRASE})
    vault.add_key("anthropic", new_key())
    first = json.loads((vault_dir / VAULT_FILE_NAME).read_bytes())
    vault.rotate_token()
    second = json.loads((vault_dir / VAULT_FILE_NAME).read_bytes())

    assert vault.backend_name == "file"
    assert first["format"] == "agentspace-vault"
    assert first["version"] == 1
    assert {k: first["kdf"][k] for k in ("name", "n", "r", "p")} == {
        "name": "scrypt",
        "n": 2**15,
        "r": 8,
        "p": 1,
    }
    assert len(base64.b64decode(first["kdf"]["salt"])) == 16
    assert len(base64.b64decode(first["nonce"])) == 12
    assert second["kdf"] == first["kdf"]
    assert second["nonce"] != first["nonce"]


def test_two_vault_files_get_different_salts(tmp_path: Path) -> None:
    salts = []
    for name in ("one", "two"):
        store = EncryptedFileStore(tmp_path / name / VAULT_FILE_NAME, PASSPHRASE, scrypt_n=FAST_N)
        store.set("provider:anthropic", "same-secret-value")
        salts.append(json.loads(store.path.read_bytes())["kdf"]["salt"])
    assert salts[0] != salts[1]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_file_is_private_and_replaced_whole(
    open_file_vault: Callable[..., CredentialVault], vault_dir: Path
) -> None:
    vault = open_file_vault()
    path = vault_dir / VAULT_FILE_NAME
    inodes = []
    for provider in PROVIDERS:
        vault.add_key(provider, new_key())
        inodes.append(path.stat().st_ino)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # Each write renames a new file over the old one, which still exists while the new one is
    # written, so consecutive versions never share an inode. (A freed inode may come back.)
    assert all(a != b for a, b in itertools.pairwise(inodes))
    assert sorted(p.name for p in vault_dir.iterdir()) == [VAULT_FILE_NAME, "vault.enc.lock"]


def test_failed_write_keeps_previous_file_and_leaves_no_temp(
    open_file_vault: Callable[..., CredentialVault],
    vault_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vault = open_file_vault()
    kept = new_key()
    vault.add_key("anthropic", kept)
    before = digest(vault_dir / VAULT_FILE_NAME)

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(file_store_module.os, "replace", refuse)
    with pytest.raises(VaultError, match="No space left on device") as caught:
        vault.add_key("openai", new_key())
    monkeypatch.undo()

    assert "previous file was left in place" in str(caught.value)
    assert digest(vault_dir / VAULT_FILE_NAME) == before
    assert sorted(p.name for p in vault_dir.iterdir()) == [VAULT_FILE_NAME, "vault.enc.lock"]
    assert open_file_vault().stored_providers() == ["anthropic"]


def test_no_secret_ever_reaches_the_disk_in_plain_text(
    open_file_vault: Callable[..., CredentialVault],
    vault_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written: list[bytes] = []
    real_write = os.write

    def recording_write(fd: int, data: bytes | memoryview) -> int:
        written.append(bytes(data))
        return real_write(fd, data)

    # Every byte the store writes, temp files included, passes through os.write.
    monkeypatch.setattr(file_store_module.os, "write", recording_write)
    vault = open_file_vault()
    secrets_used = [new_key() for _ in PROVIDERS]
    for provider, key in zip(PROVIDERS, secrets_used, strict=True):
        vault.add_key(provider, key)
    secrets_used.append(vault.ensure_token()[0])
    secrets_used.append(vault.rotate_token())
    vault.update_key("openai", replacement := new_key())
    secrets_used.append(replacement)
    monkeypatch.undo()

    on_disk = [p.read_bytes() for p in vault_dir.rglob("*") if p.is_file()]
    assert written
    assert on_disk
    for secret in [*secrets_used, PASSPHRASE]:
        needle = secret.encode()
        assert not any(needle in blob for blob in written), "a secret was written in clear"
        assert not any(needle in blob for blob in on_disk), "a secret is on disk in clear"


def test_wrong_passphrase_is_refused_and_the_file_is_untouched(
    open_file_vault: Callable[..., CredentialVault], vault_dir: Path
) -> None:
    key = new_key()
    open_file_vault().add_key("anthropic", key)
    path = vault_dir / VAULT_FILE_NAME
    before, mtime_before = digest(path), path.stat().st_mtime_ns
    intruder = open_file_vault("not the passphrase")

    attempts: list[Callable[[], object]] = [
        lambda: intruder.get_key("anthropic"),
        lambda: intruder.get_token(),
        lambda: intruder.add_key("openai", new_key()),
        lambda: intruder.update_key("anthropic", new_key()),
        lambda: intruder.remove_key("anthropic"),
        intruder.ensure_token,
        intruder.rotate_token,
    ]
    for attempt in attempts:
        with pytest.raises(VaultLockedError) as caught:
            attempt()
        message = str(caught.value)
        assert str(path) in message
        assert "wrong AGENTSPACE_VAULT_PASSPHRASE" in message
        assert "left untouched" in message
        assert key not in message
        assert "not the passphrase" not in message

    assert digest(path) == before
    assert path.stat().st_mtime_ns == mtime_before
    assert open_file_vault().get_key("anthropic") == key


def _truncate(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def _flip_ciphertext_byte(raw: bytes) -> bytes:
    document = json.loads(raw)
    ciphertext = bytearray(base64.b64decode(document["ciphertext"]))
    ciphertext[0] ^= 0x01
    document["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
    return json.dumps(document).encode()


def _edit(**changes: object) -> Callable[[bytes], bytes]:
    def apply(raw: bytes) -> bytes:
        document = json.loads(raw)
        for field, value in changes.items():
            if value is None:
                document.pop(field)
            else:
                document[field] = value
        return json.dumps(document).encode()

    return apply


@pytest.mark.parametrize(
    ("damage", "explanation"),
    [
        pytest.param(_truncate, "damaged or truncated", id="truncated"),
        pytest.param(lambda raw: b"", "damaged or truncated", id="empty"),
        pytest.param(lambda raw: secrets.token_bytes(200), "damaged or truncated", id="garbage"),
        pytest.param(_flip_ciphertext_byte, "or the file is damaged", id="flipped-bit"),
        pytest.param(_edit(nonce=None), '"nonce" is missing', id="no-nonce"),
        pytest.param(_edit(nonce="AAAA"), "nonce is 3 bytes", id="short-nonce"),
        pytest.param(_edit(ciphertext="!!"), "not valid base64", id="bad-base64"),
        pytest.param(_edit(format="other"), "not an agentspace vault", id="foreign"),
        pytest.param(_edit(version=2), "newer agentspace-gateway", id="newer"),
        pytest.param(_edit(version=True), "version True", id="bool-version"),
    ],
)
def test_damaged_file_is_refused_and_left_as_found(
    open_file_vault: Callable[..., CredentialVault],
    vault_dir: Path,
    damage: Callable[[bytes], bytes],
    explanation: str,
) -> None:
    open_file_vault().add_key("anthropic", new_key())
    path = vault_dir / VAULT_FILE_NAME
    path.write_bytes(damage(path.read_bytes()))
    before = digest(path)
    vault = open_file_vault()

    with pytest.raises(VaultLockedError, match="left untouched") as caught:
        vault.get_key("anthropic")
    assert explanation in str(caught.value)
    with pytest.raises(VaultLockedError):
        vault.rotate_token()
    assert digest(path) == before


def test_tampered_kdf_parameters_are_detected_even_with_the_key_cached(
    open_file_vault: Callable[..., CredentialVault], vault_dir: Path
) -> None:
    vault = open_file_vault()
    vault.add_key("anthropic", new_key())
    path = vault_dir / VAULT_FILE_NAME
    document = json.loads(path.read_bytes())
    document["kdf"]["n"] = FAST_N * 2
    path.write_bytes(json.dumps(document).encode())
    before = digest(path)

    # The same store has the key for this salt cached; only the associated data catches it.
    with pytest.raises(VaultLockedError, match="wrong AGENTSPACE_VAULT_PASSPHRASE"):
        vault.get_key("anthropic")
    with pytest.raises(VaultLockedError):
        open_file_vault().get_key("anthropic")
    assert digest(path) == before


def test_reads_use_the_cache_until_another_process_changes_the_file(
    open_file_vault: Callable[..., CredentialVault], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = open_file_vault()
    writer.add_key("anthropic", new_key())
    token, _ = writer.ensure_token()
    derivations: list[bytes] = []
    decryptions: list[object] = []
    real_derive, real_unseal = envelope_module.KdfParams.derive_key, file_store_module.unseal

    def counting_derive(self: envelope_module.KdfParams, passphrase: bytes) -> bytes:
        derivations.append(self.salt)
        return real_derive(self, passphrase)

    def counting_unseal(key: bytes, envelope: envelope_module.Envelope) -> dict[str, str]:
        decryptions.append(envelope)
        return real_unseal(key, envelope)

    monkeypatch.setattr(envelope_module.KdfParams, "derive_key", counting_derive)
    monkeypatch.setattr(file_store_module, "unseal", counting_unseal)
    reader = open_file_vault()

    assert reader.get_token() == token
    assert reader.get_key("anthropic") is not None
    assert reader.stored_providers() == ["anthropic"]
    assert (len(derivations), len(decryptions)) == (1, 1)

    rotated = writer.rotate_token()
    assert reader.get_token() == rotated
    assert reader.get_token() == rotated
    # Re-read once after the change; the salt is unchanged, so scrypt does not run again.
    assert (len(derivations), len(decryptions)) == (1, 2)


def test_a_repeated_stamp_does_not_hide_a_change(
    open_file_vault: Callable[..., CredentialVault], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, reader = open_file_vault(), open_file_vault()
    writer.ensure_token()
    assert reader.get_token() is not None
    # As on a filesystem that reuses the freed inode and has not ticked its clock yet.
    frozen = (time.time_ns(), 512, 42)
    monkeypatch.setattr(file_store_module, "_stamp", lambda stat_result: frozen)
    first = writer.rotate_token()
    assert reader.get_token() == first
    second = writer.rotate_token()
    assert reader.get_token() == second


def test_missing_file_reads_as_empty_and_creates_nothing(
    open_file_vault: Callable[..., CredentialVault], vault_dir: Path
) -> None:
    vault = open_file_vault()
    assert vault.get_key("anthropic") is None
    assert vault.get_token() is None
    assert vault.stored_providers() == []
    with pytest.raises(KeyMissingError):
        vault.remove_key("anthropic")
    assert not vault_dir.exists()


def test_removing_an_absent_key_does_not_rewrite_the_file(
    open_file_vault: Callable[..., CredentialVault], vault_dir: Path
) -> None:
    vault = open_file_vault()
    vault.ensure_token()
    path = vault_dir / VAULT_FILE_NAME
    before, inode = digest(path), path.stat().st_ino
    with pytest.raises(KeyMissingError):
        vault.remove_key("ollama")
    assert (digest(path), path.stat().st_ino) == (before, inode)


def test_concurrent_writers_from_separate_stores_lose_nothing(vault_dir: Path) -> None:
    path = vault_dir / VAULT_FILE_NAME
    EncryptedFileStore(path, PASSPHRASE, scrypt_n=FAST_N).set("seed", "seed-value")
    stores = [EncryptedFileStore(path, PASSPHRASE, scrypt_n=FAST_N) for _ in range(8)]
    start = threading.Barrier(len(stores))
    failures: list[BaseException] = []

    def write(index: int) -> None:
        try:
            start.wait()
            stores[index].set(f"item-{index}", f"value-{index}-{secrets.token_hex(8)}")
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    survivor = EncryptedFileStore(path, PASSPHRASE, scrypt_n=FAST_N)
    assert all(survivor.get(f"item-{i}") is not None for i in range(len(stores)))
    assert survivor.get("seed") == "seed-value"


def test_store_repr_shows_the_path_but_no_secret(vault_dir: Path) -> None:
    store = EncryptedFileStore(vault_dir / VAULT_FILE_NAME, PASSPHRASE, scrypt_n=FAST_N)
    key = new_key()
    store.set("provider:anthropic", key)
    text = repr(store) + repr(CredentialVault(store))
    assert VAULT_FILE_NAME in text
    assert PASSPHRASE not in text
    assert key not in text
