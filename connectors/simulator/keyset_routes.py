"""The simulated Google Health webhook signing key, and the route that publishes its public half.

Google signs each notification body with ECDSA P-256 and is said to publish the public keys as a
Tink keyset at ``google_health_notifications.KEYSET_PATH`` on gstatic. The simulator makes its
own key at start (a fresh P-256 key with a random 32-bit Tink key id), serves the keyset at the
same path, and signs as Tink does with the TINK output prefix: base64 of
``0x01 ‖ key id (4 bytes, big-endian) ‖ DER ECDSA-SHA256 signature``.

The keyset is rendered here, protobuf included, rather than with the gateway's reader's
helpers, so that the gateway's parsing is tested against an independent writer. Like Tink's
Java writer, x and y are written as signed big-endian integers (a leading zero byte when the
top bit is set), which a reader must tolerate.
"""

from __future__ import annotations

import base64
import secrets

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from connectors.simulator.keys import WORLD
from connectors.vendors.google_health_notifications import KEYSET_PATH, TINK_ECDSA_PUBLIC_KEY

__all__ = ["SIGNING_KEY", "SigningKey", "routes"]

# EcdsaParams{hash_type: SHA256 (3), curve: NIST_P256 (2), encoding: DER (2)}
_PARAMS = {1: 3, 2: 2, 3: 2}


class SigningKey:
    """The simulated vendor's webhook key: ``sign`` a body, publish ``keyset_json``.

    :param key_id: the Tink key id (random when None).
    """

    def __init__(self, key_id: int | None = None) -> None:
        self._private = ec.generate_private_key(ec.SECP256R1())
        self.key_id = secrets.randbits(32) if key_id is None else key_id

    def sign(self, body: bytes) -> str:
        """The signature header value for ``body``."""
        der = self._private.sign(body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(b"\x01" + self.key_id.to_bytes(4, "big") + der).decode()

    def keyset_json(self) -> bytes:
        """The public keyset in Tink's JSON form, one enabled key, primary."""
        numbers = self._private.public_key().public_numbers()
        params = b"".join(_field_varint(number, value) for number, value in _PARAMS.items())
        key = _field_bytes(2, params) + _field_bytes(3, _signed(numbers.x)) + _field_bytes(4, _signed(numbers.y))
        return orjson.dumps({"primaryKeyId": self.key_id, "key": [{
            "keyData": {"typeUrl": TINK_ECDSA_PUBLIC_KEY, "value": base64.b64encode(key).decode(),
                        "keyMaterialType": "ASYMMETRIC_PUBLIC"},
            "status": "ENABLED", "keyId": self.key_id, "outputPrefixType": "TINK"}]})


SIGNING_KEY = web.AppKey("signing_key", SigningKey)


def routes() -> list[web.RouteDef]:
    return [web.get(KEYSET_PATH, _keyset)]


async def _keyset(request: web.Request) -> web.StreamResponse:
    request.app[WORLD].stats["keyset_fetches"] += 1
    return web.Response(body=request.app[SIGNING_KEY].keyset_json(), content_type="application/json",
                        headers={"Cache-Control": "public, max-age=3600"})


def _signed(number: int) -> bytes:
    """Big-endian two's complement, as Java's BigInteger writes a positive number."""
    return number.to_bytes(number.bit_length() // 8 + 1, "big")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value
