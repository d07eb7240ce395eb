"""Fitbit's wire facts: the signature rule against an independent HMAC (openssl), the day paths
as the API documents them, and a scope for every data type we read."""

from __future__ import annotations

from connectors.vendors import fitbit_spec


def test_the_signature_is_base64_hmac_sha1_keyed_with_the_secret_and_an_ampersand() -> None:
    body = b'[{"collectionType":"activities","date":"2026-11-20","ownerId":"ABC123"}]'
    # printf '%s' "$body" | openssl dgst -sha1 -hmac 'demo-fitbit-client-secret&' -binary | base64
    assert fitbit_spec.signature(body, "demo-fitbit-client-secret") == "iQNtuUgzyyfTnm+hBaOVYwtE48Q="
    assert fitbit_spec.signature(body, "another-secret") != fitbit_spec.signature(body, "demo-fitbit-client-secret")


def test_day_paths_and_collections() -> None:
    assert {t: (path.format(day="2026-11-20"), detail) for t, (path, detail) in fitbit_spec.DAY_PATHS.items()} == {
        "activities-steps-intraday": ("/1/user/-/activities/steps/date/2026-11-20/1d/1min.json", "1min"),
        "activities-heart-intraday": ("/1/user/-/activities/heart/date/2026-11-20/1d/1min.json", "1min"),
        "sleep": ("/1.2/user/-/sleep/date/2026-11-20.json", None),
        "activities-summary": ("/1/user/-/activities/date/2026-11-20.json", None),
    }
    assert fitbit_spec.UNDATED_PATHS == {"devices": "/1/user/-/devices.json"}
    # every dated type is fetched after some webhook collection, and collections name only our types
    assert sorted(t for types in fitbit_spec.COLLECTIONS.values() for t in types) == sorted(fitbit_spec.DATA_TYPES)


def test_every_data_type_has_its_scope_and_the_consent_asks_for_them_and_the_profile() -> None:
    assert fitbit_spec.SCOPE_OF == {"activities-steps-intraday": "activity", "activities-heart-intraday": "heartrate",
                                    "activities-summary": "activity", "sleep": "sleep", "devices": "settings"}
    assert set(fitbit_spec.SCOPES) == {*fitbit_spec.SCOPE_OF.values(), fitbit_spec.PROFILE_SCOPE}
