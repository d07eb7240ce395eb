"""How the sink's flush (sinks/runner.py) fails, without a broker (a fake consumer and producer):
records that do not decode or cannot be written go to dlq alone, a corrupt partition is moved
aside and rebuilt, and a storage error (a full disk) is retried with backoff, committing nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from aiokafka import ConsumerRecord
from prometheus_client import REGISTRY

from models.daily import DailySummary
from models.dead_letter import DeadLetter
from models.errors import Reason
from models.samples import SampleBatch
from runtime.settings import Settings
from sinks.runner import SinkRunner
from sinks.tables import DAILY_SUMMARY
from sinks.writer import DatasetWriter, WriteReport
from tests.conftest import wait_until
from tests.sinks.helpers import cohort_records

PREFIX = "tfail."


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.sent.append((topic, value))

    def letters(self) -> list[DeadLetter]:
        return [DeadLetter.from_bytes(value) for topic, value in self.sent if topic == f"{PREFIX}dlq"]


class _Consumer:
    """Polled while the sink waits out a storage error: it must keep polling, paused."""

    def __init__(self) -> None:
        self.polls = 0
        self.paused: set[object] = set()

    def assignment(self) -> set[object]:
        return {"partition-0"}

    def pause(self, *partitions: object) -> None:
        self.paused |= set(partitions)

    def resume(self, *partitions: object) -> None:
        self.paused -= set(partitions)

    async def getmany(self, timeout_ms: int = 0) -> dict[object, list[ConsumerRecord]]:
        assert self.paused, "polled while the partitions were not paused"
        self.polls += 1
        await asyncio.sleep(timeout_ms / 1000)
        return {}


def _settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({"env": "demo", "topic_prefix": PREFIX, "kafka_bootstrap_servers": "127.0.0.1:9",
                                    "data_dir": tmp_path / "data", "store": "memory://", "metrics_port": 0})


def _record(topic: str, value: bytes, offset: int) -> ConsumerRecord:
    return ConsumerRecord(topic=f"{PREFIX}{topic}", partition=0, offset=offset, timestamp=0, timestamp_type=0,
                          key=b"k", value=value, checksum=None, serialized_key_size=1,
                          serialized_value_size=len(value), headers=[])


def _records(summaries: Sequence[DailySummary], batches: Sequence[SampleBatch],
             extra: Sequence[tuple[str, bytes]] = ()) -> list[ConsumerRecord]:
    values = [("intraday", b.to_bytes()) for b in batches] + [("daily", s.to_bytes()) for s in summaries]
    return [_record(topic, value, n) for n, (topic, value) in enumerate([*values, *extra])]


def _sink(tmp_path: Path) -> SinkRunner:
    sink = SinkRunner(_settings(tmp_path), location=str(tmp_path / "dataset"))
    sink.storage_backoff = (0.05, 0.1)
    return sink


async def _flush(sink: SinkRunner, records: list[ConsumerRecord], producer: _Producer,
                 consumer: _Consumer | None = None, stop: asyncio.Event | None = None) -> None:
    await sink._flush(records, producer, consumer or _Consumer(), stop or asyncio.Event())  # type: ignore[arg-type]


def _daily(sink: SinkRunner) -> pl.DataFrame:
    return sink.dataset.read_all(DAILY_SUMMARY).sort("person_id", "date")


def _broken(record: dict[str, Any], **changes: Any) -> bytes:
    return orjson.dumps(record | changes)


async def test_the_audit_probe_records_go_to_dlq_and_the_rest_is_written(tmp_path: Path) -> None:
    # audit finding 10: each of these escaped the flush (TypeError, a Polars error, AttributeError): the sink exited
    summaries, batches, _ = cohort_records(participants=2, days=1)
    batch, summary = orjson.loads(batches[0].to_bytes()), orjson.loads(summaries[0].to_bytes())
    probes = [("intraday", _broken(batch, labels=3)), ("intraday", _broken(batch, timestamps=["1", "2"])),
              ("daily", _broken(summary, steps="many")), ("daily", _broken(summary, zone_minutes=[1, 2]))]
    sink, producer = _sink(tmp_path), _Producer()
    await _flush(sink, _records(summaries, batches, probes), producer)
    assert [letter.reason for letter in producer.letters()] == [Reason.BAD_FIELD] * 4
    assert [letter.original for letter in producer.letters()] == [value for _, value in probes]
    assert _daily(sink).height == len(summaries)


async def test_a_record_that_cannot_be_written_goes_to_dlq_alone(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    summaries, batches, _ = cohort_records(participants=3, days=1)
    poison = summaries[1]
    apply = DatasetWriter.apply

    def failing_apply(self: DatasetWriter, days: Sequence[DailySummary], samples: Sequence[SampleBatch]) -> WriteReport:
        if poison in days:  # a record that decodes, yet the write raises (a bug, an odd value)
            raise ValueError("cannot write this one")
        return apply(self, days, samples)

    monkeypatch.setattr(DatasetWriter, "apply", failing_apply)
    sink, producer = _sink(tmp_path), _Producer()
    await _flush(sink, _records(summaries, batches), producer)
    letters = producer.letters()
    assert [(letter.reason, letter.stage) for letter in letters] == [(Reason.INTERNAL_ERROR, "sink")]
    assert letters[0].original == poison.to_bytes() and "ValueError" in letters[0].detail
    written = {(p, d.isoformat()) for p, d in _daily(sink).select("person_id", "date").rows()}
    assert written == {(s.research_id, s.local_date) for s in summaries if s is not poison}
    assert sink.progress.dead_letters == 1 and sink.progress.flushes == 1


async def test_a_corrupt_partition_does_not_stop_the_flush(tmp_path: Path) -> None:
    summaries, batches, _ = cohort_records(participants=2, days=1)
    sink, producer = _sink(tmp_path), _Producer()
    await _flush(sink, _records(summaries, batches), producer)
    path = Path(sink.dataset.path(DAILY_SUMMARY.name, date.fromisoformat(summaries[0].local_date)))
    path.write_bytes(b"PAR1 not really")
    revised = [dataclasses.replace(s, revision=s.revision + 1, steps=4242) for s in summaries]
    await _flush(sink, _records(revised, []), producer)
    assert _daily(sink)["steps"].to_list() == [4242] * len(summaries)  # the date rebuilt from the records
    assert [p.name.startswith("data.parquet.corrupt-") for p in path.parent.iterdir() if p != path] == [True]
    assert producer.letters() == []


async def test_a_full_disk_is_retried_until_space_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # audit finding 21: the sink exited on the OSError, and crash-looped into the same full disk
    summaries, batches, _ = cohort_records(participants=2, days=1)
    sink, producer = _sink(tmp_path), _Producer()
    await _flush(sink, _records(summaries, batches), producer)
    before = _daily(sink)
    replace, failures = os.replace, [0]

    def full_disk(src: str, dst: str) -> None:
        if failures[0] < 3:
            failures[0] += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    errors = REGISTRY.get_sample_value("wearables_sink_storage_errors_total") or 0.0
    revised = [dataclasses.replace(s, revision=s.revision + 1, steps=7) for s in summaries]
    consumer = _Consumer()
    flush = asyncio.create_task(_flush(sink, _records(revised, []), producer, consumer))
    await wait_until(lambda: failures[0] >= 2 or flush.done(), 10, "two failed attempts", every=0.01)
    assert not flush.done(), flush.exception()  # it waits and retries, rather than raising out of the flush
    assert sink.storage_blocked and not sink.ready()
    assert REGISTRY.get_sample_value("wearables_sink_storage_blocked") == 1
    assert _daily(sink).equals(before)  # the old files read as they were ...
    assert not list((tmp_path / "dataset").rglob("*.tmp"))  # ... and no temporary file is left
    await flush  # space returned after the third attempt: the same flush went through
    assert REGISTRY.get_sample_value("wearables_sink_storage_errors_total") == errors + 3
    assert REGISTRY.get_sample_value("wearables_sink_storage_blocked") == 0 and not sink.storage_blocked
    assert _daily(sink)["steps"].to_list() == [7] * len(summaries)
    assert consumer.polls > 0 and not consumer.paused  # it kept polling while it waited, and resumed
    assert sink.progress.flushes == 2 and producer.letters() == []


async def test_stopping_while_the_disk_is_full_commits_nothing(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from sinks.runner import _Stopped

    summaries, _, _ = cohort_records(participants=2, days=1)
    sink, producer, stop = _sink(tmp_path), _Producer(), asyncio.Event()

    def full_disk(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full_disk)
    flush = asyncio.create_task(_flush(sink, _records(summaries, []), producer, stop=stop))
    await asyncio.sleep(0.2)
    stop.set()
    with pytest.raises(_Stopped):  # run() then leaves its loop without committing
        await flush
    assert sink.progress.flushes == 0 and not list((tmp_path / "dataset").rglob("*.tmp"))


async def test_a_commit_the_group_refuses_is_dropped_and_the_sink_goes_on() -> None:
    from aiokafka.errors import CommitFailedError
    from prometheus_client import REGISTRY

    from sinks.runner import SinkRunner

    class Fenced:
        async def commit(self) -> None:
            raise CommitFailedError("this member was fenced")

    before = REGISTRY.get_sample_value("wearables_sink_commits_refused_total") or 0.0
    await SinkRunner._commit(Fenced())  # a consumer whose commit the group refuses
    assert REGISTRY.get_sample_value("wearables_sink_commits_refused_total") == before + 1
