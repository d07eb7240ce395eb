"""Google Health notifications on the wire: every documented body shape read (object, array, the
older single interval), civil time in both forms, garbage refused with a reason; keysets in Tink,
JWKS and PEM form; signatures with and without Tink's prefix, forged ones refused; the keyset
cache fetching, refreshing, living on stale keys for 7 days and no longer."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from prometheus_client import REGISTRY

from connectors.vendors.google_health_notifications import (
    KEYSET_PATH,
    KEYSET_URL,
    MAX_INTERVAL,
    TINK_ECDSA_PUBLIC_KEY,
    Interval,
    KeysetCache,
    MalformedKeyset,
    MalformedNotification,
    Notification,
    Verdict,
    is_verification,
    keyset_url,
    parse_keyset,
    parse_notifications,
    read_notifications,
    signature_values,
    verify_signature,
)
from models.errors import ConfigurationError
from runtime.settings import GatewaySettings, Settings

PHYSICAL = {"startTime": "2026-10-01T22:00:00Z", "endTime": "2026-10-02T06:30:00.123456789Z"}
CIVIL_PARTS = {"startDateTime": {"date": {"year": 2026, "month": 10, "day": 1},
                                 "time": {"hours": 18, "minutes": 0, "seconds": 0, "nanos": 0}},
               "endDateTime": {"date": {"year": 2026, "month": 10, "day": 2},
                               "time": {"hours": 2, "minutes": 30, "seconds": 5, "nanos": 250_000_000}}}
CIVIL_TEXT = {"startTime": "2026-10-01T18:00:00", "endTime": "2026-10-02T02:30:05"}


def _data(**extra: object) -> dict[str, object]:
    data: dict[str, object] = {"version": "1", "healthUserId": "1234567890", "operation": "UPSERT",
                               "dataType": "steps", "intervals": [{"physicalTimeInterval": PHYSICAL,
                                                                   "civilDateTimeInterval": CIVIL_PARTS}]}
    data.update(extra)
    return data


# ---------------------------------------------------------------------- bodies
def test_the_documented_object() -> None:
    body = orjson.dumps({"data": _data(clientProvidedSubscriptionName="sub-1")})
    assert parse_notifications(body) == [Notification("1234567890", "UPSERT", "steps", (Interval(
        datetime(2026, 10, 1, 22, tzinfo=UTC), datetime(2026, 10, 2, 6, 30, 0, 123456, tzinfo=UTC),
        datetime(2026, 10, 1, 18), datetime(2026, 10, 2, 2, 30, 5, 250_000)),))]


def test_an_array_of_them_and_civil_time_as_text() -> None:
    second = _data(operation="DELETE", dataType="daily-resting-heart-rate",
                   intervals=[{"civilIso8601TimeInterval": CIVIL_TEXT}, {"physicalTimeInterval": PHYSICAL}])
    first, deletion = parse_notifications(orjson.dumps([{"data": _data()}, {"data": second}]))
    assert first.operation == "UPSERT" and deletion.operation == "DELETE"
    assert deletion.data_type == "daily-resting-heart-rate"
    assert deletion.intervals == (
        Interval(None, None, datetime(2026, 10, 1, 18), datetime(2026, 10, 2, 2, 30, 5)),
        Interval(datetime(2026, 10, 1, 22, tzinfo=UTC), datetime(2026, 10, 2, 6, 30, 0, 123456, tzinfo=UTC),
                 None, None))


def test_the_older_shape_with_one_interval_under_data() -> None:
    data = {"healthUserId": "users/77", "operation": "UPSERT", "dataType": "sleep",
            "civilIso8601TimeInterval": CIVIL_TEXT}
    (found,) = parse_notifications(orjson.dumps({"data": data}))
    assert found.health_user_id == "77"  # a "users/" resource name is read as the bare id
    assert found.intervals == (Interval(None, None, datetime(2026, 10, 1, 18), datetime(2026, 10, 2, 2, 30, 5)),)
    both = {**data, "physicalTimeInterval": PHYSICAL}
    (found,) = parse_notifications(orjson.dumps({"data": both}))
    assert found.intervals[0].start == datetime(2026, 10, 1, 22, tzinfo=UTC)


def test_civil_parts_default_to_midnight_and_end_at_24() -> None:
    civil = {"startDateTime": {"date": {"year": 2026, "month": 2, "day": 28}},
             "endDateTime": {"date": {"year": 2026, "month": 2, "day": 28}, "time": {"hours": 24}}}
    (found,) = parse_notifications(orjson.dumps({"data": _data(intervals=[{"civilDateTimeInterval": civil}])}))
    assert found.intervals[0].civil_start == datetime(2026, 2, 28)
    assert found.intervals[0].civil_end == datetime(2026, 3, 1)
    # with only a civil part, a day either side covers the UTC days of any offset
    assert found.dates() == (date(2026, 2, 27), date(2026, 3, 2))


def test_dates_are_the_union_of_utc_and_civil_dates() -> None:
    # 22:00Z on Oct 1 to 06:30Z on Oct 2; civil 18:00 Oct 1 to 02:30 Oct 2 (UTC-4)
    (found,) = parse_notifications(orjson.dumps({"data": _data()}))
    assert found.dates() == (date(2026, 10, 1), date(2026, 10, 2))
    east = Interval(datetime(2026, 10, 1, 14, tzinfo=UTC), datetime(2026, 10, 2, 14, tzinfo=UTC),
                    datetime(2026, 10, 2), datetime(2026, 10, 3))  # UTC+10: a civil day starts the UTC day before
    # the end's own date is in (a sleep ending at midnight is filed under that date)
    assert east.dates() == (date(2026, 10, 1), date(2026, 10, 3))
    west = Interval(datetime(2026, 10, 2, 4, tzinfo=UTC), datetime(2026, 10, 3, 4, tzinfo=UTC),
                    datetime(2026, 10, 2), datetime(2026, 10, 3))
    assert west.dates() == (date(2026, 10, 2), date(2026, 10, 3))
    night = Interval(datetime(2026, 10, 1, 14, tzinfo=UTC), datetime(2026, 10, 1, 20, tzinfo=UTC),
                     datetime(2026, 10, 2), datetime(2026, 10, 2, 6))  # all of it on Oct 1 in UTC, Oct 2 locally
    assert night.dates() == (date(2026, 10, 1), date(2026, 10, 2))
    evening = Interval(datetime(2026, 10, 2, 1, tzinfo=UTC), datetime(2026, 10, 2, 3, tzinfo=UTC),
                       datetime(2026, 10, 1, 21), datetime(2026, 10, 1, 23))  # UTC-4: Oct 2 in UTC, Oct 1 locally
    assert evening.dates() == (date(2026, 10, 1), date(2026, 10, 2))
    assert Interval(None, None, datetime(2026, 10, 1, 21), datetime(2026, 10, 1, 23)).dates() == (
        date(2026, 9, 30), date(2026, 10, 2))  # civil only: a day either side for the UTC days


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json", "not JSON"),
    (b"[]", "empty array"),
    (b'"steps"', "no data object"),
    (orjson.dumps({"type": "notification", "user": "users/1"}), "no data object"),
    (orjson.dumps({"data": _data(healthUserId="")}), "no healthUserId"),
    (orjson.dumps({"data": _data(operation="PATCH")}), "operation"),
    (orjson.dumps({"data": _data(dataType="Heart Rate")}), "kebab-case"),
    (orjson.dumps({"data": _data(intervals=[])}), "non-empty array"),
    (orjson.dumps({"data": _data(intervals=[{}])}), "neither physical nor civil"),
    (orjson.dumps({"data": {k: v for k, v in _data().items() if k != "intervals"}}), "neither physical nor civil"),
    (orjson.dumps({"data": _data(intervals=[{"physicalTimeInterval": {"startTime": "yesterday",
                                                                      "endTime": "today"}}])}), "valid startTime"),
    (orjson.dumps({"data": _data(intervals=[{"physicalTimeInterval": {"startTime": "2026-10-01T00:00:00",
                                                                      "endTime": "2026-10-02T00:00:00"}}])}),
     "valid startTime"),  # an instant without an offset is not RFC 3339
    (orjson.dumps({"data": _data(intervals=[{"physicalTimeInterval": {"startTime": PHYSICAL["endTime"],
                                                                      "endTime": PHYSICAL["startTime"]}}])}),
     "ends before"),
    (orjson.dumps({"data": _data(intervals=[{"civilIso8601TimeInterval": {"startTime": "2020-01-01T00:00:00",
                                                                          "endTime": "2026-01-01T00:00:00"}}])}),
     "longer than 400 days"),
])
def test_garbage_is_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedNotification) as refused:
        parse_notifications(body)
    assert reason in refused.value.reason


def test_the_verification_body_is_told_apart() -> None:
    assert is_verification(b'{"type": "verification"}')
    assert not is_verification(orjson.dumps({"data": _data()}))
    assert not is_verification(b"[]") and not is_verification(b"{")


# ---------------------------------------------------------------------- keysets and signatures
def _signed_int(number: int, pad: bool) -> bytes:
    size = number.bit_length() // 8 + 1 if pad else (number.bit_length() + 7) // 8
    return number.to_bytes(size, "big")


def _field(number: int, value: bytes) -> bytes:
    return bytes([number << 3 | 2, len(value)]) + value


def tink_keyset(*keys: tuple[ec.EllipticCurvePrivateKey, int], pad: bool = True, prefix: str = "TINK",
                status: str = "ENABLED", encoding: int = 2) -> bytes:
    """A Tink JSON public keyset written here by hand (x, y padded as Java's BigInteger does)."""
    entries = []
    for private, key_id in keys:
        numbers = private.public_key().public_numbers()
        params = bytes([0x08, 3, 0x10, 2, 0x18, encoding])  # SHA256, NIST_P256, DER (2) / IEEE_P1363 (1)
        value = _field(2, params) + _field(3, _signed_int(numbers.x, pad)) + _field(4, _signed_int(numbers.y, pad))
        entries.append({"keyData": {"typeUrl": TINK_ECDSA_PUBLIC_KEY, "value": base64.b64encode(value).decode(),
                                    "keyMaterialType": "ASYMMETRIC_PUBLIC"},
                        "status": status, "keyId": key_id, "outputPrefixType": prefix})
    return orjson.dumps({"primaryKeyId": keys[0][1], "key": entries})


def sign(private: ec.EllipticCurvePrivateKey, body: bytes, key_id: int | None = None, *,
         urlsafe: bool = False, p1363: bool = False) -> str:
    der = private.sign(body, ec.ECDSA(hashes.SHA256()))
    if p1363:
        r, s = decode_dss_signature(der)
        der = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    raw = der if key_id is None else b"\x01" + key_id.to_bytes(4, "big") + der
    if urlsafe:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return base64.b64encode(raw).decode()


KEY, OTHER = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
BODY = orjson.dumps([{"data": _data()}])


@pytest.mark.parametrize("pad", [True, False])
def test_a_tink_keyset_verifies_prefixed_signatures(pad: bool) -> None:
    keyset = parse_keyset(tink_keyset((KEY, 0xDEADBEEF), (OTHER, 7), pad=pad))
    assert keyset.ids() == {0xDEADBEEF, 7}
    assert verify_signature(BODY, sign(KEY, BODY, 0xDEADBEEF), keyset) is Verdict.VALID
    assert verify_signature(BODY, sign(OTHER, BODY, 7, urlsafe=True), keyset) is Verdict.VALID
    assert verify_signature(BODY, sign(KEY, BODY), keyset) is Verdict.VALID  # no prefix: every key is tried
    assert verify_signature(BODY + b" ", sign(KEY, BODY, 0xDEADBEEF), keyset) is Verdict.INVALID  # tampered
    assert verify_signature(BODY, sign(KEY, BODY, 7), keyset) is Verdict.INVALID  # another key's id
    assert verify_signature(BODY, "not base64 !", keyset) is Verdict.INVALID


def test_forged_and_unknown_key_signatures() -> None:
    keyset = parse_keyset(tink_keyset((KEY, 1)))
    forger = ec.generate_private_key(ec.SECP256R1())
    assert verify_signature(BODY, sign(forger, BODY, 1), keyset) is Verdict.INVALID
    assert verify_signature(BODY, sign(forger, BODY), keyset) is Verdict.INVALID
    assert verify_signature(BODY, sign(forger, BODY, 99), keyset) is Verdict.UNKNOWN_KEY  # rotated? refetch
    assert verify_signature(BODY, "", keyset) is Verdict.INVALID


def test_raw_prefix_and_p1363_encoding() -> None:
    keyset = parse_keyset(tink_keyset((KEY, 5), prefix="RAW", encoding=1))
    assert verify_signature(BODY, sign(KEY, BODY, p1363=True), keyset) is Verdict.VALID
    assert verify_signature(BODY, sign(KEY, BODY), keyset) is Verdict.VALID


def test_disabled_and_foreign_keys_are_skipped() -> None:
    with pytest.raises(MalformedKeyset):
        parse_keyset(tink_keyset((KEY, 1), status="DISABLED"))
    mixed = orjson.loads(tink_keyset((KEY, 1)))
    mixed["key"].append({"keyData": {"typeUrl": "type.googleapis.com/google.crypto.tink.AesGcmKey",
                                     "value": "AAAA", "keyMaterialType": "SYMMETRIC"}, "status": "ENABLED",
                         "keyId": 2, "outputPrefixType": "TINK"})
    mixed["key"].append({"keyData": {"typeUrl": TINK_ECDSA_PUBLIC_KEY, "value": "////"}, "keyId": 3})
    assert parse_keyset(orjson.dumps(mixed)).ids() == {1}


def _jwk(private: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, str]:
    numbers = private.public_key().public_numbers()

    def b64url(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes(32, "big")).decode().rstrip("=")

    return {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x), "y": b64url(numbers.y), "kid": kid}


