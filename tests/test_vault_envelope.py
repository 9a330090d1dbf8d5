"""The vault.enc envelope on its own: the header is authenticated, and hostile parameters are
rejected before scrypt runs."""

import json

import attrs
import pytest

from agentspace_gateway.vault.envelope import (
    EnvelopeError,
    KdfParams,
    dump_envelope,
    header_bytes,
    parse_envelope,
    seal,
    unseal,
)

PASSPHRASE = b"envelope tests only"


def sealed(contents: dict[str, str]) -> tuple[bytes, bytes]:
    kdf = KdfParams.fresh(n=2**4)
    key = kdf.derive_key(PASSPHRASE)
    return key, dump_envelope(seal(key, kdf, contents))


def test_round_trip_through_bytes() -> None:
    key, raw = sealed({"provider:openai": "sk-secret-value", "keyserver-token": "tok"})
    assert unseal(key, parse_envelope(raw)) == {
        "provider:openai": "sk-secret-value",
        "keyserver-token": "tok",
    }


@pytest.mark.parametrize("change", [{"n": 2**5}, {"r": 4}, {"p": 2}])
def test_header_is_associated_data(change: dict[str, int]) -> None:
    key, raw = sealed({"provider:openai": "sk-secret-value"})
    envelope = parse_envelope(raw)
    tampered = attrs.evolve(envelope, kdf=attrs.evolve(envelope.kdf, **change))

    assert header_bytes(tampered.kdf) != header_bytes(envelope.kdf)
    # The right key, as a cache keyed on the salt would supply: the header alone must fail it.
    with pytest.raises(EnvelopeError, match="wrong AGENTSPACE_VAULT_PASSPHRASE"):
        unseal(key, tampered)


def test_header_bytes_ignore_key_order_in_the_file() -> None:
    key, raw = sealed({"item": "value-value"})
    document = json.loads(raw)
    reordered = {name: document[name] for name in reversed(list(document))}
    reordered["kdf"] = {name: document["kdf"][name] for name in reversed(list(document["kdf"]))}
    assert unseal(key, parse_envelope(json.dumps(reordered).encode())) == {"item": "value-value"}


@pytest.mark.parametrize(
    ("kdf_change", "message"),
    [
        ({"n": 2**40}, "out of range"),
        ({"n": 3000}, "out of range"),
        ({"n": 1}, "out of range"),
        ({"r": 0}, "out of range"),
        ({"p": 1000}, "out of range"),
        ({"n": "32768"}, "not whole numbers"),
        ({"r": True}, "not whole numbers"),
        ({"name": "pbkdf2"}, 'not "scrypt"'),
        ({"salt": "c2hvcnQ="}, "fewer than 16"),
    ],
)
def test_unreasonable_kdf_parameters_are_refused_before_derivation(
    kdf_change: dict[str, object], message: str
) -> None:
    _, raw = sealed({"item": "value-value"})
    document = json.loads(raw)
    document["kdf"].update(kdf_change)
    with pytest.raises(EnvelopeError, match=message):
        parse_envelope(json.dumps(document).encode())


def test_decrypted_contents_must_be_a_map_of_strings() -> None:
    kdf = KdfParams.fresh(n=2**4)
    key = kdf.derive_key(PASSPHRASE)
    envelope = seal(key, kdf, {"item": 5})  # type: ignore[dict-item]
    with pytest.raises(EnvelopeError, match="map of names to secrets"):
        unseal(key, envelope)
