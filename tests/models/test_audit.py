"""AuditRecord and subject_of (models/audit.py): the append-only audit log names nobody in clear."""

from __future__ import annotations

import orjson
import pytest

from models.audit import AUDIT_SCHEMA_VERSION, Action, Actor, AuditRecord, subject_of
from models.errors import DecodeError, Reason

SECRET = b"a-test-secret-of-reasonable-length"


def _record(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {"schema_version": AUDIT_SCHEMA_VERSION, "subject": "ab" * 16, "action": "purge",
                                 "actor": "staff", "at": 1_790_000_000.5, "component": "portal",
                                 "removed": {"daily_summary": 12}}
    values.update(changes)
    return values


def test_round_trip_keeps_every_field() -> None:
    record = AuditRecord(subject_of(SECRET, "R0001"), Action.REMOVED, Actor.SYSTEM, 1_790_000_000.25, "sink",
                         {"daily_summary": 12, "intraday_steps": 1440})
    data = record.to_bytes()
    decoded = AuditRecord.from_bytes(data)
    assert decoded == record
    assert decoded.action is Action.REMOVED and decoded.actor is Actor.SYSTEM
    assert orjson.loads(data) == {"schema_version": 1, "subject": record.subject, "action": "removed",
                                  "actor": "system", "at": 1_790_000_000.25, "component": "sink",
                                  "removed": {"daily_summary": 12, "intraday_steps": 1440}}


def test_removed_defaults_to_empty_and_a_missing_one_decodes_as_empty() -> None:
    record = AuditRecord("s" * 32, Action.WITHDRAW, Actor.PARTICIPANT, 1.0, "portal")
    assert record.removed == {}
    assert AuditRecord.from_bytes(record.to_bytes()) == record
    without = _record()
    del without["removed"]
    assert AuditRecord.from_bytes(orjson.dumps(without)).removed == {}


def test_subject_is_stable_32_hex_and_keyed() -> None:
    subject = subject_of(SECRET, "R0001")
    assert subject == subject_of(SECRET, "R0001")
    assert len(subject) == 32
    assert all(c in "0123456789abcdef" for c in subject)
    assert subject != subject_of(b"another-secret-entirely-different", "R0001")
    assert subject != subject_of(SECRET, "R0002")


def test_research_id_is_not_in_the_record_bytes() -> None:
    rid = "R7f3c9a2e"
    data = AuditRecord(subject_of(SECRET, rid), Action.PURGE, Actor.PARTICIPANT, 2.0, "portal").to_bytes()
    assert rid.encode() not in data
    assert rid.lower().encode() not in data.lower()


@pytest.mark.parametrize(("changes", "reason", "field"), [
    ({"action": "delete"}, Reason.BAD_FIELD, "action"),
    ({"action": None}, Reason.MISSING_FIELD, "action"),
    ({"actor": "robot"}, Reason.BAD_FIELD, None),  # the field named is not asserted (see the report)
    ({"actor": 3}, Reason.BAD_FIELD, "actor"),
    ({"removed": {"daily_summary": "12"}}, Reason.BAD_FIELD, "removed"),
    ({"removed": {"daily_summary": 1.5}}, Reason.BAD_FIELD, "removed"),
    ({"removed": ["daily_summary"]}, Reason.BAD_FIELD, "removed"),
    ({"subject": ""}, Reason.BAD_FIELD, "subject"),
    ({"at": "yesterday"}, Reason.BAD_FIELD, "at"),
    ({"component": None}, Reason.MISSING_FIELD, "component"),
])
def test_bad_fields_raise_decode_error_with_a_reason(changes: dict[str, object], reason: Reason,
                                                      field: str | None) -> None:
    with pytest.raises(DecodeError) as info:
        AuditRecord.from_bytes(orjson.dumps(_record(**changes)))
    assert info.value.reason is reason
    if field is not None:
        assert info.value.field == field


@pytest.mark.parametrize(("data", "reason"), [
    (b"not json", Reason.NOT_JSON), (b"", Reason.NOT_JSON), (b"[1, 2]", Reason.BAD_ENVELOPE),
    (b'"purge"', Reason.BAD_ENVELOPE),
])
def test_not_a_record_raises_decode_error(data: bytes, reason: Reason) -> None:
    with pytest.raises(DecodeError) as info:
        AuditRecord.from_bytes(data)
    assert info.value.reason is reason
