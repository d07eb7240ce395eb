"""Write Faust tables from batches (``take_events``) as if from single events.

Faust decides where a table write goes from the *current event*: its partition picks the
RocksDB partition database (``faust/stores/rocksdb.py::_set`` asserts one exists) and the
changelog partition (``Table.partition_for_key``). Inside ``take_events`` there is no current
event, and ``use_partitioner=True`` (docs/architecture.md, "Faust facts") only fixes the
changelog half: the RocksDB store still fails. So batch agents group their events by source
partition and write each group's table keys while that partition's event is current. State
then lives on the partition of the records it came from, which is what rebalancing and
recovery expect, provided table keys are derived from the record key (co-partitioned).

This module is the one place that touches Faust's private context variable.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event
from faust.types import EventT

__all__ = ["as_current_event", "by_partition"]


@contextmanager
def as_current_event(event: EventT[Any]) -> Iterator[None]:
    """Make ``event`` Faust's current event for the table writes inside the block."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def by_partition(events: Iterable[EventT[Any]]) -> dict[int, list[EventT[Any]]]:
    """Events grouped by their source partition, each group in offset order."""
    groups: dict[int, list[EventT[Any]]] = {}
    for event in events:
        groups.setdefault(event.message.partition, []).append(event)
    return groups
