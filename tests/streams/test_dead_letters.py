"""streams/dead_letters.py: every dead letter carries its stage, reason, original bytes and is counted."""

from __future__ import annotations

from prometheus_client import REGISTRY

from models.dead_letter import DeadLetter
from models.errors import DecodeError, Reason
from streams.dead_letters import for_error, for_rejects
from streams.normalize.base import Rejected


def _count(stage: str, reason: Reason) -> float:
    return REGISTRY.get_sample_value("wearables_dead_letters_total", {"stage": stage, "reason": reason.value}) or 0.0


def test_a_decode_error_becomes_a_letter_with_its_reason_and_the_original_bytes() -> None:
    before = _count("normalize", Reason.MISSING_FIELD)
    error = DecodeError("is missing", reason=Reason.MISSING_FIELD, field="timezone")
    letter = for_error("normalize", error, key=b"R1", original=b'{"v": 1}\n{"x": 1}', topic="t.raw.fitbit")
    assert (letter.stage, letter.reason, letter.detail) == ("normalize", Reason.MISSING_FIELD, "timezone: is missing")
    assert (letter.key, letter.original, letter.topic, letter.count) == (
        b"R1", b'{"v": 1}\n{"x": 1}', "t.raw.fitbit", 1)
    assert letter.at > 0
    assert DeadLetter.from_bytes(letter.to_bytes()) == letter
    assert _count("normalize", Reason.MISSING_FIELD) == before + 1


def test_any_other_exception_is_an_internal_error_named_by_its_type() -> None:
    before = _count("daily", Reason.INTERNAL_ERROR)
    letter = for_error("daily", RuntimeError("x" * 600), key=None, original=b"\x00", topic="t.samples")
    assert letter.reason is Reason.INTERNAL_ERROR and letter.key is None and letter.original == b"\x00"
    assert letter.detail.startswith("RuntimeError: xxx") and len(letter.detail) == 500  # detail is bounded
    assert _count("daily", Reason.INTERNAL_ERROR) == before + 1


def test_rejected_samples_give_one_letter_per_reason_holding_exactly_those_samples() -> None:
    before = _count("normalize", Reason.HR_OUT_OF_RANGE), _count("normalize", Reason.NEGATIVE_STEPS)
    rejects = [Rejected(Reason.HR_OUT_OF_RANGE, 2, "value: 400 bpm", b'[{"value": 400}, {"value": 500}]'),
               Rejected(Reason.NEGATIVE_STEPS, 1, "value: -3", b'[{"value": -3}]')]
    letters = for_rejects("normalize", rejects, key=b"R2", topic="t.raw.google_health")
    assert [(x.reason, x.count, x.detail, x.original) for x in letters] == [
        (Reason.HR_OUT_OF_RANGE, 2, "value: 400 bpm", b'[{"value": 400}, {"value": 500}]'),
        (Reason.NEGATIVE_STEPS, 1, "value: -3", b'[{"value": -3}]')]
    assert {(x.stage, x.key, x.topic) for x in letters} == {("normalize", b"R2", "t.raw.google_health")}
    assert (_count("normalize", Reason.HR_OUT_OF_RANGE), _count("normalize", Reason.NEGATIVE_STEPS)) == (
        before[0] + 1, before[1] + 1)  # counted per letter, not per sample
    assert for_rejects("normalize", [], key=b"R2", topic="t") == []
