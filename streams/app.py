"""``build_pipeline(settings)``: a fresh Faust app with its topics, tables and agents.

Nothing is built at import time, so every test and every process gets its own app bound to
its own event loop (docs/architecture.md, Faust facts). Faust-internal topics are listed here so that
``wearables topics create`` can pre-create them: the embedded broker cannot be trusted to.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import faust
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import REGISTRY, CollectorRegistry

from runtime.kafka import ProducerOptions, TopicPlan, connection
from runtime.producer_queue import queue_full_batches
from runtime.purges import PurgeList
from runtime.settings import Settings
from streams.agents import TABLES, register_agents
from streams.progress import Progress

__all__ = ["Pipeline", "build_pipeline", "internal_topic_plan"]

_faust_metrics: dict[int, FaustMetrics] = {}


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A Faust app and the handles the caller needs around it."""

    app: faust.App
    progress: Progress
    settings: Settings
    purges: PurgeList


def internal_topic_plan(settings: Settings) -> list[TopicPlan]:
    """Faust's own topics for this app id: one compacted changelog per table, and the assignor's."""
    changelogs = [
        TopicPlan(f"{settings.app_id}-{table}-changelog", settings.kafka.partitions, compacted=True)
        for table in TABLES
    ]
    return [*changelogs, TopicPlan(f"{settings.app_id}-__assignor-__leader", 1)]


def _monitor(registry: CollectorRegistry) -> PrometheusMonitor:
    # Faust's metric objects can be registered once per registry; apps share them.
    metrics = _faust_metrics.get(id(registry))
    if metrics is None:
        metrics = _faust_metrics[id(registry)] = FaustMetrics.create(registry, "wearables_faust")
    return PrometheusMonitor(metrics=metrics)


def build_pipeline(settings: Settings, *, bootstrap: str | None = None,
                   registry: CollectorRegistry = REGISTRY) -> Pipeline:
    """A new Faust app for ``settings``. Call it inside the event loop that will run it."""
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    kafka = connection(settings, bootstrap)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    queue_full_batches()  # Faust's producer too (see runtime/producer_queue.py)
    app = faust.App(
        settings.app_id,
        broker="kafka://" + kafka.bootstrap,  # Faust splits a comma-separated list itself
        broker_credentials=kafka.faust(),
        store=settings.store,
        datadir=str(settings.state_dir),
        loop=loop,
        autodiscover=False,
        web_enabled=False,  # metrics are served by runtime.metrics on WEARABLES_METRICS_PORT
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        topic_allow_declare=False,  # pre-created by runtime.kafka.ensure_topics
        **ProducerOptions.of(settings.kafka).faust(),
        consumer_max_fetch_size=8 << 20,
        # The embedded broker holds a JoinGroup for about half the session timeout.
        broker_session_timeout=settings.kafka.session_timeout,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=max(settings.kafka.session_timeout, 10.0),
        broker_commit_interval=settings.kafka.commit_interval,
        table_standby_replicas=0,
        # Events buffered per agent, ahead of its take: a count, not bytes (Faust's queue counts events). Raw
        # pages are ~50 KB at minute resolution but ~2.5 MB for a 1-sec day, so 4096 could hold ~10 GiB of
        # those; 1024 holds at most ~2.5 GiB of them, and still a full take (500 pages, 1000 batches) ahead.
        stream_buffer_maxsize=1024,
    )
    app.monitor = _monitor(registry)
    progress = Progress()
    purges = PurgeList(settings.require_secret_key())

    async def follow_purges() -> None:  # the agents wait for it to have read the whole audit log
        await purges.follow(settings, kafka.bootstrap, asyncio.Event())

    app.task(follow_purges)

    register_agents(app, settings, progress, purges)
    app.finalize()
    return Pipeline(app=app, progress=progress, settings=settings, purges=purges)
