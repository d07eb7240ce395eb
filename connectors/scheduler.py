"""``wearables scheduler``: fetch requests in, vendor pages out onto ``raw.<provider>``.

Fetch requests come from webhooks (the gateway), from linking (backfill) and from this
process's own reconciliation poll (every linked participant's every data type not denied,
the undated ones, their devices, included), all through the ``fetch-requests`` topic, so several
schedulers can share the work by partition. Each request runs as its own task; a partition's
offset is committed only up to its oldest unfinished request, so a crash re-runs what was in
flight (re-fetched pages are deduplicated downstream). A stop (SIGTERM) cancels the requests in
flight and commits only what finished: they re-run too. A failed request leaves its cursor
where it was, and the next poll asks again.

A member the group fenced (Kafka out of reach for longer than the session timeout) has its next
commit refused: the offsets it held are dropped, not committed, and it goes on consuming once
it rejoined; the group hands those partitions to it or to another member, which re-runs the
requests from the last commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.partitioner import DefaultPartitioner

from connectors.fetch_tracking import InFlight, Offsets, finished
from connectors.fetcher import Fetcher, FetchOutcome
from connectors.keyed_locks import KeyedLocks
from connectors.ratelimit import RateLimiter
from connectors.tokens import TokenManager
from connectors.vault import TokenVault
from connectors.vendor_health import VendorHealth
from connectors.vendors.base import VendorClient
from connectors.vendors.registry import aclose_all, build_clients
from models.dead_letter import DeadLetter
from models.errors import DecodeError, Reason
from models.fetch import FetchReason, FetchRequest
from models.providers import Provider
from models.raw import RawPage
from models.topics import raw_topic_suffix
from runtime.kafka import make_consumer, make_producer
from runtime.lost_logs import LostLogWatch
from runtime.metrics import counter, gauge
from runtime.service import TaskService
from runtime.settings import Settings

__all__ = ["LINKED", "Scheduler", "SchedulerProgress", "count_links", "fetch_window", "poll_requests"]

logger = logging.getLogger(__name__)

REQUESTS_IN = counter("scheduler_fetch_requests_total", "Fetch requests consumed, by outcome", ["reason", "outcome"])
IN_FLIGHT = gauge("scheduler_fetches_in_flight", "Fetch requests being carried out")
POLLS = counter("scheduler_polls_total", "Reconciliation poll rounds")
FENCED = counter("scheduler_commits_refused_total", "Commits the group refused (the member was fenced or the group "
                 "rebalanced): their offsets were dropped and those requests re-run")
LINKED = gauge("participants_linked", "Participants in the token vault, by provider, link status and vendor API "
               "generation", ["provider", "status", "api_generation"])
_POLL_OVERLAP_DAYS = 2  # late syncs add to recent days: polls re-read them (dedup absorbs the repeats)
_MAX_IN_FLIGHT = 20_000
_COUNT_INTERVAL_S = 30.0
_HANDOVER_COMMIT_S = 3.0  # well inside the rebalance timeout (the session timeout, 6 s by default)
_PARTITIONER = DefaultPartitioner()
HANDED_OVER = counter("scheduler_fetches_handed_over_total", "Fetches in flight stopped by a rebalance (whoever "
                      "holds their partition next runs them again)")


def fetch_window(days_back: int, *, now: datetime | None = None) -> tuple[str, str]:
    """(start, end) dates from ``days_back`` days ago through tomorrow (UTC): a local 'today'
    anywhere on Earth lies within it."""
    today = (now or datetime.now(UTC)).date()
    return (today - timedelta(days=days_back)).isoformat(), (today + timedelta(days=1)).isoformat()


async def poll_requests(vault: TokenVault, clients: dict[Provider, VendorClient], backfill_days: int
                        ) -> list[tuple[str, FetchRequest]]:
    """One reconciliation round: every linked participant and data type, from its cursor on.

    A data type the participant's grant lacks (``Link.denied_data_types``) is not asked for: the
    vendor would refuse it with 403 every round. Undated types are asked for every round too.
    """
    requests = []
    now, cursors = time.time(), await vault.cursors()
    for link in await vault.links():
        client = clients[link.provider]
        for data_type in client.data_types:
            if data_type in link.denied_data_types:
                continue
            cursor = cursors.get((link.research_id, data_type))
            if cursor is None:
                start, end = fetch_window(backfill_days)
                reason = FetchReason.BACKFILL
            else:
                start = (datetime.fromisoformat(cursor) - timedelta(days=_POLL_OVERLAP_DAYS)).date().isoformat()
                end, reason = fetch_window(0)[1], FetchReason.POLL
            requests.append((link.research_id, FetchRequest(link.provider, data_type, start, end, reason, now)))
    return requests


LinkCount = tuple[str, str, str]  # (provider, status, api_generation)


async def count_links(vault: TokenVault, reported: set[LinkCount]) -> dict[LinkCount, int]:
    """Set ``participants_linked`` from the vault's counts of links, whatever their status.

    A combination reported before (kept in ``reported``) and now empty is set to 0 rather than
    left at its old count: the last participant of a generation re-consented, say.
    """
    counts: dict[LinkCount, int] = dict.fromkeys(reported, 0)
    counts.update(await vault.link_counts())
    for (provider, status, generation), count in counts.items():
        LINKED.labels(provider=provider, status=status, api_generation=generation).set(count)
    reported.update(counts)
    return counts


@dataclass
class SchedulerProgress:
    consumed: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pages: int = 0
    in_flight: int = 0


class _Handover(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """What a rebalance of the scheduler group does to this member's fetches (aiokafka awaits both
    callbacks inside the rebalance, before the group hands any partition on)."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._scheduler.hand_over(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._scheduler.took(assigned)


