"""The daily agent: ``samples`` → deduplicated day state → ``intraday`` and ``daily``.

State lives in two tables, both keyed so that a key stays on the partition of its research_id:
``days`` (``research_id|local date`` → packed day state) and ``watermarks`` (``p<partition>`` →
the partition's event-time watermark). Days are finalized and expired by a sweep that runs
inside the agent (a Faust timer has no current event, and RocksDB tables need one to write).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiokafka.partitioner import murmur2

from models.audit import Action, Actor, AuditRecord, subject_of
from models.daily import DailySummary, daily_key
from models.errors import DecodeError
from models.purge import PurgeMarker, is_purge_marker
from models.samples import SampleBatch
from runtime.metrics import counter, gauge, histogram
from runtime.purges import SKIPPED
from streams.agents.takes import Deliveries, Events, run_takes
from streams.daily.aggregate import DailyRules
from streams.daily.process import DayPolicy, DayUpdate, apply_batches, finalize_due
from streams.dead_letters import for_error, is_infrastructure
from streams.event_context import as_current_event, by_partition
from streams.progress import Progress

if TYPE_CHECKING:
    import faust
    from faust.types import EventT, StreamT

    from runtime.purges import PurgeList
    from runtime.settings import DailySettings, Settings

__all__ = ["DAILY_TABLES", "NEWEST_SAMPLE", "note_newest_sample", "policy_of", "register_daily"]

logger = logging.getLogger(__name__)

DAILY_TABLES = ("days", "watermarks")
STAGE = "daily"

DEDUP = counter("dedup_samples_total", "Samples by dedup outcome", ["outcome"])
SUMMARIES = counter("daily_summaries_total", "Daily summaries emitted", ["status"])
DELETED = counter("daily_samples_deleted_total", "Samples removed because the vendor withdrew them (DELETE)")
DAYS_EXPIRED = counter("daily_days_expired_total", "Day states expired from the store")
PURGED_DAYS = counter("daily_days_purged_total", "Day states deleted because their participant's data was purged")
STATE_BYTES = gauge("daily_state_last_bytes", "Size of the last day state written, in bytes")
SECONDS = histogram("daily_batch_seconds", "Time to apply one take of sample batches",
                    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
#: ``time() - wearables_daily_newest_sample_timestamp_seconds`` is how fresh the daily data is, per vendor.
NEWEST_SAMPLE = gauge("daily_newest_sample_timestamp_seconds", "The newest sample (epoch seconds) of the daily "
                      "summaries emitted, per provider", ["provider"])
PHASE_SECONDS = histogram("daily_phase_seconds", "Time per take in each phase of the daily agent", ["phase"],
                          buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))


def policy_of(daily: DailySettings) -> DayPolicy:
    rules = DailyRules(valid_min_hours=daily.valid_day_min_hours, valid_min_steps=daily.valid_day_min_steps,
                       valid_max_steps=daily.valid_day_max_steps)
    return DayPolicy(grace_s=daily.grace_days * 86400, retention_s=daily.state_retention_days * 86400, rules=rules)


def register_daily(app: faust.App, settings: Settings, progress: Progress, purges: PurgeList) -> None:
    """Declare the daily agent, its tables and topics on ``app``; batches of ``purges`` are skipped,
    and a purge marker (``models/purge.py``) deletes its participant's days."""
    policy = policy_of(settings.daily)
    secret = settings.require_secret_key()
    samples = app.topic(settings.topic("samples"), key_serializer="raw", value_serializer="raw")
    intraday = app.topic(settings.topic("intraday"), key_serializer="raw", value_serializer="raw")
    daily = app.topic(settings.topic("daily"), key_serializer="raw", value_serializer="raw")
    dlq = app.topic(settings.topic("dlq"), key_serializer="raw", value_serializer="raw")
    audit = app.topic(settings.topic("audit"), key_serializer="raw", value_serializer="raw")
    # bytes types give "raw" serializers to both the store and the changelog (a Schema only reaches the latter)
    days = app.Table("days", partitions=settings.kafka.partitions, key_type=bytes, value_type=bytes,
                     help="research_id|local_date -> packed day state")
    marks = app.Table("watermarks", partitions=settings.kafka.partitions, key_type=bytes, value_type=bytes,
                      help="p<partition> -> event-time watermark (epoch seconds)")
    sent = Deliveries()  # confirmed before each take is acknowledged
    last_sweep: dict[int, float] = {}
    newest: dict[str, int] = {}  # per provider, the newest sample of a summary emitted (the gauge only rises)

    @app.agent(samples, name="daily", concurrency=1)
    async def daily_days(stream: StreamT[bytes]) -> None:
        await purges.ready.wait()  # a replay must not bring a purged participant back
        takes = stream.take_events(1000, within=0.25)  # type: ignore[attr-defined]  # faust's StreamT lacks take_events (Stream has it)
        await run_takes(app, STAGE, takes, sent, process=_take, recover=_redo_alone)

    async def _redo_alone(events: Events, error: Exception) -> None:
        # One bad record must not divert the take's good ones: redo it record by record
        # (replayed samples are duplicates to the day states, so a partial first try is harmless).
        logger.exception("daily take of %d events failed; redoing it record by record", len(events))
        for event in events:
            await _take_alone(event)

    async def _take(events: list[EventT[bytes]]) -> None:
        kept = await _take_purges(events)
        if kept:
            await _apply(kept)

    async def _take_alone(event: EventT[bytes]) -> None:
        """One record of a failed take on its own; to the dlq if it fails alone too."""
        try:
            await _take([event])
        except Exception as error:
            if is_infrastructure(error):
                raise
            logger.warning("a daily record failed alone (%s); it goes to the dlq", type(error).__name__)
            await sent.send(dlq, key=event.message.key, value=for_error(
                STAGE, error, key=event.message.key, original=event.message.value or b"",
                topic=event.message.topic).to_bytes())

    async def _take_purges(events: list[EventT[bytes]]) -> list[EventT[bytes]]:
        """Carry out the take's purge markers; the events left, without any of a purged participant.

        Batches of theirs earlier in the take are dropped too: their days are deleted anyway.
        """
        for event in events:
            if is_purge_marker(event.message.value):
                try:
                    marker = PurgeMarker.from_bytes(event.message.value or b"")
                except DecodeError as error:
                    await sent.send(dlq, key=event.message.key, value=for_error(
                        STAGE, error, key=event.message.key, original=event.message.value or b"",
                        topic=event.message.topic).to_bytes())
                    continue
                purges.add(marker.research_id)
                with as_current_event(event):
                    await _purge(marker)
        kept = [e for e in events if not is_purge_marker(e.message.value) and not purges.is_purged(e.message.key)]
        skipped = len(events) - len(kept) - sum(is_purge_marker(e.message.value) for e in events)
        if skipped:
            SKIPPED.labels(stage=STAGE).inc(skipped)
        return kept

    async def _purge(marker: PurgeMarker) -> None:
        """Delete the participant's day states (tombstones in the changelog), tombstone their
        ``daily`` keys, pass the marker on to the sink, and say what was removed on ``audit``.

        Their keys are found by a scan of this worker's days: purges are rare, and a scan needs no
        index kept for every participant. Days older than the state retention are not in the
        table; the marker names those (the dataset's dates of theirs), so they are tombstoned too.
        """
        prefix = f"{marker.research_id}|".encode()
        keys = [key for key in list(days.keys()) if key.startswith(prefix)]
        for key in keys:
            del days[key]
        PURGED_DAYS.inc(len(keys))
        dates = {key.decode().partition("|")[2] for key in keys} | set(marker.dates)
        for day in sorted(dates):
            await sent.send(daily, key=daily_key(marker.research_id, day).encode(), value=None)
        await sent.send(intraday, key=marker.research_id.encode(), value=marker.to_bytes())
        subject = subject_of(secret, marker.research_id)
        record = AuditRecord(subject, Action.REMOVED, Actor.SYSTEM, time.time(), "worker",
                             {"day_states": len(keys), "daily_tombstones": len(dates)})
        await sent.send(audit, key=subject.encode(), value=record.to_bytes())

    async def _apply(events: list[EventT[bytes]]) -> None:
        """One vectorised pass over the whole batch; table writes under each key's own partition."""
        started = time.perf_counter()
        groups = by_partition(events)
        batches, raw, partition_of_key, watermarks = [], [], {}, {}
        for partition, group in groups.items():
            decoded = []
            for event in group:
                try:
                    decoded.append(SampleBatch.from_bytes(event.message.value or b""))
                    raw.append(event.message.value or b"")
                except DecodeError as error:
                    await sent.send(dlq, key=event.message.key, value=for_error(
                        STAGE, error, key=event.message.key, original=event.message.value or b"",
                        topic=event.message.topic).to_bytes())
            with as_current_event(group[-1]):
                watermarks[partition] = _advance_watermark(partition, decoded)
            for batch in decoded:
                partition_of_key[daily_key(batch.research_id, batch.local_date)] = partition
            batches += decoded
        phase = _phases(started)
        phase("decode")
        stored = {k: v for k in partition_of_key if (v := days.get(k.encode())) is not None}
        phase("read")
        # The oldest watermark of the batch's partitions decides retention: nothing is dropped early.
        # Off the event loop (pure; Polars releases the GIL): producing and fetching go on meanwhile.
        update = await asyncio.to_thread(apply_batches, batches, stored, policy=policy,
                                         watermark=min(watermarks.values(), default=0))
        phase("apply")
        # What the take made is delivered before the state that says it was made: a worker that
        # dies between the two replays the take against the old state and sends the same again
        # (the sink upserts). The other order lost it: the changelog already held the new state,
        # so the replay found only duplicates and sent nothing.
        for position in update.forwarded:
            await sent.send(intraday, key=batches[position].research_id.encode(), value=raw[position])
        await _send(update, status="updated")
        await sent.confirm()
        phase("send")
        for partition, group in groups.items():
            with as_current_event(group[-1]):
                for key, blob in update.states.items():
                    if partition_of_key[key] == partition:
                        days[key.encode()] = blob
                        STATE_BYTES.set(len(blob))
        phase("write")
        DEDUP.labels(outcome="new").inc(update.new)
        DEDUP.labels(outcome="duplicate").inc(update.duplicates)
        DEDUP.labels(outcome="revision").inc(update.revisions)
        DELETED.inc(update.deleted)
        progress.add("sample_batches", len(events))
        progress.add("summaries", len(update.summaries))
        for partition, group in groups.items():
            if time.monotonic() - last_sweep.get(partition, 0.0) >= settings.daily.finalize_interval:
                last_sweep[partition] = time.monotonic()
                with as_current_event(group[-1]):
                    await _sweep(partition, watermarks[partition])
        phase("sweep")
        SECONDS.observe(time.perf_counter() - started)

    def _advance_watermark(partition: int, batches: list[SampleBatch]) -> int:
        key = f"p{partition}".encode()
        current = int(marks.get(key) or 0)
        newest = max((max(b.timestamps) for b in batches if len(b)), default=0)
        # A clock far in the future on one device must not finalize everyone's days.
        candidate = min(newest, int(time.time()) + 86400)
        if candidate > current:
            marks[key] = str(candidate).encode()
            return candidate
        return current

    async def _sweep(partition: int, watermark: int) -> None:
        mine = {key.decode(): blob for key, blob in list(days.items())
                if _partition_of(key, settings.kafka.partitions) == partition}
        update = finalize_due(mine, policy=policy, watermark=watermark)
        await _send(update, status="final")
        await sent.confirm()  # before the states that say so, as in _apply
        for key in update.deletes:
            del days[key.encode()]
            DAYS_EXPIRED.inc()
        for key, blob in update.states.items():
            days[key.encode()] = blob
        progress.add("finalized", len(update.summaries))

    async def _send(update: DayUpdate, *, status: str) -> None:
        # One await at a time: gathering thousands of sends measured slower (wake-ups cost more
        # than the round trips they overlap).
        for batch in update.intraday:
            await sent.send(intraday, key=batch.research_id.encode(), value=batch.to_bytes())
        for summary in update.summaries:
            await sent.send(daily, key=summary.key.encode(), value=summary.to_bytes())
            SUMMARIES.labels(status="late" if summary.late else status).inc()
            note_newest_sample(newest, summary)
        for letter in update.letters:
            await sent.send(dlq, key=letter.key, value=letter.to_bytes())


def note_newest_sample(newest: dict[str, int], summary: DailySummary) -> None:
    """Raise the freshness gauge of the summary's provider to its newest sample, kept in ``newest``;
    a replay or a late revision of an older day leaves it where it is."""
    at = summary.last_sample_at
    if at is None:
        return
    provider = summary.source or "unknown"
    if at > newest.get(provider, 0):
        newest[provider] = at
        NEWEST_SAMPLE.labels(provider=provider).set(at)


def _phases(started: float) -> Callable[[str], None]:
    """``phase(name)`` observes the time since the previous call (or ``started``) under ``name``."""
    last = [started]

    def phase(name: str) -> None:
        now = time.perf_counter()
        PHASE_SECONDS.labels(phase=name).observe(now - last[0])
        last[0] = now

    return phase


def _partition_of(key: bytes, partitions: int) -> int:
    """The partition of a ``research_id|date`` key: that of its research_id (the producer's murmur2)."""
    research_id = key.partition(b"|")[0]
    return (int(murmur2(research_id)) & 0x7FFFFFFF) % partitions
