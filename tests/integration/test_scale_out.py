"""Scale-out that is correct: several workers, several schedulers, the embedded broker over TCP.

Partitions are the unit of work. Workers share the input topics through their consumer group, so
a worker killed mid-run hands its partitions (and the table state in their changelogs) to the
others, and one that joins takes some. Schedulers share ``fetch-requests`` the same way: a
participant's requests are keyed by research ID, so they all go to one partition and one scheduler;
on a rebalance a scheduler stops the fetches of the partitions it gives up before the group hands
them on, and each scheduler takes its configured share of a vendor project's request budget.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from connectors.simulator.service import SimulatorOptions
from runtime.broker import EmbeddedBroker
from tests.integration.pipeline import Pipeline, clean_outcome, options

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PARTITIONS = 12
_SAMPLES = "wearables_dedup_samples_total"


async def _metric(pipeline: Pipeline, name: str, metric: str) -> float:
    async with aiohttp.ClientSession() as session:
        return (await pipeline.children[name].metrics(session)).get(metric, 0.0)


@pytest.mark.xfail(strict=False, reason=(
    "open (issue 20): passes here, but the fresh-clone CI run of ef586fd found 3 of 30 days missing or "
    "partial (11-29, 11-30); its simulator counted 1 burst sync and 21 acknowledged webhooks in 400 s, "
    "so late trackers' catch-ups never happened or were never announced; not yet understood"))
async def test_three_workers_one_killed_and_a_fourth_joining_summarize_as_a_single_worker_does(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    clean = await clean_outcome(broker.bootstrap, tmp_path / "single", options(), partitions=PARTITIONS)
    workers = ("worker-1", "worker-2", "worker-3")
    pipeline = Pipeline(broker.bootstrap, tmp_path / "scaled", options(), partitions=PARTITIONS,
                        processes=(*workers, "sink", "gateway", "scheduler"))
    async with pipeline.running(link=False):
        cohort = pipeline.participants
        await pipeline.link(cohort[: len(cohort) // 2])
        truth = len(pipeline.truth())

        async def some_summarized() -> int:
            return len(await pipeline.summaries())

        deadline = asyncio.get_running_loop().time() + 180
        while await some_summarized() < truth // 4:  # mid-run: a quarter of the days summarized
            assert asyncio.get_running_loop().time() < deadline, "nothing was summarized"
            await asyncio.sleep(0.5)
        killed_had = await _metric(pipeline, "worker-2", _SAMPLES)
        await pipeline.kill("worker-2")  # SIGKILL: no commit, no flush, no leaving the group
        await pipeline.start("worker-4")
        await pipeline.link(cohort[len(cohort) // 2:])
        await pipeline.settled(400)
        got = await pipeline.outcome()
        shares = {name: await _metric(pipeline, name, _SAMPLES) for name in ("worker-1", "worker-3", "worker-4")}
    print(f"samples: killed worker {killed_had:.0f} before its end, the others {shares}")  # seen with -s
    assert got.differences(clean) == []  # every field but the revision counters, and every Parquet table
    assert killed_had > 0, "the killed worker had work of its own"
    assert all(samples > 0 for samples in shares.values()), shares  # the joiner took partitions too


def _cohort(participants: int, project_limit: int) -> SimulatorOptions:
    """Every day complete and synced once; each vendor call takes 20 ms, so two calls of one
    participant at once would overlap at the simulator."""
    return replace(options(), participants=participants, days=2, late_share=0.0, duplicate_share=0.0,
                   latency_s=0.02, google_project_limit=project_limit)


async def test_two_schedulers_share_400_participants_without_overlap_or_a_limit_exceeded(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    # 200 Google Health participants' backfills need about 5,000 calls: twice the project's 2,400 a
    # minute, so two schedulers that each took the whole budget would be answered 429
    project_limit, schedulers = 2400, ("scheduler-1", "scheduler-2")
    pipeline = Pipeline(broker.bootstrap, tmp_path / "schedulers", _cohort(400, project_limit),
                        partitions=PARTITIONS, processes=("worker", "sink", "gateway"),
                        # each scheduler takes its share of the project's budget
                        google_project_limit=project_limit // len(schedulers), backfill_days=2,
                        poll_interval=3600)
    async with pipeline.running(link=False):
        assert pipeline.sim is not None
        await pipeline.link(pipeline.participants)  # their backfill requests wait on fetch-requests
        # the linking's identity calls count against the project too: start in the vendor's next window
        await asyncio.sleep(60 - time.time() % 60 + 0.5)
        await asyncio.gather(*(pipeline.start(name) for name in schedulers))  # one joins, then the other
        await pipeline.settled(900)  # every simulated participant-day summarized, and written
        stats = dict(pipeline.sim.world.stats)
        fetched = {name: await _metric(pipeline, name, "wearables_scheduler_fetch_requests_total")
                   for name in schedulers}
    print(f"google calls {stats['requests_google_health']}, fitbit calls {stats['requests_fitbit']}, "
          f"fetch requests per scheduler {fetched}")  # seen with -s
    violations = {k: v for k, v in stats.items() if k.startswith("violations_")}
    overlaps = {k: v for k, v in stats.items() if k.startswith("overlapping_requests_")}
    assert violations == {}, violations  # per participant and per project, either vendor
    assert overlaps == {}, overlaps  # no participant's calls ever overlapped: one scheduler at a time
    assert stats["requests_google_health"] > project_limit, stats  # the project's limit was really in play
    assert all(count > 0 for count in fetched.values()), fetched  # both schedulers took their share
