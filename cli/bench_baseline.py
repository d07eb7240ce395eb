"""The per-sample baseline of ``wearables bench pipeline``: a Faust worker that carries one
Kafka record per sample and updates a table once per sample, as record-per-sample pipelines
do. The bench runs as many of these processes as it runs real workers, so that the ratio
compares like with like."""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from runtime.gc_tuning import tune_gc
from runtime.kafka import TopicPlan
from runtime.metrics import counter, gauge
from runtime.service import Service, serve
from runtime.settings import Settings

__all__ = ["SEEN", "BaselineWorker", "baseline_topic", "baseline_topics", "run_baseline_worker"]

SEEN = counter("bench_baseline_samples_total", "Samples the per-sample baseline worker has applied")
READY = gauge("bench_baseline_ready", "1 once the baseline worker has joined its group")


def baseline_topic(settings: Settings) -> str:
    return settings.topic("bench.per-sample")


def baseline_topics(settings: Settings) -> list[TopicPlan]:
    app_id = f"{settings.kafka.topic_prefix}baseline"
    return [TopicPlan(baseline_topic(settings), settings.kafka.partitions),
            TopicPlan(f"{app_id}-sums-changelog", settings.kafka.partitions, True),
            TopicPlan(f"{app_id}-__assignor-__leader", 1)]


def _app(settings: Settings) -> faust.App:
    datadir = settings.state_dir / "baseline"  # not Faust's default, a directory in the cwd
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(f"{settings.kafka.topic_prefix}baseline", broker=f"kafka://{settings.kafka.bootstrap_servers}",
                    store="memory://", datadir=str(datadir),
                    web_enabled=False, topic_allow_declare=False, autodiscover=False,
                    broker_session_timeout=settings.kafka.session_timeout, broker_heartbeat_interval=1.0,
                    producer_max_batch_size=1, table_standby_replicas=0, loop=asyncio.get_running_loop())
    sums = app.Table("sums", default=float, partitions=settings.kafka.partitions)

    @app.agent(app.topic(baseline_topic(settings), value_serializer="json"))
    async def per_sample(stream: Any) -> None:
        async for event in stream.events():  # one event, one table update per sample
            value = event.value
            sums[f"{event.message.key.decode()}|{value['day']}|{value['m']}"] += value["v"]
            SEEN.inc()

    app.finalize()
    return app


class BaselineWorker(Service):
    """One per-sample baseline process as a service: ready once its app joined its group."""

    name = "baseline-worker"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings
        self._app: faust.App | None = None

    async def start(self) -> None:
        self._app = _app(self._settings)
        await self._app.start()
        READY.set(1)

    async def stop(self) -> None:
        READY.set(0)
        if self._app is not None:
            await self._app.stop()


async def run_baseline_worker(settings: Settings, metrics_port: int) -> None:
    tune_gc(settings.gc_gen0_threshold)  # the same tuning as the workers it is compared with
    await serve(BaselineWorker(settings), metrics_port=metrics_port)
