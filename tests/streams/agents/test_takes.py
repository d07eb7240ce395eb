"""run_takes (streams/agents/takes.py): a take that fails for its own reasons is recovered and the
next take goes on; one that fails for Kafka's halts the worker with the take unacknowledged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from streams.agents.takes import Deliveries, Events, run_takes


class Message:
    def __init__(self) -> None:
        self.refs = 0

    def incref(self) -> None:
        self.refs += 1


class Event:
    def __init__(self, n: int) -> None:
        self.n, self.message = n, Message()


class App:
    def __init__(self) -> None:
        self.crashed: BaseException | None = None

    async def crash(self, error: BaseException) -> None:
        self.crashed = error


async def _takes(*takes: list[Any]) -> AsyncIterator[Events]:
    for take in takes:
        yield take


def _errors() -> float:
    return REGISTRY.get_sample_value("wearables_agent_batch_errors_total", {"stage": "daily"}) or 0.0


async def test_a_take_that_fails_is_recovered_and_the_next_goes_on() -> None:
    done, recovered = [], []

    async def process(events: Events) -> None:
        if any(e.n == 2 for e in events):
            raise ValueError("a bad record")
        done.extend(e.n for e in events)

    async def recover(events: Events, error: Exception) -> None:
        recovered.append(([e.n for e in events], type(error).__name__))

    before = _errors()
    await run_takes(App(), "daily", _takes([Event(1)], [Event(2), Event(3)], [Event(4)]),  # type: ignore[arg-type]
                    Deliveries(), process=process, recover=recover)
    assert done == [1, 4] and recovered == [([2, 3], "ValueError")]
    assert _errors() == before + 1
    assert REGISTRY.get_sample_value("wearables_worker_last_event_timestamp_seconds", {"stage": "daily"})


async def test_kafkas_failure_halts_the_worker_and_keeps_the_take_unacknowledged() -> None:
    app, take = App(), [Event(1), Event(2)]

    async def process(events: Events) -> None:
        raise KafkaConnectionError("the broker is gone")

    async def recover(events: Events, error: Exception) -> None:
        raise AssertionError("a Kafka failure is not the take's to recover from")

    with pytest.raises(KafkaConnectionError):
        await run_takes(app, "daily", _takes(take, [Event(3)]), Deliveries(),  # type: ignore[arg-type]
                        process=process, recover=recover)
    assert isinstance(app.crashed, KafkaConnectionError)
    assert [e.message.refs for e in take] == [1, 1]  # held: no ack marks them done