def _pem(private: ec.EllipticCurvePrivateKey) -> str:
    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_jwks_and_pem_keysets() -> None:
    jwks = parse_keyset(orjson.dumps({"keys": [_jwk(KEY, "42"), _jwk(OTHER, "not-a-number")]}))
    assert jwks.ids() == {42}
    assert verify_signature(BODY, sign(KEY, BODY, 42), jwks) is Verdict.VALID
    assert verify_signature(BODY, sign(OTHER, BODY), jwks) is Verdict.VALID
    pems = parse_keyset(orjson.dumps({"keys": [{"keyId": 9, "pem": _pem(KEY)}]}))
    assert pems.ids() == {9} and verify_signature(BODY, sign(KEY, BODY, 9), pems) is Verdict.VALID
    bare = parse_keyset((_pem(KEY) + _pem(OTHER)).encode())
    assert len(bare.keys) == 2 and verify_signature(BODY, sign(OTHER, BODY), bare) is Verdict.VALID


@pytest.mark.parametrize("body", [b"", b"nonsense", b"[]", b'{"keys": 1}', b'{"key": []}',
                                  b'{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}',
                                  b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"])
def test_keysets_without_a_usable_key_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedKeyset):
        parse_keyset(body)


def test_both_signature_header_names_are_read() -> None:
    assert signature_values({"GOOGLE-HEALTH-API-SIGNATURE": "a"}) == ["a"]
    assert signature_values({"X-HEALTHAPI-SIGNATURE": "b"}) == ["b"]
    assert signature_values({"Authorization": "c"}) == []


def test_the_keyset_url_follows_the_simulator_only_from_the_default() -> None:
    assert GatewaySettings.model_fields["google_keyset_url"].default == KEYSET_URL
    base = Settings.model_validate({"env": "demo"})
    assert keyset_url(base.gateway, base.vendors) == KEYSET_URL
    sim = base.with_overrides(vendor_api_base="http://127.0.0.1:9000/")
    assert keyset_url(sim.gateway, sim.vendors) == "http://127.0.0.1:9000" + KEYSET_PATH
    own = sim.with_overrides(google_keyset_url="https://keys.example.org/k.json")
    assert keyset_url(own.gateway, own.vendors) == "https://keys.example.org/k.json"


# ---------------------------------------------------------------------- the cache
def _fetches(outcome: str) -> float:
    return REGISTRY.get_sample_value("wearables_gateway_google_keyset_fetches_total", {"outcome": outcome}) or 0.0


@dataclass
class KeyHost:
    url: str
    keyset: bytes
    status: int = 200
    served: int = 0


@pytest.fixture
async def host() -> AsyncIterator[KeyHost]:
    found = KeyHost("", tink_keyset((KEY, 1)))

    async def serve(_: web.Request) -> web.Response:
        found.served += 1
        return web.Response(body=found.keyset, status=found.status, content_type="application/json")

    app = web.Application()
    app.router.add_get(KEYSET_PATH, serve)
    async with TestServer(app) as server:
        found.url = str(server.make_url(KEYSET_PATH))
        yield found


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_the_cache_refreshes_daily_and_lives_on_stale_keys_for_seven_days(host: KeyHost) -> None:
    clock = Clock()
    cache = KeysetCache(host.url, clock=clock, retry_interval_s=30)
    before = {o: _fetches(o) for o in ("ok", "http_error", "expired", "unreachable", "malformed")}
    try:
        assert cache.age_s() == float("inf")
        first = await cache.current()  # no keys yet: fetched inline
        assert first is not None and first.ids() == {1} and host.served == 1
        assert REGISTRY.get_sample_value("wearables_gateway_google_keyset_age_seconds") == 0.0
        clock.now += 3600
        assert await cache.current() is first and host.served == 1  # fresh enough: no fetch
        assert REGISTRY.get_sample_value("wearables_gateway_google_keyset_age_seconds") == 3600.0

        host.status = 503
        clock.now += 86400  # a day old: refreshed in the background, the cached keys answer meanwhile
        assert await cache.current() is first
        await cache.idle()
        assert host.served == 2 and _fetches("http_error") == before["http_error"] + 1
        assert await cache.current() is first and host.served == 2  # the next try waits retry_interval_s
        clock.now += 31
        assert await cache.current() is first
        await cache.idle()
        assert host.served == 3 and _fetches("http_error") == before["http_error"] + 2

        clock.now += 7 * 86400  # past 7 days since the last good fetch: the keys are dropped
        assert await cache.current() is None  # and the inline refetch failed too
        assert _fetches("expired") == before["expired"] + 1 and host.served == 4
        assert await cache.current() is None and host.served == 4  # spaced, not one fetch per call

        host.status, host.keyset = 200, b'{"key": "not a list"}'
        clock.now += 31
        assert await cache.current() is None and _fetches("malformed") == before["malformed"] + 1
        host.keyset = tink_keyset((OTHER, 2))
        clock.now += 31
        fresh = await cache.current()
        assert fresh is not None and fresh.ids() == {2} and _fetches("ok") == before["ok"] + 2
    finally:
        await cache.aclose()


async def test_an_unknown_key_id_refetches_and_retarget_moves_the_cache(host: KeyHost) -> None:
    clock = Clock()
    cache = KeysetCache("http://127.0.0.1:9" + KEYSET_PATH, clock=clock, timeout_s=2)  # nothing listens there
    unreachable = _fetches("unreachable")
    try:
        assert await cache.current() is None and _fetches("unreachable") == unreachable + 1
        cache.retarget(host.url)  # forgets the failed attempt: the next use fetches at once
        assert (await cache.current()) is not None and host.served == 1
        host.keyset = tink_keyset((KEY, 1), (OTHER, 2))  # a key was added (rotation)
        clock.now += 31
        rotated = await cache.after_unknown_key()
        assert rotated is not None and rotated.ids() == {1, 2} and host.served == 2
        assert await cache.after_unknown_key() is rotated and host.served == 2  # at most one try per 30 s
    finally:
        await cache.aclose()


def test_keys_come_over_tls_or_from_this_machine() -> None:
    with pytest.raises(ConfigurationError):
        KeysetCache("http://keys.example.org" + KEYSET_PATH)
    with pytest.raises(ConfigurationError):
        KeysetCache("ftp://127.0.0.1/k.json")
    assert KeysetCache(KEYSET_URL).url == KEYSET_URL


def test_an_unreadable_item_does_not_cost_the_readable_ones_beside_it() -> None:
    body = orjson.dumps([{"data": _data()}, {"data": _data(operation=None)}])
    (found,) = parse_notifications(body)
    assert found.operation == "UPSERT"
    readable, unreadable = read_notifications(orjson.loads(body))
    assert len(readable) == 1 and "operation" in unreadable[0].reason


def test_a_deletion_may_span_years_an_update_may_not() -> None:
    years = {"physicalTimeInterval": {"startTime": "2020-01-01T00:00:00Z", "endTime": "2026-11-01T00:00:00Z"}}
    (deletion,) = parse_notifications(orjson.dumps({"data": _data(operation="DELETE", intervals=[years])}))
    assert deletion.intervals[0].length() > MAX_INTERVAL
    with pytest.raises(MalformedNotification, match="longer than 400 days"):
        parse_notifications(orjson.dumps({"data": _data(intervals=[years])}))


def test_a_date_at_the_calendar_edge_is_malformed_not_a_crash() -> None:
    edge = {"physicalTimeInterval": {"startTime": "0001-01-01T00:00:00+14:00", "endTime": "0001-01-02T00:00:00Z"}}
    with pytest.raises(MalformedNotification):
        parse_notifications(orjson.dumps({"data": _data(intervals=[edge])}))
