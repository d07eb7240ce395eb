"""The stream worker as a :class:`~runtime.service.Service`: a Faust app inside the current event
loop (no Faust Worker, no signal handlers of its own).

``wearables worker``, the demo, the replay, the benchmark's worker processes and the
integration tests all run this, so a worker in a test is the same code as one in production.

    async with WorkerService(settings, bootstrap=bootstrap).running() as worker:
        worker.pipeline.progress.get("raw_pages")
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import REGISTRY, CollectorRegistry

from runtime.metrics import gauge
from runtime.service import Service
from runtime.settings import Settings
from streams.app import Pipeline, build_pipeline

__all__ = ["WorkerService"]

logger = logging.getLogger(__name__)

WORKER_PAGES = gauge("worker_raw_pages_seen", "Raw pages this worker process has consumed")
WORKER_READY = gauge("worker_ready", "1 once this worker has joined its group and recovered its tables")
_GAUGE_INTERVAL_S = 5.0


class WorkerService(Service):
    """The normalize → dedup → daily agents of one worker process.

    :param settings: the run's settings (the pipeline reads its Kafka, daily and store settings).
    :param bootstrap: the Kafka to use; :func:`runtime.kafka.resolve_bootstrap` when None.
    :param registry: where Faust's own metrics go (tests give each app its own).

    Ready once the app has started, that is, joined its consumer group and recovered its tables.
    """

    name = "worker"

    def __init__(self, settings: Settings, *, bootstrap: str | None = None,
                 registry: CollectorRegistry = REGISTRY) -> None:
        super().__init__()
        self._settings, self._bootstrap, self._registry = settings, bootstrap, registry
        self._pipeline: Pipeline | None = None
        self._gauges: asyncio.Task[None] | None = None

    @property
    def pipeline(self) -> Pipeline:
        assert self._pipeline is not None, "the worker is not started"
        return self._pipeline

    async def start(self) -> None:
        self._pipeline = build_pipeline(self._settings, bootstrap=self._bootstrap, registry=self._registry)
        await self._pipeline.app.start()
        WORKER_READY.set(1)
        self._gauges = asyncio.ensure_future(self._keep_gauges())
        logger.info("worker %s started", self._settings.app_id)

    async def _keep_gauges(self) -> None:
        while True:
            WORKER_PAGES.set(self.pipeline.progress.get("raw_pages"))
            await asyncio.sleep(_GAUGE_INTERVAL_S)

    async def stop(self) -> None:
        WORKER_READY.set(0)
        if self._gauges is not None:
            self._gauges.cancel()
        if self._pipeline is not None:
            await self._pipeline.app.stop()
            logger.info("worker %s stopped", self._settings.app_id)
