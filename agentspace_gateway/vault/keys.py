"""What a plausible API key looks like, and how to tell keys apart without showing them."""

import hashlib
import unicodedata

from agentspace_gateway.vault.errors import InvalidKeyError

MAX_KEY_LENGTH = 4096


def clean_key(provider: str, raw: str) -> str:
    """The key with surrounding whitespace removed, or InvalidKeyError saying what is wrong.

    Messages describe the problem (length, position) and never quote the key.
    """
    key = raw.strip()
    if not key:
        raise InvalidKeyError(
            f"The {provider} key is empty. Paste the whole key: "
            f"agentspace-gateway keys add {provider}"
        )
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"The {provider} key is {len(key)} characters long; keys are at most "
            f"{MAX_KEY_LENGTH}. Check that only the key was pasted."
        )
    for position, char in enumerate(key, start=1):
        if char.isspace() or unicodedata.category(char).startswith("C"):
            raise InvalidKeyError(
                f"The {provider} key contains a space, line break or control character at "
                f"position {position}. Paste the key alone, on one line."
            )
    return key


def key_fingerprint(key: str) -> str:
    """Short enough to print in `keys list`, far too short to recover or guess the key from."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:12]
