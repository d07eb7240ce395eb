"""A production-shaped pipeline for the fault tests: the gateway, scheduler, worker and sink as
child ``wearables`` processes (each can be SIGKILLed and restarted on the same ports), the vendor
simulator in this process (its world is the truth, its switches are the faults), the embedded
broker over TCP. ``outcome()`` is what a run leaves behind: the latest ``daily`` summary of every
participant-day (revision counters aside) and every Parquet table, sorted, for comparing a faulty
run with a clean one."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import polars as pl
from aiokafka import TopicPartition

from cli.children import ChildProcess
from cli.services import linking_client
from cli.topics import create_all_topics
from connectors.linking import link_through_consent
from connectors.simulator.service import RunningSimulator, SimulatorOptions, SimulatorService
from connectors.simulator.world import World
from connectors.vault import open_vault
from models.daily import DailySummary
from models.dead_letter import DeadLetter
from models.ids import research_id
from models.providers import Provider
from runtime.broker import free_port
from runtime.kafka import make_consumer, make_producer
from runtime.settings import Settings, variable_name
from sinks.dataset import Dataset
from sinks.tables import TABLES
from tests.streams.daily.helpers import IGNORED

PARTICIPANTS = 10
DAYS = 3
#: The children, in the order they start (each stage's consumer is up before its input arrives).
CHILDREN = ("worker", "sink", "gateway", "scheduler")

Truth = dict[str, tuple[int, int, int | None]]


@dataclass
class Outcome:
    """What a run leaves: ``daily`` (key → summary fields but revision counters) and ``tables``
    (name → the Parquet table, every column, rows sorted)."""

    daily: dict[str, dict[str, Any]]
    tables: dict[str, pl.DataFrame]
    stats: dict[str, int] = field(default_factory=dict)

    def differences(self, clean: Outcome) -> list[str]:
        """What differs from ``clean``, one line per daily key or table (empty: the same)."""
        found = [f"daily {key}: {_changed(self.daily.get(key), want)}" for key, want in clean.daily.items()
                 if self.daily.get(key) != want]
        found += [f"daily {key}: not in the clean run" for key in self.daily.keys() - clean.daily.keys()]
        return found + self.table_differences(clean)

    def of(self, person_ids: set[str]) -> Outcome:
        """The same outcome, only the rows of ``person_ids`` (research IDs)."""
        return Outcome({k: v for k, v in self.daily.items() if k.split("|")[0] in person_ids},
                       {name: frame.filter(pl.col("person_id").is_in(sorted(person_ids)))
                        for name, frame in self.tables.items()}, self.stats)

    def table_differences(self, clean: Outcome) -> list[str]:
        """The Parquet tables that differ from ``clean``'s, with their row counts."""
        found = []
        for name, want in clean.tables.items():
            have = self.tables.get(name)
            if have is None or not have.equals(want):
                extra = "" if have is None else (f"; not in the clean run: {_rows_not_in(have, want)}"
                                                 f"; only in the clean run: {_rows_not_in(want, have)}")
                found.append(f"table {name}: {None if have is None else have.height} rows != {want.height}{extra}")
        return found


def _rows_not_in(frame: pl.DataFrame, other: pl.DataFrame) -> list[dict[str, Any]]:
    """Two rows of ``frame`` that ``other`` lacks (nulls equal to nulls)."""
    return frame.join(other, on=frame.columns, how="anti", nulls_equal=True).head(2).to_dicts()


def _changed(have: dict[str, Any] | None, want: dict[str, Any]) -> str:
    """The fields that differ, as have != want."""
    if have is None:
        return "missing"
    return ", ".join(f"{f}: {have.get(f)} != {v}" for f, v in want.items() if have.get(f) != v)


