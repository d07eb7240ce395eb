"""Limits on vendor JSON (streams/normalize/limits.py): a page too deep or too large is one dead
letter with its reason, found in a byte scan before Polars sees it (Polars needs ~13 GB for a 14 KB
page nested 1,000 deep), and a normalize pass bounded by bytes gives the same outputs."""

from __future__ import annotations

import time
from datetime import date

import orjson
import pytest

from models.dead_letter import DeadLetter
from models.errors import Reason
from models.providers import Provider
from models.raw import RawPage
from streams.normalize.limits import MAX_DEPTH, MAX_PAGE_BYTES, byte_batches, json_depth_exceeds
from streams.normalize.stage import RawRecord, StageOutput, normalize_records
from tests.builders import SECRET, fitbit_intraday_body, fitbit_minute_pages, google_page
from tests.streams.normalize.samples import SAMPLE_PAGES

KEY = b"R0123456789abcdef0123"
DAY = date(2026, 11, 2)
DEEP = 1000


def _google_deep_point() -> bytes:
    """The audit's Google point nested 1,000 deep (~14 KB): orjson reads it, Polars chokes."""
    point = b'{"heartRate":{"beatsPerMinute":' + b'{"a":' * DEEP + b'"64"' + b"}" * DEEP + b"}}"
    points = b",".join([b'{"heartRate":{"beatsPerMinute":"64","sampleTime":{"physicalTime":"2026-03-01T10:00:00Z",'
                        b'"utcOffset":"3600s"}}}'] * 50)
    return b'{"dataPoints":[' + points + b"," + point + b"]}"


def _fitbit_deep_value(opening: bytes, closing: bytes) -> bytes:
    """A Fitbit heart-rate dataset whose one value nests 1,000 deep (``opening`` = ``{"a":`` or ``[``)."""
    good = b",".join(b'{"time":"00:%02d:00","value":70}' % m for m in range(50))
    deep = b'{"time":"01:00:00","value":' + opening * DEEP + b"70" + closing * DEEP + b"}"
    return (b'{"activities-heart":[{"dateTime":"2026-11-02"}],"activities-heart-intraday":{"dataset":['
            + good + b"," + deep + b'],"datasetInterval":1,"datasetType":"minute"}}')


def _fitbit(data_type: str, body: bytes) -> RawRecord:
    page = RawPage(provider=Provider.FITBIT, data_type=data_type, date=DAY.isoformat(), body=body, detail="1min",
                   timezone="America/New_York", fetched_at=1.0, request_id="t")
    return RawRecord(KEY, page.to_bytes(), "raw.fitbit")


def _google(body: bytes) -> RawRecord:
    page = RawPage(provider=Provider.GOOGLE_HEALTH, data_type="heart-rate", date=None, body=body, fetched_at=1.0,
                   request_id="t")
    return RawRecord(KEY, page.to_bytes(), "raw.google_health")


def _good_pages() -> list[RawRecord]:
    return [_fitbit(data_type, body) for n in range(2) for data_type, body in fitbit_minute_pages(DAY, n)]


def _one_sec_day() -> bytes:
    """A legitimate 1-sec heart-rate day (86,400 samples) as Fitbit sends it, indented: ~5.7 MB."""
    dataset = [{"time": f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}", "value": 55 + s % 90}
               for s in range(86_400)]
    body = fitbit_intraday_body("heart", DAY, dataset, dataset_type="second",
                                daily={"customHeartRateZones": [], "restingHeartRate": 58, "heartRateZones": [
                                    {"caloriesOut": 1.5, "max": 100, "min": 30, "minutes": 900, "name": "Fat Burn"}]})
    return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)


def _letter_reasons(output: StageOutput) -> list[Reason]:
    return [DeadLetter.from_bytes(letter.to_bytes()).reason for letter in output.letters]


@pytest.mark.parametrize(("case", "record", "size"), [
    ("google point nested 1,000 deep", _google(_google_deep_point()), 16_000),
    ("fitbit value object nested 1,000 deep", _fitbit("activities-heart-intraday", _fitbit_deep_value(b'{"a":', b"}")),
     8_000),
    ("fitbit value list nested 1,000 deep", _fitbit("activities-heart-intraday", _fitbit_deep_value(b"[", b"]")),
     4_000),
])
def test_a_deep_page_is_one_dead_letter_and_its_neighbours_are_normalized(case: str, record: RawRecord,
                                                                          size: int) -> None:
    assert len(record.value or b"") < size, case  # small pages, as in the audit
    good = _good_pages()
    alone = normalize_records(good, secret=SECRET)
    started = time.perf_counter()
    outputs = normalize_records([*good[:2], record, *good[2:]], secret=SECRET)
    assert time.perf_counter() - started < 1.0
    assert _letter_reasons(outputs[2]) == [Reason.TOO_DEEP]
    assert outputs[2].batches == [] and outputs[2].samples == 0
    assert DeadLetter.from_bytes(outputs[2].letters[0].to_bytes()).original == record.value  # replayable
    assert [(o.batches, o.samples, o.letters) for o in [*outputs[:2], *outputs[3:]]] == [
        (o.batches, o.samples, o.letters) for o in alone]
    assert all(o.samples >= 1440 and o.letters == [] for o in alone)


