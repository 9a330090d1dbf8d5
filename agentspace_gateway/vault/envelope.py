"""The vault.enc format: a JSON envelope around AES-256-GCM ciphertext keyed by scrypt.

    {"format": "agentspace-vault", "version": 1,
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "<base64, 16 bytes>"},
     "nonce": "<base64, 12 bytes, fresh for every write>",
     "ciphertext": "<base64 of AES-GCM(JSON object of item name -> secret)>"}

The canonical header (format, version, kdf) is the AES-GCM associated data, so a file whose
KDF parameters were changed fails to open even when the key for its salt is already cached.
"""

import base64
import binascii
import json
import os
from typing import Any, TypeGuard

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

FORMAT = "agentspace-vault"
VERSION = 1
KDF_NAME = "scrypt"
DEFAULT_SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
NONCE_BYTES = 12
KEY_BYTES = 32
_TAG_BYTES = 16
# scrypt needs 128 * n * r bytes; a damaged or hostile file must not make us allocate gigabytes.
_MAX_SCRYPT_MEMORY = 1 << 30


class EnvelopeError(Exception):
    """The file cannot be opened; the message says why, without any of its contents."""


@attrs.frozen
class KdfParams:
    n: int
    r: int
    p: int
    salt: bytes

    @classmethod
    def fresh(cls, n: int = DEFAULT_SCRYPT_N) -> "KdfParams":
        return cls(n=n, r=SCRYPT_R, p=SCRYPT_P, salt=os.urandom(SALT_BYTES))

    def derive_key(self, passphrase: bytes) -> bytes:
        scrypt = Scrypt(salt=self.salt, length=KEY_BYTES, n=self.n, r=self.r, p=self.p)
        return scrypt.derive(passphrase)


@attrs.frozen
class Envelope:
    kdf: KdfParams
    nonce: bytes
    ciphertext: bytes


def header_bytes(kdf: KdfParams) -> bytes:
    """The associated data: the header as canonical JSON, whatever order the file used."""
    header = {"format": FORMAT, "version": VERSION, "kdf": _kdf_json(kdf)}
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def seal(key: bytes, kdf: KdfParams, contents: dict[str, str]) -> Envelope:
    plaintext = json.dumps(contents, sort_keys=True, separators=(",", ":")).encode()
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, header_bytes(kdf))
    return Envelope(kdf=kdf, nonce=nonce, ciphertext=ciphertext)


def unseal(key: bytes, envelope: Envelope) -> dict[str, str]:
    try:
        plaintext = AESGCM(key).decrypt(
            envelope.nonce, envelope.ciphertext, header_bytes(envelope.kdf)
        )
    except InvalidTag:
        raise EnvelopeError("wrong AGENTSPACE_VAULT_PASSPHRASE, or the file is damaged") from None
    try:
        contents = json.loads(plaintext)
    except ValueError:
        contents = None
    if not isinstance(contents, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in contents.items()
    ):
        # Authenticated but not what we write: only a bug or a foreign tool makes this.
        raise EnvelopeError("it decrypts, but does not hold a map of names to secrets")
    return contents


def dump_envelope(envelope: Envelope) -> bytes:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "kdf": _kdf_json(envelope.kdf),
        "nonce": _b64(envelope.nonce),
        "ciphertext": _b64(envelope.ciphertext),
    }
    return json.dumps(document, indent=2).encode() + b"\n"


def parse_envelope(raw: bytes) -> Envelope:
    try:
        document = json.loads(raw)
    except ValueError:
        raise EnvelopeError("it is not a JSON vault envelope (damaged or truncated)") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise EnvelopeError(f'it is not an agentspace vault (no "format": "{FORMAT}")')
    version = document.get("version")
    if _is_int(version) and version > VERSION:
        raise EnvelopeError(
            f"it was written by a newer agentspace-gateway (vault format version {version}); "
            "upgrade agentspace-gateway to open it"
        )
    if version != VERSION or not _is_int(version):
        raise EnvelopeError(f"its format version {version!r} is not one this program knows")
    kdf = _parse_kdf(document.get("kdf"))
    nonce = _field_bytes(document, "nonce")
    ciphertext = _field_bytes(document, "ciphertext")
    if len(nonce) != NONCE_BYTES:
        raise EnvelopeError(f"its nonce is {len(nonce)} bytes, not {NONCE_BYTES} (damaged)")
    if len(ciphertext) < _TAG_BYTES:
        raise EnvelopeError("its ciphertext is shorter than an authentication tag (truncated)")
    return Envelope(kdf=kdf, nonce=nonce, ciphertext=ciphertext)


def _parse_kdf(kdf: Any) -> KdfParams:
    if not isinstance(kdf, dict) or kdf.get("name") != KDF_NAME:
        raise EnvelopeError(f'its key derivation is not "{KDF_NAME}" (damaged)')
    n, r, p = kdf.get("n"), kdf.get("r"), kdf.get("p")
    if not (_is_int(n) and _is_int(r) and _is_int(p)):
        raise EnvelopeError("its scrypt parameters are not whole numbers (damaged)")
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * n * r > _MAX_SCRYPT_MEMORY or p > 16:
        raise EnvelopeError(f"its scrypt parameters n={n}, r={r}, p={p} are out of range")
    salt = _field_bytes(kdf, "salt")
    if len(salt) < SALT_BYTES:
        raise EnvelopeError(f"its salt is {len(salt)} bytes, fewer than {SALT_BYTES} (damaged)")
    return KdfParams(n=n, r=r, p=p, salt=salt)


def _kdf_json(kdf: KdfParams) -> dict[str, object]:
    return {"name": KDF_NAME, "n": kdf.n, "r": kdf.r, "p": kdf.p, "salt": _b64(kdf.salt)}


def _field_bytes(document: dict[str, Any], field: str) -> bytes:
    value = document.get(field)
    if not isinstance(value, str):
        raise EnvelopeError(f'its "{field}" is missing (damaged)')
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f'its "{field}" is not valid base64 (damaged)') from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _is_int(value: object) -> TypeGuard[int]:
    # JSON true would otherwise pass for 1.
    return isinstance(value, int) and not isinstance(value, bool)
