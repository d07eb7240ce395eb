"""Let aiokafka queue several full batches per partition instead of waiting in ``send()``.

aiokafka's ``send()`` waits until a partition's last pending batch has left whenever that
batch is full. With one record per batch (the embedded broker's need, see
``WEARABLES_KAFKA_SINGLE_RECORD_BATCHES``) every send is "full", so a worker waited a broker
round trip per record: a third of the daily agent's time in the benchmark. Here a full batch
gets a successor in the partition's queue (aiokafka's own deque, drained in order), up to
``MAX_QUEUED`` batches, beyond which aiokafka's waiting applies again. Delivery guarantees do
not change: a queued record is in the producer, and Faust flushes the producer (waits for
every queued batch to be acknowledged) before it commits offsets.
"""

from __future__ import annotations

from typing import Any

from aiokafka.producer.message_accumulator import MessageAccumulator

__all__ = ["MAX_QUEUED", "queue_full_batches"]

MAX_QUEUED = 512  # batches per partition (at most ~25 MB of 50 KB records)
_installed: list[bool] = []


def queue_full_batches() -> None:
    """Install the queuing ``add_message`` (idempotent; process-wide)."""
    if _installed:
        return
    original = MessageAccumulator.add_message

    async def add_message(self: MessageAccumulator, tp: Any, key: Any, value: Any, timeout: float,
                          timestamp_ms: int | None = None, headers: Any = ()) -> Any:
        pending = self._batches.get(tp)
        if pending and len(pending) < MAX_QUEUED and not self._closed and self._exception is None:
            future = pending[-1].append(key, value, timestamp_ms, headers=list(headers))
            if future is None:  # full: queue a new batch behind it rather than wait for it to leave
                future = self._append_batch(self.create_builder(), tp).append(key, value, timestamp_ms,
                                                                              headers=list(headers))
            if future is not None:
                return future
        return await original(self, tp, key, value, timeout, timestamp_ms=timestamp_ms, headers=list(headers))

    MessageAccumulator.add_message = add_message  # aiokafka is untyped: a plain attribute to mypy
    _installed.append(True)
