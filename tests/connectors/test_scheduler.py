"""The scheduler's loop: a fetch that hits a bug is counted and logged (without identifiers), not lost
silently; at its in-flight cap it pauses its consumer and resumes as fetches finish. A stop commits
only the requests that finished; a commit the group refused (a fenced member) drops its offsets and
the scheduler goes on consuming. Its poll asks
for every data type a participant granted (the undated ones too) and none they did not; a Google
grant without sleep: sleep is skipped, reported on the participant's record, never asked again,
and the other types flow."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY

from cli.topics import create_all_topics
from connectors import scheduler as scheduler_module
from connectors.fetcher import FetchOutcome
from connectors.linking import complete_link
from connectors.scheduler import Scheduler, count_links, poll_requests
from connectors.simulator.service import SimulatorOptions
from connectors.vault import Link
from connectors.vendors import google_health_spec
from models.fetch import FetchReason, FetchRequest
from models.ids import research_id
from models.participants import ApiGeneration, LinkStatus, ParticipantLink
from models.providers import Provider
from models.raw import RawPage
from runtime.kafka import make_consumer, make_producer
from runtime.settings import Settings
from tests.connectors.stack import Stack, connector_stack
from tests.connectors.vendors.test_contract import consent_without


class _BrokenFetcher:
    async def fetch(self, research_id: str, request: FetchRequest) -> Any:
        raise RuntimeError(f"no such table for {research_id}")  # driver errors can quote parameters


async def test_a_fetch_that_raises_is_counted_as_error_and_logged_without_the_research_id(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scheduler = Scheduler(Settings.model_validate({"env": "demo", "data_dir": tmp_path}), bootstrap="unused:9092",
                          vault=None)  # type: ignore[arg-type]
    request = FetchRequest(Provider.GOOGLE_HEALTH, "steps", "2026-11-01", "2026-11-02", FetchReason.POLL, time.time())
    with caplog.at_level(logging.ERROR, logger="connectors.scheduler"):
        await scheduler._one(_BrokenFetcher(), b"rid-secret-42", request.to_bytes())  # type: ignore[arg-type]
    assert scheduler.progress.outcomes == {"error": 1}
    assert "RuntimeError" in caplog.text and "rid-secret-42" not in caplog.text


class _HeldFetcher:
    """Fetches that wait until the test lets them go."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def fetch(self, research_id: str, request: FetchRequest) -> Any:
        await self.release.wait()
        return FetchOutcome("done")


class _Message:
    def __init__(self, offset: int, key: bytes, value: bytes) -> None:
        self.offset, self.key, self.value = offset, key, value


class _StubConsumer:
    """A consumer of one partition: hands out what ``give`` queued, records the commits, and
    refuses the first ``refuse`` of them as aiokafka does for a fenced member."""

    tp = TopicPartition("fetch-requests", 0)

    def __init__(self, *, refuse: int = 0) -> None:
        self.queued: list[_Message] = []
        self.commits: list[dict[TopicPartition, int]] = []
        self.refuse, self.next_offset = refuse, 0

    def give(self, count: int) -> None:
        request = FetchRequest(Provider.GOOGLE_HEALTH, "steps", "2026-11-01", "2026-11-01", FetchReason.POLL)
        for _ in range(count):
            self.queued.append(_Message(self.next_offset, b"r", request.to_bytes()))
            self.next_offset += 1

    def assignment(self) -> set[TopicPartition]:
        return {self.tp}

    def paused(self) -> set[TopicPartition]:
        return set()

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, self.next_offset)

    async def position(self, tp: TopicPartition) -> int:
        return 0

    def pause(self, *tps: TopicPartition) -> None:
        pass

    def resume(self, *tps: TopicPartition) -> None:
        pass

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[_Message]]:
        await asyncio.sleep(0.01)
        batch, self.queued = self.queued, []
        return {self.tp: batch} if batch else {}

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if self.refuse:
            self.refuse -= 1
            raise CommitFailedError("Commit cannot be completed since the group has already rebalanced")
        self.commits.append({tp: o.offset for tp, o in offsets.items()})


class _DoneFetcher:
    async def fetch(self, research_id: str, request: FetchRequest) -> Any:
        return FetchOutcome("done")


