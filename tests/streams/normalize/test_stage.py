"""Property tests: whatever arrives on a raw topic, the stage returns records and never raises,
and every input sample is accounted for exactly once as a sample or a reject."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.dead_letter import DeadLetter
from models.errors import Reason
from models.providers import Provider
from models.raw import RawPage
from models.samples import SampleBatch
from streams.normalize.stage import normalize_record
from tests.builders import SECRET, fitbit_intraday_body

KEY = b"R0123456789abcdef0123"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)
loose_value = st.one_of(st.integers(-2000, 3000), st.floats(allow_nan=True, allow_infinity=True),
                        st.text(max_size=5), st.none(), st.booleans(), st.just("42"))
loose_time = st.one_of(
    st.builds(lambda h, m, s: f"{h:02d}:{m:02d}:{s:02d}", st.integers(0, 25), st.integers(0, 61), st.integers(0, 59)),
    st.text(max_size=8), st.none(), st.integers(-(2**63), 2**63 - 1))
entries = st.lists(st.one_of(st.fixed_dictionaries({"time": loose_time, "value": loose_value}),
                             st.fixed_dictionaries({"value": loose_value}), json_values), max_size=80)


def _raw(data_type: str, body: bytes, provider: Provider = Provider.FITBIT) -> bytes:
    return RawPage(provider=provider, data_type=data_type, date="2026-11-01", body=body, detail="1min",
                   timezone="America/New_York").to_bytes()


@given(st.binary(max_size=300))
def test_random_bytes_become_one_dead_letter(value: bytes) -> None:
    output = normalize_record(KEY, value, topic="raw.fitbit", secret=SECRET)
    assert output.batches == [] and len(output.letters) == 1
    assert output.letters[0].original == value


@given(json_values, st.sampled_from(["activities-heart-intraday", "activities-steps-intraday", "sleep", "devices",
                                     "activities-summary"]))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_random_json_pages_never_raise(body: Any, data_type: str) -> None:
    output = normalize_record(KEY, _raw(data_type, orjson.dumps(body)), topic="raw.fitbit", secret=SECRET)
    assert output.samples + output.rejected == output.input_samples
    for _, value in output.batches:
        batch = SampleBatch.from_bytes(value)
        assert len(batch) > 0 or batch.rejected_timestamps  # an empty batch only carries a date's rejects


@given(json_values, st.sampled_from(["steps", "heart-rate", "sleep", "daily-resting-heart-rate"]))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_random_google_pages_never_raise(points: Any, data_type: str) -> None:
    body = orjson.dumps({"dataPoints": points if isinstance(points, list) else [points]})
    output = normalize_record(KEY, _raw(data_type, body, Provider.GOOGLE_HEALTH), topic="raw.google_health",
                              secret=SECRET)
    assert output.samples + output.rejected == output.input_samples


@given(entries, st.sampled_from(["heart", "steps"]), loose_value)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_every_dataset_entry_is_a_sample_or_a_reject_exactly_once(dataset: list[Any], kind: str, daily: Any) -> None:
    body = fitbit_intraday_body(kind, date(2026, 11, 1), dataset, daily=daily if kind == "steps" else None)
    output = normalize_record(KEY, _raw(f"activities-{kind}-intraday", body), topic="raw.fitbit", secret=SECRET)
    daily_figures = 1 if kind == "steps" and daily is not None else 0
    assert output.input_samples == len(dataset) + daily_figures
    rejected = sum(DeadLetter.from_bytes(letter.to_bytes()).count for letter in output.letters)
    accepted = sum(len(SampleBatch.from_bytes(value)) for _, value in output.batches)
    assert accepted + rejected == output.input_samples
    assert all(letter.reason is not Reason.INTERNAL_ERROR for letter in output.letters)


def test_bad_key_is_a_dead_letter() -> None:
    body = fitbit_intraday_body("steps", date(2026, 1, 1), [{"time": "00:00:00", "value": 1}])
    for key in (None, b"", b"P1234567890 with spaces", b"\xff\xfe"):
        output = normalize_record(key, _raw("activities-steps-intraday", body), topic="raw.fitbit", secret=SECRET)
        assert [letter.reason for letter in output.letters] == [Reason.BAD_KEY]