def options(**overrides: Any) -> SimulatorOptions:
    """The fault tests' cohort: every day complete, trackers syncing late and twice, by webhook;
    no paired devices (a device's last sync follows the wall clock, so two runs would differ)."""
    base = SimulatorOptions.complete(participants=PARTICIPANTS, days=DAYS, seed=1919, sync_interval_s=1.0,
                                     late_share=0.4, duplicate_share=0.2, devices=False)
    return replace(base, **overrides)


class Pipeline:
    """One run's processes. ``flat`` settings (``variable_name`` spelling) go to this process's
    settings and to every child's environment alike."""

    def __init__(self, broker: str, scratch: Path, sim_options: SimulatorOptions, *,
                 processes: tuple[str, ...] = CHILDREN, **flat: Any) -> None:
        self.scratch, self.processes = scratch, processes
        self.sim_port, self.gateway_port = free_port(), free_port()
        values: dict[str, Any] = {
            "env": "demo", "kafka_bootstrap_servers": broker, "topic_prefix": f"f{uuid.uuid4().hex[:10]}.",
            "data_dir": scratch / "data", "store": "rocksdb://", "partitions": 4, "log_level": "WARNING",
            "vault_url": f"sqlite:///{scratch / 'vault.sqlite'}",
            "vendor_api_base": f"http://127.0.0.1:{self.sim_port}", "gateway_port": self.gateway_port,
            # nothing is finalized (so ``final`` and ``late`` do not depend on arrival order), polls are
            # the fallback after faults, fetches retry quickly
            "grace_days": 30, "backfill_days": DAYS + 1, "poll_interval": 20, "retry_base_delay": 0.2,
            "fetch_max_attempts": 8, "http_timeout": 5, "sink_flush_interval": 1, "kafka_commit_interval": 1,
        }
        values.update(flat)
        self.settings = Settings.model_validate(values)
        self.env = {variable_name(k): str(v) for k, v in values.items()}
        self.sim_options = replace(sim_options, port=self.sim_port,
                                   webhook_base=f"http://127.0.0.1:{self.gateway_port}")
        self.children: dict[str, ChildProcess] = {}
        self.sim: RunningSimulator | None = None
        self.fitbit_linked: set[str] = set()  # research IDs linked with Fitbit (whose days have its own summary)

    def child(self, name: str) -> ChildProcess:
        """``name`` is the command, or ``<command>-<n>`` for one of several (``worker-2``: a worker
        with its own table state directory, as each worker of a deployment has)."""
        command, _, nth = name.partition("-")
        env = dict(self.env)
        if command == "worker" and nth:
            env[variable_name("faust_state_dir")] = str(self.scratch / name / "state")
        return ChildProcess((command,), env=env, log=self.scratch / f"{name}.log", name=name, ready_timeout=180)

    async def start(self, name: str) -> None:
        self.children[name] = self.child(name)
        await self.children[name].start()

    async def kill(self, name: str) -> None:
        """SIGKILL ``name``: no cleanup, no commit, no flush."""
        process = self.children[name].process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(process.wait(), 10)

    async def restart(self, name: str) -> None:
        await self.start(name)

    @contextlib.asynccontextmanager
    async def supervised(self, name: str) -> AsyncIterator[list[int]]:
        """While inside, ``name`` is started again whenever it exits, as a supervisor's restart
        policy does; yields the exit codes seen."""
        codes: list[int] = []

        async def watch() -> None:
            while True:
                process = self.children[name].process
                assert process is not None
                codes.append(await process.wait())
                await self.restart(name)

        task = asyncio.ensure_future(watch())
        try:
            yield codes
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @contextlib.asynccontextmanager
    async def running(self, *, link: bool = True) -> AsyncIterator[Pipeline]:
        """Every child started, then the simulator; every participant linked unless ``link`` is False."""
        await create_all_topics(self.settings)
        try:
            for name in self.processes:
                await self.start(name)
            async with SimulatorService(self.settings, self.sim_options).running() as simulator:
                self.sim = simulator.sim
                if link:
                    await self.link(self.participants)
                yield self
        finally:
            for child in self.children.values():
                await child.stop()

    @property
    def participants(self) -> list[str]:
        assert self.sim is not None
        return list(self.sim.world.cohort.participant_ids)

    async def link(self, participants: list[str]) -> None:
        """``participants`` linked through the simulator's consent pages: by their place in the
        cohort, even ones with Fitbit, odd ones with Google."""
        producer = make_producer(self.settings)
        await producer.start()
        place = {p: n for n, p in enumerate(self.participants)}
        try:
            async with open_vault(self.settings) as vault, aiohttp.ClientSession() as session:
                clients = {p: linking_client(self.settings, p, session) for p in Provider}
                for participant in participants:
                    provider = Provider.GOOGLE_HEALTH if place[participant] % 2 else Provider.FITBIT
                    await link_through_consent(self.settings, vault, producer, clients[provider], session, participant)
                    if provider is Provider.FITBIT:
                        self.fitbit_linked |= self.research_ids([participant])
                for client in clients.values():
                    await client.aclose()
            await producer.flush()
        finally:
            await producer.stop()

    def research_ids(self, participants: list[str]) -> set[str]:
        secret = self.settings.require_secret_key()
        return {research_id(secret, p) for p in participants}

    def truth(self) -> Truth:
        """What the world says of every simulated participant-day (:func:`world_truth`)."""
        assert self.sim is not None
        world = self.sim.world
        return world_truth(world, self.settings.require_secret_key(), world.cohort.participant_ids)

    async def summaries(self) -> dict[str, DailySummary]:
        """The latest summary per key on ``daily`` (highest revision), read to the end offsets."""
        return await latest_summaries(self.settings)

    async def settled(self, timeout: float, *, check: Callable[[], bool] = lambda: True,
                      clean: Outcome | None = None) -> None:
        """Wait until every simulated participant-day is summarized as the world says, the sink
        has written every one of them (and, for a Fitbit participant, the day's own activity
        summary too: a page of its own, fetched after the intraday ones and written from
        ``intraday``, so it can land after the day's summary), and ``check()`` holds; then, given
        ``clean``, until every table equals its (within 120 s more: what the sink wrote last). An
        AssertionError naming what is missing."""
        truth = self.truth()
        deadline = time.monotonic() + timeout
        missing: list[str] = list(truth)
        while time.monotonic() < deadline:
            got = await self.summaries()
            missing = [k for k, want in truth.items() if k not in got or _figures(got[k]) != want]
            if not missing:
                missing = sorted(self._fitbit_days(truth) - self._vendor_days_written())
            # the pipeline also summarizes days around the world's (the backfill asks for more): all are written
            if not missing and self.written() == len(got) and check():
                await asyncio.sleep(3 * float(self.settings.sink.flush_interval))  # the last flush lands
                if clean is not None:
                    await self.settled_tables(clean, 120)
                return
            await asyncio.sleep(1)
        raise AssertionError(f"not settled after {timeout:g}s: {len(missing)} of {len(truth)} days missing "
                             f"or different (e.g. {missing[:3]}); {self.written()} written; "
                             f"{await self.diagnosis()}")

    async def settled_tables(self, clean: Outcome, timeout: float, *, person_ids: set[str] | None = None) -> None:
        """Wait until every Parquet table equals ``clean``'s, in the rows of ``person_ids`` if given
        (for runs whose topics were lost on the way, so that ``daily`` no longer holds every day)."""
        deadline = time.monotonic() + timeout

        def scoped(outcome: Outcome) -> Outcome:
            return outcome if person_ids is None else outcome.of(person_ids)

        while (left := scoped(await self.outcome()).table_differences(scoped(clean))) and time.monotonic() < deadline:
            await asyncio.sleep(2)
        if left:
            raise AssertionError(f"tables not as in the clean run after {timeout:g}s: {left}; "
                                 f"{await self.diagnosis()}")

    async def diagnosis(self) -> str:
        """What a failed wait reports: the simulator's counts, each child's counters of what it did
        with requests, notifications and pages (the metrics below), and the end of each log."""
        wanted = ("wearables_scheduler_fetch_requests_total{", "wearables_gateway_", "wearables_connector_",
                  "wearables_webhook", "wearables_kafka_partitions_rewound_total{", "wearables_sink_records_total{")
        counters: dict[str, dict[str, float]] = {}
        async with aiohttp.ClientSession() as session:
            for name, child in self.children.items():
                with contextlib.suppress(Exception):  # a child that is down has no metrics to give
                    counters[name] = {k: v for k, v in (await child.metrics(session)).items()
                                      if k.startswith(wanted) and v and not k.endswith(("_created{", "_bucket{"))}
        stats = dict(self.sim.world.stats) if self.sim is not None else {}
        logs = {name: _tail(c.log) for name, c in self.children.items()}
        return f"simulator: {stats}; dead letters: {await self.dead_letters()}; metrics: {counters}; logs: {logs}"

    async def dead_letters(self) -> dict[str, int]:
        """``stage/reason/topic`` → records on ``dlq`` (a page dead-lettered is a day that never comes)."""
        found: Counter[str] = Counter()
        with contextlib.suppress(Exception):  # Kafka away: the rest of the diagnosis still helps
            for value in await topic_values(self.settings, "dlq"):
                letter = DeadLetter.from_bytes(value)
                found[f"{letter.stage}/{letter.reason.value}/{letter.topic.rpartition('.')[2]}"] += letter.count
        return dict(found)

    def _fitbit_days(self, truth: Truth) -> set[str]:
        return {key for key in truth if key.partition("|")[0] in self.fitbit_linked}

    def _vendor_days_written(self) -> set[str]:
        """``research_id|date`` of the ``activity_summary`` rows that hold the vendor's own figures."""
        frame = self._table_now("activity_summary")
        rows = frame.filter(pl.col("calories_out").is_not_null()).select("person_id", "date").iter_rows()
        return {f"{person}|{day.isoformat()}" for person, day in rows}

    def written(self) -> int:
        """Rows of ``daily_summary`` in the dataset now."""
        return self._table_now("daily_summary").height

    def _table_now(self, name: str) -> pl.DataFrame:
        """The table as the dataset holds it now (empty while none of it is readable yet)."""
        try:
            return Dataset(self.settings.dataset_location).read_all(TABLES[name])
        except (OSError, pl.exceptions.ComputeError):
            return TABLES[name].empty()

    async def outcome(self) -> Outcome:
        """The days the simulated cohort has data for, from ``daily`` and from every table (the
        ``device`` table is empty: ``options()`` pairs no devices)."""
        assert self.sim is not None
        first, last = self.sim.world.first_day, self.sim.world.last_day
        dataset = Dataset(self.settings.dataset_location)
        tables = {}
        for name, table in TABLES.items():
            frame = dataset.read_all(table)
            dates = [c for c, kind in frame.schema.items() if kind == pl.Date()]
            if dates:
                frame = frame.filter(pl.col(dates[0]).is_between(first, last))
            tables[name] = frame.sort(frame.columns, nulls_last=True) if frame.height else frame
        daily = {key: s for key, s in (await self.summaries()).items()
                 if first.isoformat() <= s.local_date <= last.isoformat()}
        return Outcome(comparable(daily), tables, dict(self.sim.world.stats))