def test_a_page_over_the_byte_limit_is_one_dead_letter_of_page_too_large() -> None:
    points = [{"heartRate": {"beatsPerMinute": "64", "sampleTime": {"physicalTime": "2026-03-01T10:00:00Z"}}}]
    page = google_page("heart-rate", points)
    huge = RawRecord(KEY, RawPage(provider=page.provider, data_type=page.data_type, date=None,
                                  body=page.body[:-1] + b" " * MAX_PAGE_BYTES + b"}").to_bytes(), "raw.google_health")
    good = _good_pages()[:1]
    started = time.perf_counter()
    outputs = normalize_records([huge, *good], secret=SECRET)
    assert time.perf_counter() - started < 1.0
    assert _letter_reasons(outputs[0]) == [Reason.PAGE_TOO_LARGE]
    letter = DeadLetter.from_bytes(outputs[0].letters[0].to_bytes())
    assert str(MAX_PAGE_BYTES) in letter.detail
    assert letter.original == (huge.value or b"")[:len(letter.original)] and len(letter.original) <= 1 << 20
    assert outputs[1].samples >= 1440 and outputs[1].letters == []


def test_a_legitimate_one_second_heart_rate_day_normalizes() -> None:
    body = _one_sec_day()
    assert 4 << 20 < len(body) < MAX_PAGE_BYTES // 2  # the limit has a margin over the largest real page
    [output] = normalize_records([_fitbit("activities-heart-intraday", body)], secret=SECRET)
    assert output.letters == [] and output.rejected == 0 and output.samples >= 86_400  # + the daily figures


def test_every_vendor_fixture_is_within_the_depth_limit_with_margin() -> None:
    for pages in SAMPLE_PAGES.values():
        for page in pages():
            assert not json_depth_exceeds(page.body, MAX_DEPTH - 4), page.data_type


@pytest.mark.parametrize(("body", "depth"), [
    (b"1", 0), (b"{}", 1), (b"[[]]", 2), (b'{"a":[{"b":{}}]}', 4), (b'[{"a":1},[2,[3]]]', 3),
    (b'{"a":"[[[[[[[[[[{{{{{{"}', 1), (b'{"a\\"[[[":"\\\\", "b": ["]]]]"]}', 2),  # brackets in strings do not count
    (b'{"a":"\\"[[[[[["}', 1),
    (b"[" * 30 + b"]" * 30, 30), (b"[{" * 15 + b"}]" * 15, 30), (b'{"x":' * 13 + b"1" + b"}" * 13, 13),
])
def test_the_depth_scan_counts_brackets_outside_strings(body: bytes, depth: int) -> None:
    assert not json_depth_exceeds(body, depth)
    if depth:
        assert json_depth_exceeds(body, depth - 1)


def test_a_body_that_is_not_json_is_left_to_orjson() -> None:
    assert not json_depth_exceeds(b"[" * 50, 12)  # unbalanced: not JSON, a NOT_JSON dead letter later
    assert not json_depth_exceeds(b'"\\"' * 1000, 12)  # an unterminated string runs to the end
    [output] = normalize_records([_fitbit("activities-heart-intraday", b"[" * 50)], secret=SECRET)
    assert _letter_reasons(output) == [Reason.NOT_JSON]


def test_byte_batches_keep_order_and_stay_under_the_budget() -> None:
    sizes = [10, 30, 60, 5, 200, 1, 1, 99, 100, 0, 50]
    records = [RawRecord(b"k", b"x" * n, "raw.fitbit") for n in sizes]
    parts = list(byte_batches(records, budget=100))
    assert [r for part in parts for r in part] == records
    for part in parts:
        total = sum(len(r.value or b"") for r in part)
        assert total <= 100 or len(part) == 1
    assert [len(p) for p in parts] == [3, 1, 1, 2, 1, 2, 1]  # each run as full as the budget allows
    assert list(byte_batches([], budget=100)) == []


def test_bounded_passes_give_the_outputs_of_one_pass() -> None:
    records = [*_good_pages(), _google(_google_deep_point()), _fitbit("activities-heart-intraday", b"not json"),
               *[_fitbit(t, b) for t, b in fitbit_minute_pages(DAY, 5)],
               *[RawRecord(KEY, page.to_bytes(), f"raw.{provider.value}")
                 for (provider, _), pages in SAMPLE_PAGES.items() for page in pages()]]
    budget = 3 * max(len(r.value or b"") for r in records[:4])
    parts = list(byte_batches(records, budget=budget))
    assert len(parts) > 2 and all(sum(len(r.value or b"") for r in p) <= budget for p in parts)
    whole = normalize_records(records, secret=SECRET)
    bounded = [output for part in parts for output in normalize_records(part, secret=SECRET)]
    assert [(o.batches, o.samples, o.rejected, o.input_samples, [(x.reason, x.original) for x in o.letters])
            for o in bounded] == [(o.batches, o.samples, o.rejected, o.input_samples,
                                   [(x.reason, x.original) for x in o.letters]) for o in whole]
