"""Google Health API v4 webhook notifications on the wire: their bodies, their signatures and the
public keyset that verifies them. The gateway (``connectors/webhooks.py``) reads with it; the
simulator speaks it (header names, keyset path), but renders bodies and keysets on its own, so
that it still tests this reading.

**Bodies.** The documented notification is ``{"data": {"version", "clientProvidedSubscriptionName"
(MANUAL policy only), "healthUserId", "operation": "UPSERT" | "DELETE", "dataType" (kebab-case),
"intervals": [{"physicalTimeInterval": {"startTime", "endTime"} (RFC 3339, UTC),
"civilDateTimeInterval": {"startDateTime": {date: {year, month, day}, time: {hours, minutes,
seconds, nanos}}, "endDateTime"}, "civilIso8601TimeInterval": {"startTime":
"2026-10-01T00:00:00", "endTime"}}]}}``. Independent implementations report that data
notifications arrive as a JSON **array** of such objects, and an older fixture has one interval
directly under ``data`` with no ``intervals`` array: the format changed between versions, so
all three are read. Notifications carry no values: the receiver fetches the intervals. The
subscriber handshake is a separate body, ``{"type": "verification"}`` (``is_verification``).

**Signatures.** "ECDSA (NIST P256) signature of the JSON payload", over the raw body bytes. The
header is ``GOOGLE-HEALTH-API-SIGNATURE`` in the discovery document and the Dart client, and
``X-HEALTHAPI-SIGNATURE`` in the REST reference, the .NET client and a user's report: both are
read. The value is base64 (standard or URL-safe, padding optional) of a DER ECDSA-SHA256
signature, after Tink's output prefix when the key has one: ``0x01 ‖ 4-byte key id`` (TINK),
``0x00 ‖ key id`` (CRUNCHY, and LEGACY, whose signed data ends with an extra ``0x00``), nothing
(RAW). Which prefix a signature carries is not trusted to pick the outcome: every candidate key
is tried, and only a signature that verifies under a key of the fetched keyset passes.

**Keyset.** Published, by third parties' account (not Google's), at ``KEYSET_URL`` as a Tink
keyset, with keys said to rotate every 30 days. ``parse_keyset`` accepts, because Google's own
word on the format is missing:

- a Tink JSON public keyset ``{"primaryKeyId", "key": [{"keyData": {"typeUrl":
  "type.googleapis.com/google.crypto.tink.EcdsaPublicKey", "value": base64(EcdsaPublicKey
  protobuf), "keyMaterialType": "ASYMMETRIC_PUBLIC"}, "status": "ENABLED", "keyId",
  "outputPrefixType"}]}`` (what Google is said to serve). ``EcdsaPublicKey`` is
  ``{1: version, 2: params {1: hash, 2: curve, 3: encoding}, 3: x, 4: y}`` with x and y
  big-endian (Tink's Java writer may add a leading zero byte); it is read by hand here, not
  with a protobuf runtime, because it is four fields;
- a JWKS ``{"keys": [{"kty": "EC", "crv": "P-256", "x", "y", "kid"}]}`` (the common web form,
  in case the keyset is moved to it);
- PEM public keys, as ``{"keys": [{"keyId", "pem": "-----BEGIN PUBLIC KEY-----…"}]}`` or a bare
  PEM file.

Disabled or destroyed keys, private key material and keys of other types are skipped; a keyset
with no usable key is refused. ``KeysetCache`` fetches it (HTTPS, or plain HTTP on this machine
only: the simulator), refreshes it daily and keeps using it up to 7 days past the last good
fetch when refreshes fail, because a gateway that cannot verify must answer 503 and Google
retries non-204 answers for up to 7 days.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import math
import re
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any, Literal

import aiohttp
import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from connectors.vendors.endpoints import is_loopback
from models.errors import ConfigurationError
from runtime.metrics import counter, gauge
from runtime.settings import GatewaySettings, VendorSettings

__all__ = [
    "KEYSET_PATH",
    "KEYSET_URL",
    "MAX_DELETE_INTERVAL",
    "MAX_INTERVAL",
    "SIGNATURE_HEADERS",
    "TINK_ECDSA_PUBLIC_KEY",
    "Interval",
    "Keyset",
    "KeysetCache",
    "MalformedKeyset",
    "MalformedNotification",
    "Notification",
    "Operation",
    "PublicKey",
    "Verdict",
    "is_verification",
    "keyset_url",
    "parse_keyset",
    "parse_notifications",
    "read_notifications",
    "signature_values",
    "verify_signature",
]

KEYSET_PATH = "/googlehealthapi/webhooks/webhooks_public_keyset.json"
KEYSET_URL = "https://www.gstatic.com" + KEYSET_PATH
SIGNATURE_HEADERS = ("GOOGLE-HEALTH-API-SIGNATURE", "X-HEALTHAPI-SIGNATURE")
TINK_ECDSA_PUBLIC_KEY = "type.googleapis.com/google.crypto.tink.EcdsaPublicKey"
MAX_INTERVAL = timedelta(days=400)  # an update longer than any backfill: a broken body
MAX_DELETE_INTERVAL = timedelta(days=20 * 366)  # a participant deleting their whole history

Operation = Literal["UPSERT", "DELETE"]
_OPERATIONS: frozenset[str] = frozenset({"UPSERT", "DELETE"})
_DATA_TYPE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_MAX_KEYSET_BYTES = 1 << 20
logger = logging.getLogger(__name__)

FETCHES = counter("gateway_google_keyset_fetches_total",
                  "Google Health keyset fetches by outcome (ok, http_error, unreachable, malformed), and "
                  "cached keysets dropped as too old (expired)", ["outcome"])
KEYSET_AGE = gauge("gateway_google_keyset_age_seconds",
                   "Seconds since the Google Health keyset in use was fetched (+Inf: none yet)")
KEYSET_AGE.set(math.inf)  # until a cache exists and has fetched: no keyset is infinitely old


# ====================================================================== notification bodies
class MalformedNotification(ValueError):
    """The body is not a notification we can read; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Interval:
    """What changed, in physical time (aware, UTC) and/or civil time (the user's wall clock,
    naive); at least one of the two is known. Ends are exclusive."""

    start: datetime | None
    end: datetime | None
    civil_start: datetime | None
    civil_end: datetime | None

    def dates(self) -> tuple[date, date]:
        """The first and last date the interval touches, as UTC dates of the physical part and
        civil dates of the civil part together: steps and heart rate are fetched by UTC day,
        sleep and daily types by civil date, and one fetch must cover both readings. The end's
        own date is included (sleep is filed under the date it ends, even at midnight); with
        only a civil part, a day either side covers the UTC days of any offset."""
        spans = [(a.date(), b.date()) for a, b in ((self.start, self.end), (self.civil_start, self.civil_end))
                 if a is not None and b is not None]
        first, last = min(f for f, _ in spans), max(lst for _, lst in spans)
        if self.start is None:
            first, last = first - timedelta(days=1), last + timedelta(days=1)
        return first, last

    def length(self) -> timedelta:
        parts = [b - a for a, b in ((self.start, self.end), (self.civil_start, self.civil_end))
                 if a is not None and b is not None]
        return max(parts)


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification: whose data (the vendor's user id), what happened, to which data type, when."""

    health_user_id: str
    operation: Operation
    data_type: str
    intervals: tuple[Interval, ...]

    def dates(self) -> tuple[date, date]:
        """The first and last date any of the intervals touches (``Interval.dates``)."""
        spans = [interval.dates() for interval in self.intervals]
        return min(first for first, _ in spans), max(last for _, last in spans)


def is_verification(body: bytes) -> bool:
    """Whether ``body`` is the subscriber handshake ``{"type": "verification"}``."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("type") == "verification"


def parse_notifications(body: bytes) -> list[Notification]:
    """The notifications in ``body``: one object, an array of them, or the older single-interval
    shape (module docstring); ``MalformedNotification`` for anything else."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedNotification("not JSON") from None
    items = document if isinstance(document, list) else [document]
    if not items:
        raise MalformedNotification("an empty array")
    readable, unreadable = read_notifications(items)
    if not readable:
        raise unreadable[0]
    return readable


def read_notifications(items: list[Any]) -> tuple[list[Notification], list[MalformedNotification]]:
    """Each item of a body on its own: the readable notifications, and why the others are not.

    Google retries a refused body whole for 7 days and then drops it, so one unreadable item
    must not cost the readable ones beside it: the gateway acts on these, counts the rest."""
    readable, unreadable = [], []
    for item in items:
        try:
            readable.append(_notification(item))
        except MalformedNotification as error:
            unreadable.append(error)
    return readable, unreadable


def _notification(item: Any) -> Notification:
    data = item.get("data") if isinstance(item, dict) else None
    if not isinstance(data, dict):
        raise MalformedNotification("no data object")
    user, operation, data_type = data.get("healthUserId"), data.get("operation"), data.get("dataType")
    if not isinstance(user, str) or not user.removeprefix("users/"):
        raise MalformedNotification("no healthUserId")
    if operation not in _OPERATIONS:
        raise MalformedNotification("operation is neither UPSERT nor DELETE")
    if not isinstance(data_type, str) or not _DATA_TYPE.fullmatch(data_type):
        raise MalformedNotification("dataType is not a kebab-case name")
    intervals = _intervals(data)
    # a participant may delete years at once; an update that long is a broken body
    longest = MAX_DELETE_INTERVAL if operation == "DELETE" else MAX_INTERVAL
    if any(part.length() > longest for part in intervals):
        raise MalformedNotification(f"an interval is longer than {longest.days} days")
    return Notification(user.removeprefix("users/"), operation, data_type, intervals)


def _intervals(data: dict[str, Any]) -> tuple[Interval, ...]:
    if "intervals" in data:
        raw = data["intervals"]
        if not isinstance(raw, list) or not raw:
            raise MalformedNotification("intervals is not a non-empty array")
        return tuple(_interval(part) for part in raw)
    return (_interval(data),)  # the older shape: one interval's parts directly under data


def _interval(part: Any) -> Interval:
    if not isinstance(part, dict):
        raise MalformedNotification("an interval is not an object")
    start, end = _pair(part.get("physicalTimeInterval"), "startTime", "endTime", _instant)
    civil_start, civil_end = _pair(part.get("civilDateTimeInterval"), "startDateTime", "endDateTime", _civil_parts)
    if civil_start is None:
        civil_start, civil_end = _pair(part.get("civilIso8601TimeInterval"), "startTime", "endTime", _civil_text)
    if start is None and civil_start is None:
        raise MalformedNotification("an interval has neither physical nor civil time")
    return Interval(start, end, civil_start, civil_end)


def _pair(value: Any, first: str, last: str, read: Callable[[Any], datetime]
          ) -> tuple[datetime, datetime] | tuple[None, None]:
    """An interval part's (start, end), checked for order and length; (None, None) if absent."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise MalformedNotification("an interval part is not an object")
    try:
        start, end = read(value[first]), read(value[last])
    except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: a date at the calendar's edge
        raise MalformedNotification(f"an interval needs a valid {first} and {last}") from None
    if end < start:
        raise MalformedNotification("an interval ends before it starts")
    return start, end


def _instant(value: Any) -> datetime:
    """RFC 3339 with an offset (Google writes UTC ``Z``), as aware UTC."""
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("an instant needs an offset")
    return parsed.astimezone(UTC)


def _civil_text(value: Any) -> datetime:
    """``YYYY-MM-DDTHH:MM:SS`` wall-clock time; a stray offset is dropped (the wall time is the fact)."""
    return datetime.fromisoformat(str(value)).replace(tzinfo=None)


def _civil_parts(value: Any) -> datetime:
    """``{date: {year, month, day}, time: {hours, minutes, seconds, nanos}}``; time defaults to
    midnight, and ``24:00`` (allowed by Google's TimeOfDay for an end) is the next midnight."""
    day, clock = value["date"], value.get("time") or {}
    start = datetime(int(day["year"]), int(day["month"]), int(day["day"]))
    hours = int(clock.get("hours", 0))
    if not 0 <= hours <= 24:
        raise ValueError("hours out of range")
    parts = [int(clock.get(name, 0)) for name in ("minutes", "seconds", "nanos")]
    if hours == 24 and any(parts):
        raise ValueError("only 24:00:00 may follow the last hour")
    minutes, seconds, nanos = parts
    if not (0 <= minutes < 60 and 0 <= seconds < 60 and 0 <= nanos < 1_000_000_000):
        raise ValueError("time out of range")
    return start + timedelta(hours=hours, minutes=minutes, seconds=seconds, microseconds=nanos // 1000)


# ====================================================================== keys and signatures
class MalformedKeyset(ValueError):
    """The keyset document holds no key we can verify with; the message says why."""


_Prefix = Literal["TINK", "CRUNCHY", "LEGACY", "RAW"]
_HASHES: dict[int, type[hashes.HashAlgorithm]] = {3: hashes.SHA256, 2: hashes.SHA384, 4: hashes.SHA512}
_CURVES: dict[int, ec.EllipticCurve] = {2: ec.SECP256R1(), 3: ec.SECP384R1(), 4: ec.SECP521R1()}
_JWK_CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(),
                                            "P-521": ec.SECP521R1()}


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One verifying key: its id in the keyset (None: the keyset gave none), the prefix Tink puts
    on its signatures, and the hash and signature encoding it signs with."""

    key_id: int | None
    key: ec.EllipticCurvePublicKey
    prefix: _Prefix = "RAW"
    hash: type[hashes.HashAlgorithm] = hashes.SHA256
    p1363: bool = False  # r ‖ s instead of DER (a Tink parameter; Google is said to use DER)

    def verifies(self, signature: bytes, body: bytes) -> bool:
        data = body + b"\x00" if self.prefix == "LEGACY" else body
        size = (self.key.curve.key_size + 7) // 8
        candidates = [signature]
        if len(signature) == 2 * size:  # r ‖ s: however the parameters say, the length tells
            r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            candidates = [encode_dss_signature(r, s), signature] if self.p1363 else [signature,
                                                                                     encode_dss_signature(r, s)]
        for candidate in candidates:
            try:
                self.key.verify(candidate, data, ec.ECDSA(self.hash()))
            except InvalidSignature:
                continue
            return True
        return False


@dataclass(frozen=True, slots=True)
class Keyset:
    """The keys a signature may verify under (never empty)."""

    keys: tuple[PublicKey, ...]

    def ids(self) -> frozenset[int]:
        return frozenset(key.key_id for key in self.keys if key.key_id is not None)


class Verdict(Enum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN_KEY = "unknown_key"  # Tink-prefixed with a key id the keyset lacks: refetch, keys rotate


def signature_values(headers: Mapping[str, str]) -> list[str]:
    """The signature header values present, under either documented name."""
    return [value for name in SIGNATURE_HEADERS if (value := headers.get(name))]


def verify_signature(body: bytes, signature: str, keyset: Keyset) -> Verdict:
    """Whether ``signature`` (a header value) signs ``body`` under a key of ``keyset``."""
    raw = _b64(signature)
    if raw is None or not raw:
        return Verdict.INVALID
    attempts: list[tuple[PublicKey, bytes]] = []
    prefixed_id = int.from_bytes(raw[1:5], "big") if len(raw) > 5 and raw[0] in (0, 1) else None
    if prefixed_id is not None:
        attempts += [(key, raw[5:]) for key in keyset.keys if key.key_id == prefixed_id]
    attempts += [(key, raw) for key in keyset.keys]  # RAW keys, or a prefix that was a signature byte
    if any(key.verifies(payload, body) for key, payload in attempts):
        return Verdict.VALID
    if raw[0] == 1 and prefixed_id is not None and prefixed_id not in keyset.ids():
        return Verdict.UNKNOWN_KEY
    return Verdict.INVALID


def _b64(text: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional; None if it is neither."""
    cleaned = text.strip().replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_keyset(body: bytes) -> Keyset:
    """The usable keys of a Tink JSON keyset, a JWKS or PEM keys (module docstring)."""
    if body.lstrip().startswith(b"-----BEGIN"):
        try:
            keys = _pem_blocks(body.decode("ascii", errors="replace"))
        except (ValueError, UnsupportedAlgorithm):
            raise MalformedKeyset("a PEM block is not a public key") from None
    else:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise MalformedKeyset("neither JSON nor PEM") from None
        if not isinstance(document, dict):
            raise MalformedKeyset("not a JSON object")
        entries = document.get("key", document.get("keys"))
        if not isinstance(entries, list):
            raise MalformedKeyset('no "key" (Tink) or "keys" (JWKS, PEM) array')
        keys = [key for entry in entries if isinstance(entry, dict) and (key := _entry(entry)) is not None]
    if not keys:
        raise MalformedKeyset("no usable ECDSA public key")
    return Keyset(tuple(keys))


def _entry(entry: dict[str, Any]) -> PublicKey | None:
    """One keyset entry as a key, or None when it is not one we may verify with."""
    try:
        if "keyData" in entry:
            return _tink_entry(entry)
        if "pem" in entry:
            (key,) = _pem_blocks(str(entry["pem"]), _key_id(entry.get("keyId", entry.get("kid"))))
            return key
        if entry.get("kty") == "EC":
            return _jwk_entry(entry)
    except (KeyError, TypeError, ValueError, UnsupportedAlgorithm):
        return None  # one broken entry does not take the good ones with it
    return None


def _tink_entry(entry: dict[str, Any]) -> PublicKey | None:
    data = entry["keyData"]
    if (data.get("typeUrl") != TINK_ECDSA_PUBLIC_KEY or entry.get("status", "ENABLED") != "ENABLED"
            or data.get("keyMaterialType", "ASYMMETRIC_PUBLIC") != "ASYMMETRIC_PUBLIC"):
        return None
    prefix = entry.get("outputPrefixType", "TINK")
    if prefix not in ("TINK", "CRUNCHY", "LEGACY", "RAW"):
        return None
    fields = _protobuf(base64.b64decode(data["value"], validate=True))
    params = _protobuf(_bytes(fields.get(2, b"")))
    curve = _CURVES.get(_int(params.get(2, 2)))
    hash_type = _HASHES.get(_int(params.get(1, 3)))
    if curve is None or hash_type is None:
        return None
    x, y = int.from_bytes(_bytes(fields[3]), "big"), int.from_bytes(_bytes(fields[4]), "big")
    key = ec.EllipticCurvePublicNumbers(x, y, curve).public_key()  # ValueError: not on the curve
    return PublicKey(_key_id(entry.get("keyId")), key, prefix, hash_type, _int(params.get(3, 2)) == 1)


def _jwk_entry(entry: dict[str, Any]) -> PublicKey | None:
    curve = _JWK_CURVES.get(str(entry.get("crv")))
    if curve is None or entry.get("use", "sig") != "sig":
        return None
    x, y = (int.from_bytes(_b64url(str(entry[name])), "big") for name in ("x", "y"))
    key = ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
    return PublicKey(_key_id(entry.get("kid")), key)


def _pem_blocks(text: str, key_id: int | None = None) -> list[PublicKey]:
    blocks = re.findall(r"-----BEGIN PUBLIC KEY-----[^-]+-----END PUBLIC KEY-----", text)
    keys = []
    for block in blocks:
        loaded = serialization.load_pem_public_key(block.encode())
        if isinstance(loaded, ec.EllipticCurvePublicKey):
            keys.append(PublicKey(key_id, loaded))
    return keys


def _key_id(value: Any) -> int | None:
    """A uint32 key id (Tink writes a number; a string of digits is read too), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        number = int(value)
        return number if 0 <= number < 1 << 32 else None
    return None


def _b64url(text: str) -> bytes:
    decoded = _b64(text)
    if decoded is None:
        raise ValueError("not base64")
    return decoded


def _protobuf(data: bytes) -> dict[int, int | bytes]:
    """The fields of a serialized protobuf message: varints and length-delimited bytes (the last
    occurrence wins); fixed-width fields are skipped. ValueError when truncated."""
    fields: dict[int, int | bytes] = {}
    at = 0
    while at < len(data):
        tag, at = _varint(data, at)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            fields[number], at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            if at + size > len(data):
                raise ValueError("truncated field")
            fields[number], at = data[at:at + size], at + size
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire}")
    if at != len(data):
        raise ValueError("truncated field")
    return fields


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def _bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError("expected bytes")
    return value


def _int(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise ValueError("expected a number")
    return value


# ====================================================================== where the keyset is
def keyset_url(gateway: GatewaySettings, vendors: VendorSettings) -> str:
    """Where to fetch the keyset: the configured URL, except that a gateway pointed at the
    simulator (``vendors.api_base``) with the default URL uses the simulator's copy, which
    signs the simulated notifications."""
    if vendors.api_base and gateway.google_keyset_url == KEYSET_URL:
        return vendors.api_base.rstrip("/") + KEYSET_PATH
    return gateway.google_keyset_url


class KeysetCache:
    """The keyset, fetched when first needed, refreshed daily, used stale when refreshes fail.

    ::

        keysets = KeysetCache(keyset_url(settings.gateway, settings.vendors))
        keyset = await keysets.current()   # None: no usable keys (answer 503)
        ...
        await keysets.aclose()

    A refresh runs in the background while the cached keys are usable, so an ack never waits
    for it; only a gateway without keys (first use, or past ``max_stale_s``) fetches inline.
    Fetches are spaced ``retry_interval_s`` apart after a failure, so an outage does not turn
    every notification into a request to the keyset host.

    :param url: the keyset's URL: HTTPS, or plain HTTP to this machine (the simulator).
    :param refresh_interval_s: age at which the keyset is fetched again.
    :param max_stale_s: age past which the keys are dropped (Google retries for 7 days).
    :param retry_interval_s: the least time between two fetch attempts.
    :param timeout_s: one fetch's limit.
    :param clock: epoch seconds (injectable for tests).
    """

    def __init__(self, url: str, *, refresh_interval_s: float = 86400.0, max_stale_s: float = 7 * 86400.0,
                 retry_interval_s: float = 30.0, timeout_s: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._url = _checked(url)
        self._refresh_s, self._stale_s, self._retry_s = refresh_interval_s, max_stale_s, retry_interval_s
        self._timeout, self._clock = aiohttp.ClientTimeout(total=timeout_s), clock
        self._keyset: Keyset | None = None
        self._fetched_at: float | None = None  # the last successful fetch
        self._tried_at: float | None = None  # the last attempt, successful or not
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        ref = weakref.ref(self)
        KEYSET_AGE.set_function(lambda: cache.age_s() if (cache := ref()) is not None else math.nan)

    @property
    def url(self) -> str:
        return self._url

    def retarget(self, url: str) -> None:
        """Fetch from ``url`` from now on, at the next use: the demo learns the simulator's
        address only after the gateway is up. Keys already fetched stay until replaced."""
        self._url, self._tried_at = _checked(url), None

    def age_s(self) -> float:
        """Seconds since the last successful fetch (+Inf: none yet)."""
        return math.inf if self._fetched_at is None else self._clock() - self._fetched_at

    def keyset(self) -> Keyset | None:
        """The cached keys while they are usable; past ``max_stale_s`` they are dropped."""
        if self._keyset is not None and self.age_s() > self._stale_s:
            self._keyset = None
            FETCHES.labels("expired").inc()
        return self._keyset

    async def current(self) -> Keyset | None:
        """The keys to verify with now, refreshing as due (class docstring)."""
        keyset = self.keyset()
        if keyset is None:
            if self._in_flight() or self._may_try():
                await self.refresh()
            return self.keyset()
        if self.age_s() >= self._refresh_s and self._may_try():
            self._start_refresh()
        return keyset

    async def after_unknown_key(self) -> Keyset | None:
        """A signature named a key id we lack (keys rotate): refetch now, unless one was just tried."""
        if self._may_try():
            await self.refresh()
        return self.keyset()

    async def refresh(self) -> None:
        """Fetch now (joining a fetch already under way); the outcome is counted, never raised."""
        await asyncio.shield(self._start_refresh())

    async def idle(self) -> None:
        """Wait for a fetch under way, if any (tests; shutdown)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def aclose(self) -> None:
        if self._task is not None and self._in_flight():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _in_flight(self) -> bool:
        return self._task is not None and not self._task.done()

    def _may_try(self) -> bool:
        return self._tried_at is None or self._clock() - self._tried_at >= self._retry_s

    def _start_refresh(self) -> asyncio.Task[None]:
        task = self._task
        if task is None or task.done():
            self._tried_at = self._clock()
            task = self._task = asyncio.ensure_future(self._fetch())
        return task

    async def _fetch(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(self._url, allow_redirects=False) as answer:
                status, body = answer.status, b""
                # ``read(n)`` returns what is buffered; the body may come in several chunks
                async for chunk in answer.content.iter_any():
                    body += chunk
                    if len(body) > _MAX_KEYSET_BYTES:
                        break
        except (aiohttp.ClientError, TimeoutError) as error:
            self._failed("unreachable", type(error).__name__)
            return
        if status != 200 or len(body) > _MAX_KEYSET_BYTES:
            self._failed("http_error", f"HTTP {status}" if status != 200 else "larger than 1 MiB")
            return
        try:
            keyset = parse_keyset(body)
        except MalformedKeyset as error:
            self._failed("malformed", str(error))
            return
        self._keyset, self._fetched_at = keyset, self._clock()
        FETCHES.labels("ok").inc()

    def _failed(self, outcome: str, why: str) -> None:
        """Count and say it (at most once per ``retry_interval_s``: attempts are spaced so)."""
        FETCHES.labels(outcome).inc()
        usable = "no keys" if self._keyset is None else f"using keys {self.age_s():.0f} s old"
        logger.warning("the Google Health keyset fetch from %s failed (%s): %s", self._url, why, usable)


def _checked(url: str) -> str:
    """Keys decide what the gateway believes: fetch them over TLS, except from this machine."""
    if not (url.startswith("https://") or (url.startswith("http://") and is_loopback(url))):
        raise ConfigurationError(f"WEARABLES_GOOGLE_KEYSET_URL={url!r}: the keyset must come over https "
                                 "(plain http only from this machine, the simulator)")
    return url

