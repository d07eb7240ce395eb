"""The per-sample baseline of ``wearables bench pipeline``: a Faust worker that carries one
Kafka record per sample and updates a table once per sample, as record-per-sample pipelines
do. The bench runs as many of these processes as it runs real workers, so that the ratio
compares like with like."""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from cli.common import wait_for_stop_signal
from runtime.gc_tuning import tune_gc
from runtime.kafka import TopicPlan
from runtime.metrics import counter, gauge, start_metrics_server
from runtime.settings import Settings
from streams.runner import running

__all__ = ["SEEN", "baseline_topic", "baseline_topics", "run_baseline_worker"]

SEEN = counter("bench_baseline_samples_total", "Samples the per-sample baseline worker has applied")
READY = gauge("bench_baseline_ready", "1 once the baseline worker has joined its group")


def baseline_topic(settings: Settings) -> str:
    return settings.topic("bench.per-sample")


def baseline_topics(settings: Settings) -> list[TopicPlan]:
    app_id = f"{settings.topic_prefix}baseline"
    return [TopicPlan(baseline_topic(settings), settings.partitions),
            TopicPlan(f"{app_id}-sums-changelog", settings.partitions, True),
            TopicPlan(f"{app_id}-__assignor-__leader", 1)]


def _app(settings: Settings) -> faust.App:
    datadir = settings.state_dir / "baseline"  # not Faust's default, a directory in the cwd
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(f"{settings.topic_prefix}baseline", broker=f"kafka://{settings.kafka_bootstrap_servers}",
                    store="memory://", datadir=str(datadir),
                    web_enabled=False, topic_allow_declare=False, autodiscover=False,
                    broker_session_timeout=settings.kafka_session_timeout, broker_heartbeat_interval=1.0,
                    producer_max_batch_size=1, table_standby_replicas=0, loop=asyncio.get_running_loop())
    sums = app.Table("sums", default=float, partitions=settings.partitions)

    @app.agent(app.topic(baseline_topic(settings), value_serializer="json"))
    async def per_sample(stream: Any) -> None:
        async for event in stream.events():  # one event, one table update per sample
            value = event.value
            sums[f"{event.message.key.decode()}|{value['day']}|{value['m']}"] += value["v"]
            SEEN.inc()

    app.finalize()
    return app


async def run_baseline_worker(settings: Settings, metrics_port: int) -> None:
    app = _app(settings)
    tune_gc(settings.gc_gen0_threshold)  # the same tuning as the workers it is compared with
    start_metrics_server(metrics_port)
    async with running(app):
        READY.set(1)
        await wait_for_stop_signal()