def _stub_scheduler(tmp_path: Path) -> Scheduler:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path, "kafka_commit_interval": 0.02})
    return Scheduler(settings, bootstrap="unused:9092", vault=None)  # type: ignore[arg-type]


async def _until_true(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_a_stop_with_fetches_in_flight_commits_none_of_them(tmp_path: Path) -> None:
    scheduler, consumer, stop = _stub_scheduler(tmp_path), _StubConsumer(), asyncio.Event()
    consumer.give(3)
    never = _HeldFetcher()  # fetches that never return
    running = asyncio.ensure_future(scheduler._consume(stop, consumer, never))  # type: ignore[arg-type]
    await _until_true(lambda: scheduler.progress.consumed == 3)
    stop.set()  # SIGTERM
    await asyncio.wait_for(running, 5)
    assert consumer.commits, "it commits on the way out"
    assert consumer.commits[-1] == {consumer.tp: 0}  # 3 started, 0 finished: all 3 re-run after the restart
    assert scheduler.progress.outcomes == {}


async def test_a_refused_commit_of_a_fenced_member_drops_its_offsets_and_consuming_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scheduler, consumer, stop = _stub_scheduler(tmp_path), _StubConsumer(refuse=1), asyncio.Event()
    consumer.give(3)
    with caplog.at_level(logging.WARNING, logger="connectors.scheduler"):
        running = asyncio.ensure_future(scheduler._consume(stop, consumer, _DoneFetcher()))  # type: ignore[arg-type]
        await _until_true(lambda: consumer.refuse == 0)  # the first commit was refused
        assert not running.done(), "a refused commit does not end the scheduler"
        consumer.give(2)  # the group took the member back: later records
        await _until_true(lambda: scheduler.progress.consumed == 5 and bool(consumer.commits))
        stop.set()
        await asyncio.wait_for(running, 5)
    assert scheduler.progress.outcomes == {"done": 5}
    assert consumer.commits[-1] == {consumer.tp: 5}  # the later records' offsets are committed again
    refused = [r for r in caplog.records if "refused a commit" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.WARNING


@pytest.mark.integration
async def test_at_the_in_flight_cap_it_stops_taking_requests_and_resumes_when_they_finish(
        settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "_MAX_IN_FLIGHT", 5)
    settings = settings_factory(kafka_commit_interval=0.2)
    await create_all_topics(settings)
    bootstrap = settings.kafka.bootstrap_servers or ""
    scheduler = Scheduler(settings, bootstrap=bootstrap, vault=None)  # type: ignore[arg-type]
    producer = make_producer(settings)
    consumer = make_consumer(settings, settings.topic("fetch-requests"), group_id=f"{settings.kafka.topic_prefix}cap")
    fetcher, stop = _HeldFetcher(), asyncio.Event()
    request = FetchRequest(Provider.GOOGLE_HEALTH, "steps", "2026-11-01", "2026-11-01", FetchReason.POLL)

    async def publish(count: int) -> None:
        for n in range(count):
            await producer.send(settings.topic("fetch-requests"), request.to_bytes(), key=f"r{n}".encode())
        await producer.flush()

    async def until(condition: Callable[[], bool]) -> None:
        for _ in range(300):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out: consumed {scheduler.progress.consumed}")

    await producer.start()
    await consumer.start()
    try:
        running = asyncio.ensure_future(scheduler._consume(stop, consumer, fetcher))  # type: ignore[arg-type]
        await publish(8)
        await until(lambda: scheduler.progress.consumed >= 5)
        await asyncio.sleep(1)  # the loop's next turn pauses it
        held = scheduler.progress.consumed
        await publish(8)
        await asyncio.sleep(2)  # time for many more polls: none of them may hand out a record
        assert scheduler.progress.consumed == held and 5 <= held < 16 and scheduler.progress.in_flight == held
        assert consumer.paused()
        fetcher.release.set()
        await until(lambda: scheduler.progress.outcomes.get("done", 0) == 16)
        await until(lambda: not consumer.paused())  # at the loop's next turn, after its current poll
        stop.set()
        await running
        committed = [await consumer.committed(tp) or 0 for tp in consumer.assignment()]
        assert sum(committed) == 16  # every offset, once the held requests finished
    finally:
        stop.set()
        fetcher.release.set()
        await consumer.stop()
        await producer.stop()


class _Types:
    """A vendor client as the poll reads it: its data types."""

    def __init__(self, *data_types: str) -> None:
        self.data_types = data_types


class _PollVault:
    def __init__(self, links: list[Link], cursors: dict[tuple[str, str], str]) -> None:
        self._links, self._cursors = links, cursors

    async def links(self) -> list[Link]:
        return self._links

    async def cursors(self) -> dict[tuple[str, str], str]:
        return self._cursors


class _AllLinksVault:
    """A vault as ``count_links`` reads it: its counts of every link, whatever its status."""

    def __init__(self, links: list[Link]) -> None:
        self.links_now = links

    async def link_counts(self) -> dict[tuple[str, str, str], int]:
        counts: dict[tuple[str, str, str], int] = {}
        for link in self.links_now:
            key = (link.provider.value, link.status.value, link.api_generation.value)
            counts[key] = counts.get(key, 0) + 1
        return counts


async def test_linked_participants_are_counted_by_provider_status_and_generation() -> None:
    f, g = Provider.FITBIT, Provider.GOOGLE_HEALTH
    old, new = ApiGeneration.FITBIT_WEB_API, ApiGeneration.GOOGLE_HEALTH_V4
    vault = _AllLinksVault([Link("R1", f, old, LinkStatus.LINKED, None, 0.0, None),
                            Link("R2", f, old, LinkStatus.REVOKED, None, 0.0, 1.0),
                            Link("R3", g, new, LinkStatus.LINKED, None, 0.0, None),
                            Link("R4", g, new, LinkStatus.LINKED, None, 0.0, None)])
    reported: set[tuple[str, str, str]] = set()
    assert await count_links(vault, reported) == {  # type: ignore[arg-type]  # the one read it makes
        ("fitbit", "revoked", "fitbit_web_api"): 1, ("fitbit", "linked", "fitbit_web_api"): 1,
        ("google_health", "linked", "google_health_v4"): 2}
    vault.links_now = vault.links_now[2:]  # the Fitbit participants re-consented on the new API, say

    def linked(provider: str, status: str, generation: str) -> float | None:
        return REGISTRY.get_sample_value("wearables_participants_linked",
                                         {"provider": provider, "status": status, "api_generation": generation})

    await count_links(vault, reported)  # type: ignore[arg-type]
    assert linked("fitbit", "linked", "fitbit_web_api") == 0  # dropped to 0, not left at its old count
    assert linked("google_health", "linked", "google_health_v4") == 2


async def test_a_poll_asks_for_every_granted_type_undated_ones_included_and_none_denied() -> None:
    g = Provider.GOOGLE_HEALTH
    links = [Link("R1", g, ApiGeneration.GOOGLE_HEALTH_V4, LinkStatus.LINKED, None, 0.0, None),
             Link("R2", g, ApiGeneration.GOOGLE_HEALTH_V4, LinkStatus.LINKED, None, 0.0, None, ("sleep",))]
    vault = _PollVault(links, {("R1", "steps"): "2026-11-20", ("R1", "paired-devices"): "2026-11-20"})
    clients = {g: _Types("steps", "sleep", "paired-devices")}
    asked = [(rid, r.data_type, r.reason) for rid, r in await poll_requests(vault, clients, 5)]  # type: ignore[arg-type]  # the two reads the poll makes
    assert asked == [("R1", "steps", FetchReason.POLL), ("R1", "sleep", FetchReason.BACKFILL),
                     ("R1", "paired-devices", FetchReason.POLL),
                     ("R2", "steps", FetchReason.BACKFILL), ("R2", "paired-devices", FetchReason.BACKFILL)]


async def _keyed(settings: Settings, topic: str, *, until: Callable[[list[tuple[bytes, bytes]]], bool],
                 timeout: float = 60) -> list[tuple[bytes, bytes]]:
    """(key, value) of a topic's records from its start, until ``until`` says enough."""
    consumer = make_consumer(settings, settings.topic(topic), group_id=f"check-{topic}-{time.monotonic_ns()}")
    await consumer.start()
    seen: list[tuple[bytes, bytes]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not until(seen) and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            seen += [(m.key, m.value) for messages in batch.values() for m in messages]
    finally:
        await consumer.stop()
    return seen


async def _until(condition: Callable[[], Any], timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def _link_without_sleep(stack: Stack, participant: str, *, told: bool) -> str:
    """Consent with the sleep box unticked; ``told``: linked as linking does (the vault denies sleep
    from the start), else stored as a link from before the vault kept denied types."""
    client, redirect = stack.clients[Provider.GOOGLE_HEALTH], stack.settings.vendors.redirect_uri
    consent = await consent_without(client, stack.session, participant, [google_health_spec.SLEEP_SCOPE],
                                    redirect_uri=redirect)
    if told:
        link = await complete_link(stack.settings, stack.vault, stack.producer, client, participant, consent.code,
                                   consent.verifier)
        return link.research_id
    tokens = await client.exchange_code(consent.code, consent.verifier, redirect)
    identity = await client.whoami(tokens.access_token)
    rid = research_id(stack.settings.require_secret_key(), participant)
    await stack.vault.link(rid, Provider.GOOGLE_HEALTH, identity.user_id, tokens)
    return rid


@pytest.mark.integration
async def test_a_google_grant_without_sleep_skips_sleep_reports_it_and_stops_asking(
        settings_factory: Callable[..., Settings]) -> None:
    options = SimulatorOptions.complete(participants=2, days=2, late_share=0.0, duplicate_share=0.0)
    async with connector_stack(settings_factory, options, backfill_days=2, poll_interval=3600,
                               retry_base_delay=0.05) as stack:
        first, second = stack.sim.world.cohort.participant_ids
        told = await _link_without_sleep(stack, first, told=True)  # its backfill goes out: every type but sleep
        unaware = await _link_without_sleep(stack, second, told=False)
        start, end = scheduler_module.fetch_window(2)
        await stack.scheduler.publish_request(unaware, FetchRequest(Provider.GOOGLE_HEALTH, "all", start, end,
                                                                    FetchReason.BACKFILL, time.time()))

        async def denied() -> bool:
            link = await stack.vault.get(unaware)
            return link is not None and link.denied_data_types == ("sleep",)

        await _until(denied)  # the vendor's 403 on sleep denied it in the vault
        refusals = stack.sim.world.stats["scope_refusals_google_health"]
        assert refusals == 1  # once: neither retried nor asked for the next day
        granted = set(stack.clients[Provider.GOOGLE_HEALTH].data_types) - {"sleep"}

        def announced(records: list[tuple[bytes, bytes]]) -> bool:
            denying = {k.decode() for k, v in records if ParticipantLink.from_bytes(v).denied_data_types}
            return denying == {told, unaware}

        records = await _keyed(stack.settings, "participants", until=announced)
        assert announced(records), "each participant's record says sleep is not read"
        for key, value in records:
            assert ParticipantLink.from_bytes(value).denied_data_types in ((), ("sleep",)), key

        def every_type(pages: list[tuple[bytes, bytes]]) -> bool:
            kinds = {(k.decode(), RawPage.from_bytes(v).data_type) for k, v in pages}
            return kinds >= {(rid, t) for rid in (told, unaware) for t in granted}

        raw = await _keyed(stack.settings, "raw.google_health", until=every_type)
        assert every_type(raw) and all(RawPage.from_bytes(v).data_type != "sleep" for _, v in raw)

        again = await poll_requests(stack.vault, stack.clients, 2)  # the next poll round
        assert {(rid, r.data_type) for rid, r in again} == {(rid, t) for rid in (told, unaware) for t in granted}
        consumed = stack.scheduler.progress.consumed + len(again)
        for rid, request in again:
            await stack.scheduler.publish_request(rid, request)

        async def finished() -> bool:
            return stack.scheduler.progress.consumed >= consumed and stack.scheduler.progress.in_flight == 0

        await _until(finished)
        assert stack.sim.world.stats["scope_refusals_google_health"] == refusals  # sleep was not asked again