class Scheduler(TaskService):
    """Consume ``fetch-requests``, carry each out as its own task, publish the pages onto ``raw.*``.

    A :class:`~runtime.service.Service`: ready once its producer and consumer are started; it
    also polls every linked participant each ``WEARABLES_POLL_INTERVAL`` (``poll=False``: only
    what arrives on the topic, as the connector benchmark wants).

        async with Scheduler(settings, bootstrap=bootstrap, vault=vault).running() as scheduler:
            ...                                    # scheduler.progress counts what it did

    :param settings: the run's settings (Kafka, scheduler and vendor sections are read).
    :param bootstrap: the Kafka to use.
    :param vault: the token vault (links, tokens, cursors).
    """

    name = "scheduler"

    def __init__(self, settings: Settings, *, bootstrap: str, vault: TokenVault, poll: bool = True) -> None:
        super().__init__()
        self.settings, self.bootstrap, self.vault, self._poll_too = settings, bootstrap, vault, poll
        self.progress = SchedulerProgress()
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None  # set while consuming
        self._link_counts: set[LinkCount] = set()  # the participants_linked series this process set
        # while consuming: what runs and what may be committed, per partition (the rebalance listener's too)
        self._offsets, self._running = Offsets(), InFlight(_MAX_IN_FLIGHT)
        self._fetching = KeyedLocks[str]()  # one fetch at a time per participant
        self._watch: LostLogWatch | None = None  # set while consuming; commits go through it
        # the partitions held after the last assignment, and those gained since the last poll round
        self._held: set[TopicPartition] = set()
        self._gained: set[TopicPartition] = set()
        self._gained_event = asyncio.Event()

    def ready(self) -> bool:
        # joined: the group gave this member its partitions (empty again during a rebalance)
        return super().ready() and self._consumer is not None and bool(self._consumer.assignment())

    async def hand_over(self, revoked: set[TopicPartition]) -> None:
        """Partitions are taken away: their fetches are cancelled and awaited before the group
        gives them to another member, so two schedulers never fetch one participant at once (the
        next owner re-runs them from the last commit; downstream dedup absorbs the pages both
        sent). Then what finished is committed, within a bound: aiokafka drops a member whose
        callback outlasts the rebalance timeout, fetches or not.

        aiokafka rebalances eagerly: ``revoked`` is every partition this member held, so each
        rebalance stops every fetch in flight, also of the partitions it gets back."""
        try:
            cancelled = await self._running.cancel(revoked)
        finally:
            with contextlib.suppress(TimeoutError, KafkaError):
                await asyncio.wait_for(self._commit(self._offsets), _HANDOVER_COMMIT_S)
            self._offsets.forget(revoked)
        if cancelled:
            HANDED_OVER.inc(cancelled)
            logger.info("scheduler: a rebalance stopped %d fetch(es) in flight on %d partition(s); whoever holds "
                        "them next runs them again", cancelled, len(revoked))

    def took(self, assigned: set[TopicPartition]) -> None:
        """Partitions are given: those this member did not hold before are polled at once."""
        gained = assigned - self._held
        self._held = set(assigned)
        if gained:
            self._gained |= gained
            self._gained_event.set()

    def owns(self, research_id: str, among: set[TopicPartition] | None = None) -> bool:
        """Whether this member holds the ``fetch-requests`` partition of ``research_id``'s requests
        (the producers' default partitioner: murmur2 of the key), and it is one of ``among`` if given."""
        consumer = self._consumer
        if consumer is None:
            return False
        topic = self.settings.topic("fetch-requests")
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        if not partitions:
            return False
        partition = TopicPartition(topic, _PARTITIONER(research_id.encode(), partitions, partitions))
        return partition in consumer.assignment() and (among is None or partition in among)

    async def publish_request(self, research_id: str, request: FetchRequest) -> None:
        assert self._producer is not None
        await self._producer.send(self.settings.topic("fetch-requests"), request.to_bytes(),
                                  key=research_id.encode())

    async def _publish_page(self, research_id: str, page: RawPage) -> asyncio.Future[object]:
        assert self._producer is not None
        self.progress.pages += 1
        future: asyncio.Future[object] = await self._producer.send(
            self.settings.topic(raw_topic_suffix(page.provider)), page.to_bytes(), key=research_id.encode())
        return future

    async def _publish_link(self, research_id: str) -> None:
        """The participant's link as the vault has it now onto ``participants``: after a revoked
        grant (its status) or a data type denied for a missing scope (``denied_data_types``)."""
        assert self._producer is not None
        link = await self.vault.get(research_id)
        if link is not None:
            await self._producer.send(self.settings.topic("participants"),
                                      link.record(self.settings.secret_key_id).to_bytes(),
                                      key=research_id.encode())

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        # Several pages per record batch even on the embedded broker: its one-record batches exist for
        # topics read "up to the end" (changelogs), and nobody reads raw.* or fetch-requests that way.
        # One batch per partition per round trip would cap the scheduler at the broker's round trips.
        self._producer = make_producer(settings, self.bootstrap, max_batch_size=1 << 20)
        consumer = make_consumer(settings, bootstrap=self.bootstrap, group_id=f"{settings.kafka.topic_prefix}scheduler")
        connector = aiohttp.TCPConnector(limit=settings.scheduler.fetch_concurrency, ttl_dns_cache=300)
        async with aiohttp.ClientSession(connector=connector) as session:
            clients = build_clients(settings.vendors, session)
            tokens = TokenManager(self.vault, clients, on_revoked=self._publish_link)
            limiter = RateLimiter(google_project_limit=settings.scheduler.google_project_limit)
            health = VendorHealth()
            fetcher = Fetcher(retry=settings.scheduler, vault=self.vault, tokens=tokens, clients=clients,
                              limiter=limiter, publish=self._publish_page, link_changed=self._publish_link,
                              health=health)
            await self._producer.start()
            await consumer.start()
            consumer.subscribe([settings.topic("fetch-requests")], listener=_Handover(self))
            self._consumer = consumer
            await count_links(self.vault, self._link_counts)
            side = [asyncio.ensure_future(self._count(stop))]
            if self._poll_too:
                side.append(asyncio.ensure_future(self._poll(stop, clients, health)))
            try:
                await self._consume(stop, consumer, fetcher)
            finally:
                self._consumer, self._watch = None, None
                for task in side:
                    task.cancel()
                await asyncio.gather(*side, return_exceptions=True)
                await consumer.stop()
                await self._producer.stop()
                await aclose_all(clients)

    async def _poll(self, stop: asyncio.Event, clients: dict[Provider, VendorClient], health: VendorHealth) -> None:
        """A request per linked participant and data type, for the participants whose partition
        this member holds: every ``poll_interval``, and at once for partitions it gains (at its
        start, or from a member that left). Not for a vendor that is down: its requests would only
        queue up behind the outage and then spend the participants' rate budget twice over; the
        first poll after it is back asks for it all."""
        among = await self._next_round(stop, None)  # nothing before the group gives partitions
        while not stop.is_set():
            for research_id, request in await poll_requests(self.vault, clients, self.settings.scheduler.backfill_days):
                # each member polls the participants whose requests it consumes: two would ask twice
                if self.owns(research_id, among) and not health.down(request.provider):
                    await self.publish_request(research_id, request)
            POLLS.inc()
            among = await self._next_round(stop, self.settings.scheduler.poll_interval)

    async def _next_round(self, stop: asyncio.Event, interval: float | None) -> set[TopicPartition] | None:
        """Wait for partitions gained (the set), ``interval`` to pass (None: all held), or ``stop``."""
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._gained_event.wait())]
        try:
            await asyncio.wait(waits, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        if not self._gained_event.is_set():
            return None
        gained, self._gained = self._gained, set()
        self._gained_event.clear()
        return gained

    async def _count(self, stop: asyncio.Event) -> None:
        """``participants_linked`` every ``_COUNT_INTERVAL_S``: links made in the portal show within
        half a minute, not at the next poll round (an hour). One GROUP BY query each time."""
        while not stop.is_set():
            try:
                await count_links(self.vault, self._link_counts)
            except Exception as error:  # a vault hiccup: the gauge waits for the next round
                logger.warning("counting the vault's links failed (%s); trying again in %g s",
                               type(error).__name__, _COUNT_INTERVAL_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _COUNT_INTERVAL_S)

    async def _consume(self, stop: asyncio.Event, consumer: AIOKafkaConsumer, fetcher: Fetcher) -> None:
        offsets, running = self._offsets, self._running = Offsets(), InFlight(_MAX_IN_FLIGHT)
        tasks, watch = running.tasks, LostLogWatch(consumer, "scheduler")
        self._watch = watch
        last_commit = time.monotonic()
        try:
            while not stop.is_set():
                # full: stop fetching records but keep polling, so the group keeps us and commits go on
                if running.room.is_set():
                    consumer.resume(*consumer.paused())
                else:
                    consumer.pause(*consumer.assignment())
                # before getmany, not between it and the tasks: a rebalance callback may run in any
                # await, and the batch must not outlive the partitions it came from
                offsets.forget(await watch.check())
                batch = await consumer.getmany(timeout_ms=300, max_records=2000)
                for tp, messages in batch.items():
                    for message in messages:
                        partition = offsets.start(tp, message.offset)
                        task = asyncio.ensure_future(self._one(fetcher, message.key, message.value))
                        task.add_done_callback(functools.partial(finished, partition, message.offset))
                        running.add(tp, task)
                self.progress.in_flight = len(tasks)
                IN_FLIGHT.set(len(tasks))
                if time.monotonic() - last_commit >= self.settings.kafka.commit_interval and offsets.partitions:
                    await self._commit(offsets)
                    last_commit = time.monotonic()
        finally:  # stopping, or an error: the fetches in flight end their current call; none is left unawaited
            if tasks:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        # after the cancelled tasks ended: their offsets are not finished, so this commits only what was
        await self._commit(offsets)

    async def _commit(self, offsets: Offsets) -> None:
        """Commit what finished (all of ``offsets`` is dropped if the group refused it), through the
        lost-log watch: never the offsets of a log the broker lost (``runtime/lost_logs.py``)."""
        watch = self._watch
        if watch is None:  # not consuming
            return
        consumer = watch.consumer
        committable = offsets.committable(consumer.assignment())
        if not committable:
            return
        try:
            offsets.forget(await watch.commit(committable) or [])
        except CommitFailedError:
            # Fenced: Kafka was out of reach longer than the session timeout, or the group rebalanced
            # meanwhile. The partitions may be another member's now; whoever gets them re-runs
            # from the last commit (fetches are idempotent downstream). aiokafka rejoins at the next poll.
            FENCED.inc()
            logger.warning("the consumer group refused a commit (this member was fenced or the group rebalanced); "
                           "its offsets are dropped and those requests re-run from the last commit")
            offsets.forget(list(offsets.partitions))
            # a member cut off from Kafka is fenced without its revocation callback: its fetches
            # would go on beside the new owner's re-run of them, so they stop here
            stopped = await self._running.cancel(list(self._running.of))
            if stopped:
                HANDED_OVER.inc(stopped)

    async def _one(self, fetcher: Fetcher, key: bytes | None, value: bytes | None) -> None:
        self.progress.consumed += 1
        try:
            if not key:
                raise DecodeError("fetch request without a research_id key", reason=Reason.BAD_KEY)
            request = FetchRequest.from_bytes(value or b"")
        except DecodeError as error:
            REQUESTS_IN.labels("unknown", "dead_letter").inc()
            await self._dead_letter(key, value or b"", error)
            return
        research_id = key.decode()
        try:
            # one at a time per participant: their calls never overlap at the vendor (its per-user
            # limit is shared by all of them), and two data types' cursors are written in turn
            async with self._fetching.held(research_id):
                outcome: FetchOutcome = await fetcher.fetch(research_id, request)
        except Exception as error:  # one request's bug must not end the others, nor vanish
            # the type only: driver messages can quote SQL parameters, i.e. research IDs
            logger.error("a fetch request failed unexpectedly (%s); its cursor stays behind and the next "
                         "poll asks again", type(error).__name__)
            outcome = FetchOutcome("error")
        self.progress.outcomes[outcome.outcome] += 1
        REQUESTS_IN.labels(request.reason.value, outcome.outcome).inc()

    async def _dead_letter(self, key: bytes | None, value: bytes, error: DecodeError) -> None:
        assert self._producer is not None
        letter = DeadLetter(stage="scheduler", reason=error.reason, detail=str(error), key=key, original=value,
                            topic=self.settings.topic("fetch-requests"), at=time.time())
        await self._producer.send(self.settings.topic("dlq"), letter.to_bytes(), key=key)