async def leaks(pipeline: Pipeline) -> list[str]:
    """Where an identifier or token of this run shows up where the design does not put it.

    Looked for: every participant ID, research ID, vendor user ID and the tokens the simulator
    issued. Looked in: every child's log, every child's ``/metrics``, the dead letters, and every
    Parquet column (research IDs belong in ``person_id`` only; Kafka keys are not looked at)."""
    assert pipeline.sim is not None
    world, secret = pipeline.sim.world, pipeline.settings.require_secret_key()
    people = set(world.cohort.participant_ids)
    research_ids = {research_id(secret, p) for p in people}
    vendor_ids = {a.user_id for a in world.accounts()}
    tokens = set(world.access) | set(world.refresh)
    anywhere = people | vendor_ids | tokens
    found = []

    def scan(where: str, text: str, forbidden: set[str]) -> None:
        hits = sorted(i for i in forbidden if i in text)
        if hits:
            found.append(f"{where}: {len(hits)} identifier(s), e.g. {hits[0][:6]}…")

    for name, child in pipeline.children.items():
        scan(f"{name} log", child.log.read_text(errors="replace"), anywhere | research_ids)
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{child.port}/metrics") as answer:
            scan(f"{name} /metrics", await answer.text(), anywhere | research_ids)
    for value in await topic_values(pipeline.settings, "dlq"):
        scan("a dead letter", value.decode(errors="replace"), anywhere)
    dataset = Dataset(pipeline.settings.dataset_location)
    for name, table in TABLES.items():
        frame = dataset.read_all(table)
        for column in frame.columns:
            text = "\n".join(str(v) for v in frame[column].unique().to_list())
            scan(f"table {name}.{column}", text, anywhere if column == "person_id" else anywhere | research_ids)
    return found


