"""What may be committed: below the oldest offset still running in its partition; a finished
task moves it on, a cancelled or failed one does not; a rebalance stops exactly the tasks of the
partitions it names."""

from __future__ import annotations

import asyncio
import functools

from aiokafka import TopicPartition

from connectors.fetch_tracking import InFlight, Offsets, finished

P0, P1 = TopicPartition("fetch-requests", 0), TopicPartition("fetch-requests", 1)


async def test_the_committable_offset_waits_for_the_oldest_running_request() -> None:
    offsets, gates = Offsets(), {n: asyncio.Event() for n in range(3)}
    tasks = []
    for n in range(3):
        partition = offsets.start(P0, 10 + n)
        task = asyncio.ensure_future(gates[n].wait())
        task.add_done_callback(functools.partial(finished, partition, 10 + n))
        tasks.append(task)
    assert offsets.committable({P0})[P0].offset == 10
    gates[1].set()
    gates[2].set()
    await asyncio.gather(tasks[1], tasks[2])
    assert offsets.committable({P0})[P0].offset == 10  # offset 10 still runs: nothing after it is safe
    tasks[0].cancel()
    await asyncio.gather(tasks[0], return_exceptions=True)
    assert offsets.committable({P0})[P0].offset == 10  # cancelled: it re-runs, so it stays uncommitted
    assert offsets.committable(set()) == {}  # a partition no longer held is dropped


async def test_a_finished_partition_commits_past_its_highest_and_forget_drops_it() -> None:
    offsets = Offsets()
    partition = offsets.start(P1, 4)
    task = asyncio.ensure_future(asyncio.sleep(0))
    task.add_done_callback(functools.partial(finished, partition, 4))
    await task
    assert offsets.committable({P1})[P1].offset == 5
    offsets.forget([P1])
    assert offsets.committable({P1}) == {}


async def test_cancel_stops_only_the_named_partitions_tasks_and_the_cap_frees_room() -> None:
    running, release = InFlight(limit=2), asyncio.Event()
    first, second = asyncio.ensure_future(release.wait()), asyncio.ensure_future(release.wait())
    running.add(P0, first)
    running.add(P1, second)
    assert not running.room.is_set()  # at the cap
    assert await running.cancel([P0]) == 1
    assert first.cancelled() and not second.done()
    assert running.room.is_set() and set(running.of) == {P1}
    release.set()
    await second
    assert running.tasks == set() and running.of == {}
