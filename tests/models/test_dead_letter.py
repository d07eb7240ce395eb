"""DeadLetter (models/dead_letter.py): a rejected record, its original bytes and why."""

from __future__ import annotations

import pytest

from models.dead_letter import DeadLetter
from models.errors import DecodeError, Reason


def test_dead_letter_round_trips() -> None:
    letter = DeadLetter(stage="normalize", reason=Reason.NOT_JSON, detail="d", key=b"R1", original=b"\x00\x01",
                        topic="t", count=3, at=1.0)
    assert DeadLetter.from_bytes(letter.to_bytes()) == letter



@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b'{"stage": "sink", "reason": "weight", "original": ""}'])
def test_bytes_that_are_not_a_dead_letter_are_a_bad_envelope(data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        DeadLetter.from_bytes(data)
    assert info.value.reason is Reason.BAD_ENVELOPE


def test_a_dead_letter_without_a_reason_names_the_field() -> None:
    with pytest.raises(DecodeError) as info:
        DeadLetter.from_bytes(b'{"stage": "sink"}')
    assert (info.value.field, info.value.reason) == ("reason", Reason.MISSING_FIELD)
