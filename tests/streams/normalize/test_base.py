"""The dispatcher (streams/normalize/base.py): many pages normalized together give exactly what
each page gives alone (the shared vectorised pass must not let pages, zones or DST days leak into
one another); the registry checks each key once and calls each normalizer once per call."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import pytest

from connectors.simulator.cohort import SyntheticCohort
from models.errors import DecodeError, Reason
from models.providers import Provider
from models.raw import RawPage
from streams.normalize import Normalized, normalize, normalize_pages
from streams.normalize.base import Normalizer, PerPageNormalizer, Registry
from tests.builders import SECRET, fitbit_intraday_body, fitbit_page, google_page, minute_dataset

COHORT = SyntheticCohort(4, seed=11)


def _corpus() -> list[tuple[RawPage, str]]:
    pages: list[tuple[RawPage, str]] = []
    for first in (date(2026, 3, 7), date(2026, 10, 31)):  # both DST transitions, in the cohort's several zones
        for day in (first + timedelta(days=k) for k in range(3)):
            for n, person in enumerate(COHORT.participant_ids):
                zone = COHORT.timezone(person)
                for data_type, body in (("activities-steps-intraday", COHORT.fitbit_steps_intraday(person, day)),
                                        ("activities-heart-intraday", COHORT.fitbit_heart_intraday(person, day))):
                    pages.append((RawPage(provider=Provider.FITBIT, data_type=data_type, date=day.isoformat(),
                                          body=body, timezone=zone), f"R{n}"))
                pages.append((RawPage(provider=Provider.GOOGLE_HEALTH, data_type="heart-rate", date=day.isoformat(),
                                      body=COHORT.google_heart_rate(person, day), timezone=zone), f"R{n}"))
    day = date(2026, 11, 1)
    odd = [{"time": "00:00:00", "value": 15}, {"time": "01:30:00", "value": "80"}, {"time": "01:10:00", "value": 81},
           {"time": "25:00:00", "value": 70}, {"value": 70}, "junk", {"time": "1:00:00", "value": 3}]
    pages += [
        (fitbit_page("activities-heart-intraday", fitbit_intraday_body(
            "heart", day, odd, daily={"restingHeartRate": 61, "heartRateZones": [{"name": "Peak", "min": 150}]}),
            day=day), "R9"),
        (fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, minute_dataset([1, 2]), daily="3"),
                     day=day, timezone=None, utc_offset_ms=-18_000_000), "R9"),
        (fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, []), day=day), "R9"),
        (fitbit_page("activities-steps-intraday", b"not json", day=day), "R9"),
        (fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, minute_dataset([1])), day=day,
                     timezone=None), "R9"),
        (fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, minute_dataset([1])), day=day),
         ""),
        (google_page("heart-rate", [5, {"heartRate": {"beatsPerMinute": 70, "sampleTime": {
            "physicalTime": "2026-05-05T23:59:00Z", "utcOffset": "7200s"}}}]), "R9"),
    ]
    random.Random(5).shuffle(pages)
    return pages


def _comparable(result: Normalized | Exception) -> Any:
    if isinstance(result, DecodeError):
        return ("error", result.reason, result.field)
    assert isinstance(result, Normalized)
    return (result.input_samples, [b.to_dict() for b in result.batches],
            [(r.reason, r.count, r.detail, r.original) for r in result.rejects])


def test_many_pages_at_once_equal_each_page_alone() -> None:
    pages = _corpus()
    alone = []
    for page, research_id in pages:
        try:
            alone.append(_comparable(normalize(page, research_id, secret=SECRET)))
        except DecodeError as error:
            alone.append(_comparable(error))
    together = [_comparable(r) for r in normalize_pages(pages, secret=SECRET)]
    assert together == alone
    assert sum(1 for r in alone if r[0] == "error") == 3
    assert sum(len(r[1]) for r in alone if r[0] != "error") > 60  # batches, DST days split in two


class _Recording(Normalizer[str]):
    """Counts its calls; every page becomes an empty result."""

    provider = Provider.FITBIT

    def __init__(self, *data_types: str) -> None:
        self.data_types = data_types
        self.prepared: list[str] = []
        self.finished: list[int] = []

    def prepare(self, page: RawPage, research_id: str, *, secret: bytes) -> str:
        if page.body == b"bad":
            raise DecodeError("bad page", reason=Reason.BAD_FIELD, field="$")
        self.prepared.append(research_id)
        return research_id

    def finish(self, prepared: Sequence[str]) -> list[Normalized]:
        self.finished.append(len(prepared))
        return [Normalized(input_samples=len(rid)) for rid in prepared]


def test_each_normalizer_finishes_its_pages_in_one_call_and_keys_are_checked_first() -> None:
    intraday, sleep = _Recording("activities-steps-intraday", "activities-heart-intraday"), _Recording("sleep")
    registry = Registry([intraday, sleep])
    day = date(2026, 1, 1)
    pages = [(fitbit_page("activities-steps-intraday", b"{}", day=day), "R1"),
             (fitbit_page("sleep", b"{}", day=day), "R22"),
             (fitbit_page("activities-heart-intraday", b"{}", day=day), "R333"),
             (fitbit_page("activities-heart-intraday", b"bad", day=day), "R4"),
             (fitbit_page("activities-steps-intraday", b"{}", day=day), "not a key"),
             (fitbit_page("devices", b"{}"), "R5")]
    results = registry.normalize_pages(pages, secret=SECRET)
    assert (intraday.prepared, intraday.finished, sleep.prepared, sleep.finished) == (["R1", "R333"], [2], ["R22"], [1])
    assert [r.input_samples for r in results[:3]] == [2, 3, 4]  # each result back at its page
    assert [(r.reason, r.field) for r in results[3:]] == [  # type: ignore[union-attr]
        (Reason.BAD_FIELD, "$"), (Reason.BAD_KEY, "key"), (Reason.UNKNOWN_DATA_TYPE, "data_type")]


def test_one_key_claimed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="claimed"):
        Registry([_Recording("sleep"), _Recording("devices", "sleep")])


def test_a_per_page_normalizer_needs_only_normalize_page() -> None:
    class Devices(PerPageNormalizer):
        provider = Provider.FITBIT
        data_types = ("devices",)

        def normalize_page(self, page: RawPage, research_id: str, *, secret: bytes) -> Normalized:
            return Normalized(input_samples=len(page.body))

    result = Registry([Devices()]).normalize(fitbit_page("devices", b"[1, 2]"), "R1", secret=SECRET)
    assert result.input_samples == 6


@pytest.mark.parametrize("research_id", ["", "R 1", "R-1", "Ré1", "R1\n"])
def test_a_key_that_is_not_a_research_id_is_refused(research_id: str) -> None:
    page = fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", date(2026, 1, 1), []))
    with pytest.raises(DecodeError) as info:
        normalize(page, research_id, secret=SECRET)
    assert (info.value.reason, info.value.field) == (Reason.BAD_KEY, "key")
