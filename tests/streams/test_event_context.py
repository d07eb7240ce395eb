"""streams/event_context.py: a batch's events grouped by partition, each made Faust's current event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from faust.streams import current_event

from streams.event_context import as_current_event, by_partition


@dataclass
class _Message:
    partition: int
    offset: int


class _Event:  # the two attributes the module reads of a Faust event
    def __init__(self, partition: int, offset: int) -> None:
        self.message = _Message(partition, offset)


def test_events_are_grouped_by_partition_in_offset_order() -> None:
    events: list[Any] = [_Event(2, 10), _Event(0, 5), _Event(2, 11), _Event(0, 6), _Event(1, 1)]
    groups = by_partition(events)
    assert {p: [e.message.offset for e in group] for p, group in groups.items()} == {2: [10, 11], 0: [5, 6], 1: [1]}
    assert by_partition([]) == {}


def test_the_event_is_current_inside_the_block_only() -> None:
    outer, inner = _Event(0, 1), _Event(3, 7)
    assert current_event() is None
    with as_current_event(outer):  # type: ignore[arg-type]
        assert current_event() is outer
        with as_current_event(inner):  # type: ignore[arg-type]
            assert current_event() is inner
        assert current_event() is outer
    assert current_event() is None


def test_the_previous_event_is_restored_after_an_error() -> None:
    event = _Event(1, 2)
    with pytest.raises(ValueError, match="a table write failed"), as_current_event(event):  # type: ignore[arg-type]
        raise ValueError("a table write failed")
    assert current_event() is None
