"""The simulated Google keyset: served at Google's path in Tink's JSON form, read by the
gateway's parser (x and y as Java writes them, a leading zero byte included), and verifying
exactly the bodies the key signed, with the TINK prefix naming the key."""

from __future__ import annotations

import base64

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from connectors.simulator.keyset_routes import SigningKey, _signed
from connectors.vendors.google_health_notifications import (
    KEYSET_PATH,
    TINK_ECDSA_PUBLIC_KEY,
    Verdict,
    parse_keyset,
    verify_signature,
)
from tests.connectors.simulator.conftest import Sim


async def test_the_keyset_is_served_where_google_serves_it(sim: Sim) -> None:
    answer = await sim.http.get(KEYSET_PATH)
    assert answer.status == 200 and answer.content_type == "application/json"
    document = await answer.json()
    (entry,) = document["key"]
    assert entry["keyData"]["typeUrl"] == TINK_ECDSA_PUBLIC_KEY and entry["status"] == "ENABLED"
    assert entry["outputPrefixType"] == "TINK" and document["primaryKeyId"] == entry["keyId"]
    assert parse_keyset(await answer.read()).ids() == {entry["keyId"]}
    assert sim.world.stats["keyset_fetches"] == 1


def test_signatures_verify_under_the_published_keyset_only() -> None:
    key, other = SigningKey(key_id=0x01020304), SigningKey()
    keyset = parse_keyset(key.keyset_json())
    body = b'[{"data": {}}]'
    signature = key.sign(body)
    assert base64.b64decode(signature)[:5] == b"\x01\x01\x02\x03\x04"  # Tink's prefix: 0x01 and the key id
    assert verify_signature(body, signature, keyset) is Verdict.VALID
    assert verify_signature(body + b" ", signature, keyset) is Verdict.INVALID
    assert verify_signature(body, other.sign(body), keyset) is not Verdict.VALID
    assert key.sign(body) != signature  # ECDSA signatures are randomized; both verify
    assert verify_signature(body, key.sign(body), keyset) is Verdict.VALID


def test_coordinates_are_written_as_java_does() -> None:
    assert _signed(0x7F) == b"\x7f" and _signed(0x80) == b"\x00\x80"  # a set top bit gets a zero byte
    for _ in range(8):  # about half of all keys have a coordinate with its top bit set
        key = SigningKey()
        numbers = key._private.public_key().public_numbers()
        value = base64.b64decode(orjson.loads(key.keyset_json())["key"][0]["keyData"]["value"])
        assert _signed(numbers.x) in value and _signed(numbers.y) in value
        (parsed,) = parse_keyset(key.keyset_json()).keys
        assert parsed.key.public_numbers() == ec.EllipticCurvePublicNumbers(numbers.x, numbers.y, ec.SECP256R1())