async def topic_values(settings: Settings, suffix: str) -> list[bytes]:
    """Every record value of a topic (tombstones left out), read to its end offsets with assigned
    partitions (no group to join, so a poll takes milliseconds)."""
    topic = settings.topic(suffix)
    consumer = make_consumer(settings)
    await consumer.start()
    values: list[bytes] = []
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            return values
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                values += [m.value for m in messages if m.value is not None]
        return values
    finally:
        await consumer.stop()


def world_truth(world: World, secret: bytes, participants: Iterable[str]) -> Truth:
    """{research_id|date: (steps, minutes with heart rate, minutes asleep)} of each participant's
    simulated days (None: no sleep log ended that day)."""
    found: Truth = {}
    for participant in participants:
        rid, day = research_id(secret, participant), world.first_day
        while day <= world.last_day:
            steps, rates = world.series(participant, day)
            night = world.cohort.sleep_night(participant, day)
            found[f"{rid}|{day.isoformat()}"] = (sum(steps), sum(1 for r in rates if r),
                                                 night.minutes_asleep if night else None)
            day += timedelta(days=1)
    return found


def comparable(summaries: Mapping[str, DailySummary]) -> dict[str, dict[str, Any]]:
    return {key: {f: getattr(s, f) for f in s.__dataclass_fields__ if f not in IGNORED}
            for key, s in summaries.items()}


def _figures(summary: DailySummary) -> tuple[int, int, int | None]:
    return summary.steps, summary.minutes_with_hr, summary.sleep_minutes_asleep


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def latest_summaries(settings: Settings) -> dict[str, DailySummary]:
    """The latest summary per key on ``daily`` (highest revision; last on ties)."""
    latest: dict[str, DailySummary] = {}
    for value in await topic_values(settings, "daily"):
        summary = DailySummary.from_bytes(value)
        if summary.key not in latest or summary.revision >= latest[summary.key].revision:
            latest[summary.key] = summary
    return latest


_CLEAN: dict[tuple[SimulatorOptions, tuple[tuple[str, Any], ...]], Outcome] = {}


async def clean_outcome(broker: str, scratch: Path, sim_options: SimulatorOptions, **flat: Any) -> Outcome:
    """The outcome of a run of ``sim_options`` (and ``flat`` settings) without faults, made once per
    session: one process of each kind."""
    key = (sim_options, tuple(sorted(flat.items())))
    if key not in _CLEAN:
        pipeline = Pipeline(broker, scratch, sim_options, **flat)
        async with pipeline.running():
            await pipeline.settled(240)
            _CLEAN[key] = await pipeline.outcome()
    return _CLEAN[key]
