from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.ids import date_shift_days, research_id

SECRET = b"s" * 40
participant_ids = st.from_regex(r"P[0-9]{10}", fullmatch=True)


@given(participant_ids)
def test_research_id_is_stable_and_hides_the_participant(pid: str) -> None:
    rid = research_id(SECRET, pid)
    assert rid == research_id(SECRET, pid)
    assert re.fullmatch(r"R[0-9a-f]{20}", rid)
    assert pid[1:] not in rid
    assert research_id(b"t" * 40, pid) != rid


@given(st.sets(participant_ids, min_size=2, max_size=50))
def test_research_ids_do_not_collide(pids: set[str]) -> None:
    assert len({research_id(SECRET, p) for p in pids}) == len(pids)


@given(participant_ids)
def test_date_shift_is_in_range_and_deterministic(pid: str) -> None:
    rid = research_id(SECRET, pid)
    shift = date_shift_days(SECRET, rid)
    assert 1 <= shift <= 364
    assert shift == date_shift_days(SECRET, rid)


def test_date_shift_differs_between_participants() -> None:
    shifts = {date_shift_days(SECRET, research_id(SECRET, f"P{n:010d}")) for n in range(200)}
    assert len(shifts) > 150  # 200 draws from 364 values


def test_empty_participant_id_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        research_id(SECRET, "")
