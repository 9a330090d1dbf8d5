"""Credentials in an encrypted file in the gateway home, for machines without an OS keychain.

The file is only ever replaced whole (temp file, fsync, rename), so a reader sees the old
contents or the new, never half of either, and (mtime, size, inode) tells a running server
whether its decrypted copy is still current after a CLI changed the file. A write first opens
the existing file; when that fails (wrong passphrase, damage) nothing is written and the file
stays as it was.
"""

import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import ClassVar

import attrs

from agentspace_gateway.redaction import register_secret
from agentspace_gateway.vault.envelope import (
    DEFAULT_SCRYPT_N,
    EnvelopeError,
    KdfParams,
    dump_envelope,
    parse_envelope,
    seal,
    unseal,
)
from agentspace_gateway.vault.errors import VaultError, VaultLockedError

if sys.platform != "win32":
    import fcntl

VAULT_FILE_NAME = "vault.enc"
PASSPHRASE_ENV = "AGENTSPACE_VAULT_PASSPHRASE"  # noqa: S105 (a variable name)

# (st_mtime_ns, st_size, st_ino): changes whenever another process replaces the file, except
# that a freed inode is reused at once and mtime may only advance once per clock tick, so two
# same-size writes (a token rotated twice) within a tick can repeat a stamp.
_Stamp = tuple[int, int, int]
# Coarser than any filesystem's mtime resolution we expect to run on (FAT's is 2 s).
_TIMESTAMP_RESOLUTION_NS = 2_000_000_000


@attrs.frozen
class _Snapshot:
    stamp: _Stamp
    raw: bytes
    kdf: KdfParams
    contents: dict[str, str] = attrs.field(repr=False)
    checked_ns: int = attrs.field(factory=time.time_ns)

    def stamp_is_trustworthy(self) -> bool:
        # Git's "racy clean" rule: once the file was seen well after its mtime, any later
        # write carries a later mtime, so an equal stamp means an unchanged file. Until then
        # a repeated stamp proves nothing and the bytes are compared instead.
        return self.checked_ns - self.stamp[0] >= _TIMESTAMP_RESOLUTION_NS


