"""The normalizer contract, checked on every registered normalizer: registering one puts it here.

Every ``(provider, data_type)`` of ``streams.normalize.REGISTRY`` must have sample pages in
``samples.py`` (a test fails otherwise). On them each normalizer must give batches of one
shape: int UTC timestamps sorted per batch, a UTC offset, a local date that agrees with the
offset, a metric with its unit and resolution, labels from ``models/labels.py``, bytes that
decode back. Garbage and mutated pages must become dead letters or rejects with a Reason,
never an exception, and many pages at once must equal each page alone. The last two tests
render one physical day as both vendors do and compare the samples.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest

from connectors.simulator.cohort import SyntheticCohort
from models import labels
from models.errors import DecodeError, Reason
from models.providers import Provider
from models.raw import FITBIT_DATA_TYPES, GOOGLE_HEALTH_DATA_TYPES, RawPage
from models.samples import Metric, Resolution, SampleBatch, Unit
from streams.normalize import REGISTRY, Normalized, normalize, normalize_pages
from streams.normalize.stage import RawRecord, StageOutput, normalize_records
from tests.builders import SECRET
from tests.streams.normalize.samples import EMPTY_GOOGLE_BODIES, SAMPLE_PAGES

RID = "R0123456789abcdef0123"
KEYS = sorted(REGISTRY, key=lambda k: (k[0].value, k[1]))

_UNITS = {Metric.HEART_RATE: Unit.BPM, Metric.STEPS: Unit.STEPS, Metric.SLEEP_STAGE: Unit.SECONDS,
          Metric.VENDOR_DAILY: Unit.MIXED, Metric.VENDOR_SLEEP: Unit.MIXED, Metric.DEVICE: Unit.PERCENT}
_RESOLUTIONS = {Metric.HEART_RATE: {Resolution.SECOND, Resolution.MINUTE},
                Metric.STEPS: {Resolution.MINUTE, Resolution.SEGMENT}, Metric.SLEEP_STAGE: {Resolution.SEGMENT},
                Metric.VENDOR_DAILY: {Resolution.DAY}, Metric.VENDOR_SLEEP: {Resolution.EVENT},
                Metric.DEVICE: {Resolution.EVENT}}
_LABELLED = {Metric.VENDOR_DAILY, Metric.VENDOR_SLEEP, Metric.SLEEP_STAGE, Metric.DEVICE}
_FILED_BY_END = {Metric.SLEEP_STAGE, Metric.VENDOR_SLEEP}  # a sleep log is filed under the date it ended
_YEAR_2000, _YEAR_2100 = 946_684_800, 4_102_444_800
_NOT_JSON = [b"", b"not json", b"{", b"\xff\xfe", b'{"dataPoints": [1, 2']
_WRONG_SHAPES = [b"null", b"42", b'"text"', b"[]", b"[1, 2]", b"{}", b'{"dataPoints": 5}', b'{"dataPoints": [1, "x"]}',
                 b'{"sleep": "x"}', b'{"sleep": [5]}', b'{"summary": []}', b'{"devices": {}}',
                 b'{"activities-heart-intraday": 5}', b'{"activities-steps-intraday": {"dataset": [5]}}']


def _id(key: tuple[Provider, str]) -> str:
    return f"{key[0].value}/{key[1]}"


@pytest.fixture(params=KEYS, ids=_id)
def key(request: pytest.FixtureRequest) -> tuple[Provider, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def pages(key: tuple[Provider, str]) -> list[RawPage]:
    if key not in SAMPLE_PAGES:
        pytest.fail(f"{_id(key)} is registered but has no sample page in tests/streams/normalize/samples.py")
    built = SAMPLE_PAGES[key]()
    assert built and all((p.provider, p.data_type) == key for p in built)
    return built


def test_every_registered_normalizer_has_a_sample_page() -> None:
    assert [_id(k) for k in KEYS if k not in SAMPLE_PAGES] == []
    assert [_id(k) for k in SAMPLE_PAGES if k not in REGISTRY] == []  # no pages of a format nobody reads


def test_every_data_type_a_raw_page_accepts_has_a_normalizer() -> None:
    accepted = {(Provider.FITBIT, t) for t in FITBIT_DATA_TYPES} | {
        (Provider.GOOGLE_HEALTH, t) for t in GOOGLE_HEALTH_DATA_TYPES}
    assert set(REGISTRY) == accepted


def test_each_normalizer_claims_its_keys(key: tuple[Provider, str]) -> None:
    normalizer = REGISTRY[key]
    assert normalizer.provider is key[0] and key[1] in normalizer.data_types


def test_sample_pages_give_batches_of_the_canonical_shape(key: tuple[Provider, str], pages: list[RawPage]) -> None:
    for page in pages:
        result = normalize(page, RID, secret=SECRET)
        deletion = bool(result.batches) and all(b.deleted for b in result.batches)  # no samples of its own
        assert (result.samples > 0 or deletion) and result.rejects == [], "a sample page is well formed"
        assert result.samples + result.rejected == result.input_samples
        for batch in result.batches:
            _check_shape(batch, key[0])


@pytest.mark.parametrize("body", EMPTY_GOOGLE_BODIES)
def test_google_pages_without_points_are_empty_not_errors(body: bytes) -> None:
    for key in KEYS:
        if key[0] is Provider.GOOGLE_HEALTH and key[1] != "deletions":  # a notification, not a list page
            page = RawPage(provider=key[0], data_type=key[1], date=None, body=body)
            result = normalize(page, RID, secret=SECRET)
            assert (result.batches, result.rejects, result.input_samples) == ([], [], 0), key


def _check_shape(batch: SampleBatch, provider: Provider) -> None:
    assert (batch.research_id, batch.source) == (RID, provider)
    assert batch.unit is _UNITS[batch.metric] and batch.resolution in _RESOLUTIONS[batch.metric]
    assert len(batch) > 0 or batch.rejected_timestamps or batch.deleted, \
        "an empty batch only carries a date's rejects or a vendor's deletion"
    assert all(type(t) is int and _YEAR_2000 <= t < _YEAR_2100 for t in batch.timestamps)
    assert batch.timestamps == sorted(batch.timestamps)
    # A device that reports no battery level is still a device: the one value that may be null.
    assert all((type(v) is float and math.isfinite(v)) or (v is None and batch.metric is Metric.DEVICE)
               for v in batch.values)
    assert abs(batch.utc_offset_s) <= 18 * 3600 and batch.utc_offset_s % 60 == 0
    local_date = date.fromisoformat(batch.local_date)
    for ts in batch.timestamps:
        lag = (local_date - datetime.fromtimestamp(ts + batch.utc_offset_s, UTC).date()).days
        assert lag in ((0, 1) if batch.metric in _FILED_BY_END else (0,)), (batch.metric, ts, batch.local_date)
    if len(batch):  # an empty batch (a date's rejects only) has no columns to speak of
        assert (batch.labels is not None) is (batch.metric in _LABELLED)
    assert all(labels.is_valid_label(batch.metric, label) for label in batch.labels or []), batch.labels
    if batch.durations is not None or (batch.metric is Metric.SLEEP_STAGE and len(batch)):
        assert batch.resolution is Resolution.SEGMENT and batch.durations is not None
        assert all(d is None or type(d) is int for d in batch.durations)  # None: a length the vendor did not give
    assert batch.rejected_timestamps == sorted(batch.rejected_timestamps)
    assert SampleBatch.from_bytes(batch.to_bytes()) == batch


def test_garbage_pages_become_dead_letters_with_a_reason(key: tuple[Provider, str], pages: list[RawPage]) -> None:
    """Through the stage, so that an exception anywhere would show as an ``internal_error`` letter."""
    records = [_record(page, body) for page in pages[:1] for body in _NOT_JSON + _WRONG_SHAPES]
    records += [_record(page, body) for page in pages for body in _mutations(page.body)]
    together = normalize_records(records, secret=SECRET)
    alone = [normalize_records([record], secret=SECRET)[0] for record in records]
    assert [_output(o) for o in together] == [_output(o) for o in alone]
    for record, output in zip(records, alone, strict=True):
        assert [letter.reason for letter in output.letters if letter.reason is Reason.INTERNAL_ERROR] == [], record
        assert all(isinstance(letter.reason, Reason) for letter in output.letters)
        assert output.samples + output.rejected == output.input_samples
        for _, value in output.batches:
            _check_shape(SampleBatch.from_bytes(value), key[0])
    for output in alone[:len(_NOT_JSON)]:
        assert output.batches == [] and [letter.reason for letter in output.letters] == [Reason.NOT_JSON]


def _record(page: RawPage, body: bytes) -> RawRecord:
    return RawRecord(RID.encode(), dataclasses.replace(page, body=body).to_bytes(), f"raw.{page.provider.value}")


def _output(output: StageOutput) -> Any:
    return (output.batches, [(letter.reason, letter.count, letter.original) for letter in output.letters],
            output.samples, output.rejected, output.input_samples)


def _mutations(body: bytes, *, first: int = 12) -> Iterator[bytes]:
    """The page with every leaf replaced by one odd value, then its first leaves and keys one at a time."""
    tree = orjson.loads(body)
    for odd in (None, "junk", -1, 1e300, True, [], {}, "2026-13-45T25:61:00"):
        yield orjson.dumps(_replace(tree, lambda _, odd=odd: odd))
    for n in range(first):
        for odd in (None, "junk", {"x": 1}):
            yield orjson.dumps(_replace(tree, lambda leaf, n=n, odd=odd: odd if leaf == n else _KEEP))
        yield orjson.dumps(_drop_key(tree, n))


_KEEP = object()


def _replace(tree: Any, odd: Any) -> Any:
    """``tree`` with leaf number i replaced by ``odd(i)`` (leaves in document order), unless ``_KEEP``."""
    counter = iter(range(10**9))

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        value = odd(next(counter))
        return node if value is _KEEP else value

    return walk(tree)


def _drop_key(tree: Any, n: int) -> Any:
    """``tree`` without the n-th object key (in document order)."""
    counter = iter(range(10**9))

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items() if next(counter) != n}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(tree)


def test_many_pages_at_once_equal_each_page_alone(key: tuple[Provider, str], pages: list[RawPage]) -> None:
    corpus = [(page, rid) for page in pages for rid in (RID, "R9")]
    corpus += [(dataclasses.replace(pages[0], body=body), RID) for body in (b"not json", b"[1, 2]", b"{}")]
    random.Random(7).shuffle(corpus)
    alone = [_comparable(_alone(page, rid)) for page, rid in corpus]
    assert [_comparable(r) for r in normalize_pages(corpus, secret=SECRET)] == alone
    # The contract itself: ``finish`` gives one result per prepared page, in order.
    normalizer = REGISTRY[key]
    finished = normalizer.finish([normalizer.prepare(page, RID, secret=SECRET) for page in pages])
    assert [_comparable(r) for r in finished] == [_comparable(_alone(page, RID)) for page in pages]


def test_every_format_at_once_equals_each_page_alone() -> None:
    corpus = [(page, f"R{n}") for n, build in enumerate(SAMPLE_PAGES.values()) for page in build()]
    random.Random(3).shuffle(corpus)
    assert [_comparable(r) for r in normalize_pages(corpus, secret=SECRET)] == [
        _comparable(_alone(page, rid)) for page, rid in corpus]


def _alone(page: RawPage, research_id: str) -> Normalized | DecodeError:
    try:
        return normalize(page, research_id, secret=SECRET)
    except DecodeError as error:
        return error


def _comparable(result: Normalized | DecodeError) -> Any:
    if isinstance(result, DecodeError):
        return ("error", result.reason, result.field)
    return (result.input_samples, [b.to_dict() for b in result.batches],
            [(r.reason, r.count, r.detail, r.original) for r in result.rejects])


def test_every_label_the_normalizers_write_is_in_the_vocabulary() -> None:
    written: dict[Metric, set[str]] = {}
    for build in SAMPLE_PAGES.values():
        for page in build():
            for batch in normalize(page, RID, secret=SECRET).batches:
                written.setdefault(batch.metric, set()).update(batch.labels or [])
    unknown = sorted((m.value, x) for m, seen in written.items() for x in seen if not labels.is_valid_label(m, x))
    assert unknown == []
    assert labels.hr_zone("Fat Burn", labels.ZONE_MIN) in written[Metric.VENDOR_DAILY]
    assert {labels.MINUTES_ASLEEP, labels.TIME_IN_BED} <= written[Metric.VENDOR_SLEEP]
    assert labels.short_level("wake") in written[Metric.SLEEP_STAGE]
    assert all(labels.is_valid_label(Metric.DEVICE, x) for x in written[Metric.DEVICE])


# Fitbit's levels by log type (docs/vendors.md, "Sleep log v1.2"), all of them All of Us sleep_level values.
_FITBIT_LEVELS = {"stages": {"wake", "light", "deep", "rem"}, "classic": {"asleep", "restless", "awake"}}


def test_both_vendors_write_the_fitbit_sleep_levels_of_each_log_type() -> None:
    """So that ``sleep_level.level`` and ``sleep_daily_summary.minute_<level>`` fill alike for both."""
    seen: dict[tuple[Provider, str], set[str]] = {}
    for (provider, _), build in SAMPLE_PAGES.items():
        for page in build():
            for batch in normalize(page, RID, secret=SECRET).batches:
                if batch.deleted:  # a vendor's deletion: no samples, no levels
                    continue
                if batch.metric is Metric.SLEEP_STAGE:
                    levels = {x.removeprefix(labels.SHORT_PREFIX) for x in batch.labels or []}
                elif batch.metric is Metric.VENDOR_SLEEP:
                    levels = {lv for x in batch.labels or [] if (lv := labels.parse_stage_minutes(x))}
                else:
                    continue
                seen.setdefault((provider, str(batch.attributes["type"])), set()).update(levels)
    assert {kind for _, kind in seen} == set(_FITBIT_LEVELS)
    for (provider, kind), levels in seen.items():
        assert levels <= _FITBIT_LEVELS[kind], (provider, kind)
    assert seen[(Provider.GOOGLE_HEALTH, "stages")] == _FITBIT_LEVELS["stages"]  # AWAKE became wake
    assert seen[(Provider.GOOGLE_HEALTH, "classic")] == _FITBIT_LEVELS["classic"]


# ----------------------------------------------------------------------------- both vendors, one day
COHORT = SyntheticCohort(3, seed=11)
DAY = date(2026, 11, 1)  # a fall-back day in most of the cohort's zones


def _pages(provider: Provider, participant: str) -> dict[Metric, RawPage]:
    zone = COHORT.timezone(participant)
    if provider is Provider.FITBIT:
        bodies = {Metric.STEPS: ("activities-steps-intraday", COHORT.fitbit_steps_intraday(participant, DAY)),
                  Metric.HEART_RATE: ("activities-heart-intraday", COHORT.fitbit_heart_intraday(participant, DAY))}
    else:
        bodies = {Metric.STEPS: ("steps", COHORT.google_steps(participant, DAY)),
                  Metric.HEART_RATE: ("heart-rate", COHORT.google_heart_rate(participant, DAY))}
    return {metric: RawPage(provider=provider, data_type=data_type, date=DAY.isoformat(), body=body, timezone=zone)
            for metric, (data_type, body) in bodies.items()}


@pytest.fixture(params=list(Provider), ids=lambda p: p.value)
def provider(request: pytest.FixtureRequest) -> Provider:
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize("participant", COHORT.participant_ids)
@pytest.mark.parametrize("metric", [Metric.STEPS, Metric.HEART_RATE])
def test_every_sample_is_accounted_for_and_ordered(provider: Provider, participant: str, metric: Metric) -> None:
    result = normalize(_pages(provider, participant)[metric], "R1", secret=SECRET)
    assert result.samples + result.rejected == result.input_samples
    for batch in result.batches:
        assert batch.timestamps == sorted(batch.timestamps)
        assert batch.local_date == DAY.isoformat()


@pytest.mark.parametrize("participant", COHORT.participant_ids)
@pytest.mark.parametrize("metric", [Metric.STEPS, Metric.HEART_RATE])
def test_both_vendors_give_the_same_samples(participant: str, metric: Metric) -> None:
    def samples(provider: Provider) -> set[tuple[int, float]]:
        result = normalize(_pages(provider, participant)[metric], "R1", secret=SECRET)
        pairs = {(t, v) for b in result.batches if b.metric is metric
                 for t, v in zip(b.timestamps, b.values, strict=True)}
        # Google lists only minutes with steps; Fitbit lists every minute.
        return {p for p in pairs if metric is not Metric.STEPS or p[1] > 0}

    fitbit, google = samples(Provider.FITBIT), samples(Provider.GOOGLE_HEALTH)
    assert fitbit == google and len(fitbit) > 300