@attrs.define(eq=False)
class EncryptedFileStore:
    """A SecretStore in one AES-GCM encrypted file, keyed by scrypt from a passphrase.

    `scrypt_n` only applies when this store creates the file; an existing file keeps the
    parameters recorded in it. Tests pass a small value to stay fast.
    """

    path: Path
    _passphrase: str = attrs.field(repr=False, alias="passphrase")
    scrypt_n: int = attrs.field(default=DEFAULT_SCRYPT_N, kw_only=True)
    # scrypt takes ~0.1 s by design; derive once per salt, not once per operation.
    _keys: dict[bytes, bytes] = attrs.field(factory=dict, init=False, repr=False)
    _snapshot: _Snapshot | None = attrs.field(default=None, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    name: ClassVar[str] = "file"

    def __attrs_post_init__(self) -> None:
        if not self._passphrase:
            raise VaultError(f"The vault at {self.path} needs a non-empty {PASSPHRASE_ENV}.")
        register_secret(self._passphrase)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def get(self, item: str) -> str | None:
        with self._lock:
            snapshot = self._load()
        return None if snapshot is None else snapshot.contents.get(item)

    def set(self, item: str, value: str) -> None:
        register_secret(value)

        def put(contents: dict[str, str]) -> bool:
            changed = contents.get(item) != value
            contents[item] = value
            return changed

        self._update(put)

    def delete(self, item: str) -> bool:
        if self.get(item) is None:
            return False  # Without taking the writer lock, which would create the directory.

        def drop(contents: dict[str, str]) -> bool:
            return contents.pop(item, None) is not None

        return self._update(drop)

    def _update(self, change: Callable[[dict[str, str]], bool]) -> bool:
        with self._lock, self._exclusive_writer():
            snapshot = self._load()
            contents = {} if snapshot is None else dict(snapshot.contents)
            if not change(contents):
                return False
            kdf = KdfParams.fresh(self.scrypt_n) if snapshot is None else snapshot.kdf
            data = dump_envelope(seal(self._key_for(kdf), kdf, contents))
            stamp = self._replace_file(data)
            self._snapshot = _Snapshot(stamp, data, kdf, contents)
            return True

    def _load(self) -> _Snapshot | None:
        try:
            current = _stamp(os.stat(self.path))
        except FileNotFoundError:
            self._snapshot = None
            return None
        except OSError as exc:
            raise self._unreadable(exc) from exc
        cached = self._snapshot
        if cached is not None and cached.stamp == current and cached.stamp_is_trustworthy():
            return cached
        try:
            with open(self.path, "rb") as file:
                # Stamp what was actually read, in case the file was replaced since the stat.
                stamp = _stamp(os.fstat(file.fileno()))
                raw = file.read()
        except FileNotFoundError:
            self._snapshot = None
            return None
        except OSError as exc:
            raise self._unreadable(exc) from exc
        if cached is not None and raw == cached.raw:
            # Each write has a fresh nonce, so equal bytes are the same version: no decryption.
            self._snapshot = _Snapshot(stamp, raw, cached.kdf, cached.contents)
            return self._snapshot
        try:
            envelope = parse_envelope(raw)
            contents = unseal(self._key_for(envelope.kdf), envelope)
        except EnvelopeError as exc:
            raise VaultLockedError(
                f"Cannot open the vault at {self.path}: {exc}. The file was left untouched."
            ) from None
        for value in contents.values():
            register_secret(value)
        self._snapshot = _Snapshot(stamp, raw, envelope.kdf, contents)
        return self._snapshot

    def _key_for(self, kdf: KdfParams) -> bytes:
        # Keyed on the salt alone: the header is authenticated, so a file whose parameters
        # were altered under a known salt still fails to decrypt.
        key = self._keys.get(kdf.salt)
        if key is None:
            key = kdf.derive_key(self._passphrase.encode())
            self._keys[kdf.salt] = key
        return key

    def _replace_file(self, data: bytes) -> _Stamp:
        directory = self.path.parent
        temp = directory / f".{self.path.name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | _O_BINARY, 0o600)
            try:
                _write_all(fd, data)
                os.fsync(fd)
                # Taken before the rename, which leaves mtime, size and inode as they are.
                stamp = _stamp(os.fstat(fd))
            finally:
                os.close(fd)
            os.replace(temp, self.path)
        except OSError as exc:
            with suppress(OSError):
                os.unlink(temp)
            raise VaultError(
                f"Could not write the vault at {self.path}: {exc.strerror or exc}. "
                "The previous file was left in place; check the directory's permissions "
                "and free space."
            ) from exc
        _fsync_directory(directory)
        return stamp

    @contextmanager
    def _exclusive_writer(self) -> Iterator[None]:
        """Serialise read-modify-write across processes (a CLI and a running server)."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_CREAT | os.O_RDWR | _O_BINARY, 0o600)
        except OSError as exc:
            raise VaultError(
                f"Could not prepare the vault directory {self.path.parent}: "
                f"{exc.strerror or exc}. Check that it exists and is writable."
            ) from exc
        try:
            if sys.platform != "win32":
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # also releases the flock

    def _unreadable(self, exc: OSError) -> VaultError:
        return VaultError(
            f"Could not read the vault at {self.path}: {exc.strerror or exc}. "
            "Check the file's owner and permissions."
        )


# Windows would otherwise translate line endings in the ciphertext envelope.
_O_BINARY: int = getattr(os, "O_BINARY", 0)


def _stamp(stat: os.stat_result) -> _Stamp:
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable. Windows cannot open a directory, and some filesystems
    # refuse fsync on one; the new file is already complete in either case.
    if sys.platform == "win32":
        return
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
